"""Lesson 06's exercises: each solution passes its self-check (for models trained from several seeds);
undone exercises say so; the common wrong answers get their specific hint; a tie accepts every tied answer.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from helpers.core import pick_device
from helpers.data import load_mnist
from tests.nbtools import cells, exercises, imports_namespace, run_self_check, source
from tests.trained import briefly_trained_cnn

NOTEBOOK = "06_visualizing_filters.ipynb"
EXERCISES = exercises(NOTEBOOK)
FIELD, TOP_EDGE_FILTER, FAVOURITE = range(3)


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


def trained_namespace(mnist, seed: int) -> dict:
    """The notebook's imports plus `mnist`, `device` and a `model`: the lesson's CNN, trained briefly.

    The self-checks compare an answer with what the model in the namespace gives, so any
    trained model will do; a short training keeps the test fast.
    """
    names = imports_namespace(NOTEBOOK)
    model = briefly_trained_cnn(seed)
    device = pick_device()
    names.update(mnist=mnist, model=model.to(device).eval(), device=device)
    return names


@pytest.fixture(scope="module")
def namespace(mnist):
    return trained_namespace(mnist, 0)


@pytest.fixture(scope="module", params=[0, 1], ids=["seed0", "seed1"])
def any_seed_namespace(mnist, namespace, request):
    """Models trained from different seeds: other filters, channels and favourite digits."""
    return namespace if request.param == 0 else trained_namespace(mnist, request.param)


def run_check(names: dict, answer_code: str, index: int, capsys) -> str:
    return run_self_check(EXERCISES[index], names, answer_code, capsys)


def test_three_exercises_with_solutions():
    assert len(EXERCISES) == 3
    assert all({"your_turn", "check", "solution"} <= exercise.keys() for exercise in EXERCISES)


@pytest.mark.parametrize("index", range(len(EXERCISES)))
def test_solution_passes_its_self_check(any_seed_namespace, index, capsys):
    assert "✅" in run_check(any_seed_namespace, EXERCISES[index]["solution"], index, capsys)


@pytest.mark.parametrize("index", range(len(EXERCISES)))
def test_undone_exercise_says_so_without_raising(namespace, index, capsys):
    out = run_check(namespace, EXERCISES[index]["your_turn"], index, capsys)
    assert "⏳" in out and "❌" not in out


# --- Exercise 1: the receptive field of a fourth layer --------------------------------------------


def test_conv4_field_is_measured_as_38(namespace):
    names = dict(namespace)
    exec("conv4_field = 38", names)
    exec(EXERCISES[FIELD]["check"], names)
    assert names["conv4_size"] == 38, "conv3 sees 18 at spacing 4; pool3: 22 at 8; conv4: 22 + 2 * 8"


@pytest.mark.parametrize("right", ["38.0", "np.int64(38)"])
def test_conv4_field_right_answers(namespace, right, capsys):
    assert "✅" in run_check(namespace, f"conv4_field = {right}", FIELD, capsys)


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        ("26", "The pool comes first"),  # 18 + 2 * 4: a 3x3 conv straight on conv3
        ("22", "That is one pool3 cell"),  # stops after the pool
        ("66", "overlap"),  # 3 * 22: cells side by side without overlap
        ("28", "wider than the image"),  # "it cannot be more than the image"
        ("34", "pool3 adds one conv3 spacing"),  # 18 + 2 * 8: forgets what the pool adds
        ("'38'", "one whole number"),
        ("38.5", "one whole number"),
    ],
)
def test_conv4_field_wrong_answers_get_their_hint(namespace, wrong, hint, capsys):
    out = run_check(namespace, f"conv4_field = {wrong}", FIELD, capsys)
    assert "❌" in out and hint in out, out
    assert "38" not in out.replace(wrong, ""), "the hint does not give the answer away"


# --- Exercise 2: the learned filter most like TOP_EDGE --------------------------------------------


def cosines_to_top_edge(names: dict) -> np.ndarray:
    weights = names["model"].conv1.weight.detach()[:, 0]
    return names["V"].cosine_similarity(weights, names["TOP_EDGE"][None])[:, 0]


def test_top_edge_right_answer_in_any_integer_form(any_seed_namespace, capsys):
    names = any_seed_namespace
    best = int(cosines_to_top_edge(names).argmax())
    for form in [f"{best}", f"np.int64({best})", f"{best}.0", f"int(torch.tensor({best}))"]:
        assert "✅" in run_check(names, f"top_edge_filter = {form}", TOP_EDGE_FILTER, capsys), form


def test_top_edge_wrong_answers_get_their_hint(namespace, capsys):
    cosines = cosines_to_top_edge(namespace)
    best, opposite = int(cosines.argmax()), int(cosines.argmin())
    cases = {
        "16": "whole number from 0 to 15",  # there are only filters 0-15
        "-1": "whole number from 0 to 15",
        f"{cosines.max():.2f}": "not its cosine",  # the cosine instead of the index
        f"{opposite}": "most *opposite*",  # argmin: a bottom edge
        "'top'": "whole number from 0 to 15",
    }
    for wrong, hint in cases.items():
        out = run_check(namespace, f"top_edge_filter = {wrong}", TOP_EDGE_FILTER, capsys)
        assert "❌" in out and hint in out, (wrong, out)
    other = next(i for i in range(16) if i not in (best, opposite))
    out = run_check(namespace, f"top_edge_filter = {other}", TOP_EDGE_FILTER, capsys)
    assert "❌" in out and "which row holds the largest value?" in out, out


# --- Exercise 3: a channel's favourite digit, ties included ---------------------------------------


def with_top_nine(namespace: dict, labels: list[int]) -> dict:
    """The namespace, with conv3 channel 7's top 9 test images replaced by images with these labels."""
    names = dict(namespace)
    test_labels = np.array(labels + [0] * 11, dtype=np.int64)
    names["mnist"] = SimpleNamespace(test_images=np.zeros((20, 28, 28), np.uint8), test_labels=test_labels)
    names["V"] = SimpleNamespace(top_units=lambda *args, **kwargs: (np.arange(9), None, None, None))
    return names


def test_every_tied_digit_is_right_and_the_tie_is_named(namespace, capsys):
    names = with_top_nine(namespace, [6, 8, 6, 8, 1, 2, 3, 4, 5])  # 6 and 8 twice each
    for tied in (6, 8):
        out = run_check(names, f"favourite_class = {tied}", FAVOURITE, capsys)
        assert "✅" in out and "A tie: digits 6 and 8 appear 2 times each" in out, out
    out = run_check(names, "favourite_class = 3", FAVOURITE, capsys)
    assert "❌" in out and "2 digits tie, 2 times each: any of them is right" in out, out
    assert "6" not in out and "8" not in out, "a wrong answer is not told which digits tie"


def test_without_a_tie_only_the_most_common_digit_is_right(namespace, capsys):
    names = with_top_nine(namespace, [1, 3, 3, 3, 5, 5, 2, 3, 7])
    assert "✅" in run_check(names, "favourite_class = 3", FAVOURITE, capsys)
    out = run_check(names, "favourite_class = 1", FAVOURITE, capsys)
    assert "❌" in out and "single strongest image" in out, out  # the label of the top image only
    out = run_check(names, "favourite_class = 5", FAVOURITE, capsys)
    assert "❌" in out and "np.bincount" in out and "tie" not in out, out


@pytest.mark.parametrize("wrong", ["'three'", "[3, 3, 5]", "3.5", "12", "np.bincount([3, 3])"])
def test_favourite_not_a_digit_gets_its_hint(namespace, wrong, capsys):
    names = with_top_nine(namespace, [1, 3, 3, 3, 5, 5, 2, 3, 7])
    out = run_check(names, f"favourite_class = {wrong}", FAVOURITE, capsys)
    assert "❌" in out and "Give one digit as a number from 0 to 9" in out, out


def test_favourite_accepts_exactly_the_most_common_digits_of_the_real_model(any_seed_namespace, capsys):
    names = any_seed_namespace
    index = names["V"].top_units(names["model"], "conv3", names["mnist"].test_images, 7, k=9)[0]
    counts = np.bincount(names["mnist"].test_labels[index], minlength=10)
    most = [d for d in range(10) if counts[d] == counts.max()]
    fewer = [d for d in range(10) if counts[d] < counts.max()][-2:]  # two that are not the most common
    for digit in most + fewer:
        out = run_check(names, f"favourite_class = {digit}", FAVOURITE, capsys)
        assert ("✅" in out) == (digit in most), (digit, counts, out)


def test_notebook_loads_saved_weights_or_trains_the_same_model_on_the_device():
    code = "\n".join(source(cell) for cell in cells(NOTEBOOK) if cell["cell_type"] == "code")
    assert "WEIGHTS_PATH.is_file()" in code
    assert "trained_mnist_cnn(data=mnist).to(device)" in code, "lesson 05's model, on pick_device()"
    assert "device = pick_device()" in code


def test_exercise_2_prompt_names_a_weight_the_helper_takes(namespace):
    """The prompt's `model.conv1.weight[:, 0]` is the (16, 3, 3) stack that cosine_similarity compares."""
    prompt = next(
        source(cell) for cell in cells(NOTEBOOK) if cell["cell_type"] == "markdown" and "## Exercise 2" in source(cell)
    )
    assert "`model.conv1.weight[:, 0]`" in prompt
    names = namespace
    cosines = names["V"].cosine_similarity(names["model"].conv1.weight[:, 0], names["TOP_EDGE"][None])
    assert cosines.shape == (16, 1)


def test_the_explorer_does_not_show_exercise_2s_answer():
    explorer = next(source(cell) for cell in cells(NOTEBOOK) if "slider_explorer(" in source(cell))
    assert "similarity" not in explorer and "TOP_EDGE" not in explorer, "the static frame names no filter by cosine"
