"""Lesson 08: each exercise's solution passes its self-check, other right answers are accepted,
common wrong answers get their specific hint, and the lesson keeps its shape (the steps by hand
before prepare_digit, the service started, called and stopped)."""

from __future__ import annotations

import matplotlib
import pytest

from helpers.core import pick_device
from helpers.data import load_mnist
from helpers.models import mnist_cnn
from helpers.serve import start_service
from helpers.training import load_weights, save_weights
from tests.nbtools import cells, exercises, imports_namespace, run_self_check, source
from tests.trained import briefly_trained_cnn

matplotlib.use("Agg")

NOTEBOOK = "08_prediction_demo.ipynb"
EXERCISES = exercises(NOTEBOOK)


def cell_with(text: str) -> str:
    """The source of the notebook's first code cell containing ``text``."""
    return next(source(c) for c in cells(NOTEBOOK) if c["cell_type"] == "code" and text in source(c))


@pytest.fixture(scope="module")
def namespace(tmp_path_factory):
    """The notebook's imports, the test set, our photo (made by the notebook's own cell), a briefly
    trained model standing in for the augmented one, and a running service that serves it."""
    names = imports_namespace(NOTEBOOK)
    mnist = load_mnist()
    model = briefly_trained_cnn()
    weights = save_weights(model, tmp_path_factory.mktemp("lesson08") / "weights.pt")
    robust = load_weights(mnist_cnn(), weights).to(pick_device()).eval()  # where the service runs it
    names.update(mnist=mnist, model=model.eval(), robust=robust)
    exec(cell_with("PHOTO_INDEX = "), names)
    names["squeezed"] = names["demo"].raw_resize(names["photo_bytes"])
    with start_service(weights=weights) as service:
        names["service"] = service
        yield names


def run_check(namespace, index: int, answer_code: str, capsys) -> str:
    """Run an answer, then exercise ``index``'s self-check; return what the check printed."""
    return run_self_check(EXERCISES[index], namespace, answer_code, capsys)


def test_three_exercises_with_solutions():
    assert len(EXERCISES) == 3
    assert all({"your_turn", "check", "solution"} <= exercise.keys() for exercise in EXERCISES)


@pytest.mark.parametrize("index", range(len(EXERCISES)))
def test_solution_passes_its_self_check(namespace, index, capsys):
    assert "✅" in run_check(namespace, index, EXERCISES[index]["solution"], capsys)


@pytest.mark.parametrize("index", range(len(EXERCISES)))
def test_undone_exercise_says_so_without_raising(namespace, index, capsys):
    assert "⏳" in run_check(namespace, index, EXERCISES[index]["your_turn"], capsys)


@pytest.mark.parametrize(
    ("index", "right"),
    [
        (
            0,
            "largest_difference = np.int64(np.abs(demo.prepare_digit(photo).astype(int)"
            " - demo.prepare_digit(255 - photo).astype(int)).max())",
        ),
        (1, "squeezed_share = round(float(np.mean(squeezed > 128)), 2)"),  # rounded to two places
        (1, "squeezed_share = np.mean(squeezed >= 129)"),
        (2, "least_likely = demo.top_k(robust, demo.prepare_digit(photo_bytes), k=10)[-1][0]"),
        (2, "least_likely = float(demo.top_k(robust, demo.prepare_digit(photo_bytes), k=10)[-1][0])"),
    ],
)
def test_other_right_answers_are_accepted(namespace, index, right, capsys):
    assert "✅" in run_check(namespace, index, right, capsys)


@pytest.mark.parametrize(
    ("index", "wrong", "hint"),
    [
        # uint8 subtraction wraps around: 3 - 4 is 255 (the photos subtracted as uint8 give 255)
        (0, "largest_difference = 255", "wraps around"),
        (0, "largest_difference = int(np.abs(photo - (255 - photo)).max())", "wraps around"),
        # the photos compared instead of the prepared images
        (0, "largest_difference = np.abs(photo.astype(int) - (255 - photo).astype(int)).max()", "the photos"),
        (0, "largest_difference = 0.5", "whole number"),
        (0, "largest_difference = '0'", "whole number"),
        (1, "squeezed_share = 100 * float(np.mean(squeezed > 128))", "100 times"),
        (1, "squeezed_share = float(np.mean(squeezed < 128))", "dark pixels"),  # 1 - share
        (1, "squeezed_share = 1 - float(np.mean(squeezed > 128))", "dark pixels"),
        (1, "squeezed_share = float(np.mean(mnist.test_images > 128))", "MNIST's share"),
        (1, "squeezed_share = float(np.mean(squeezed > 200))", "Compare every pixel"),
        (1, "squeezed_share = '96%'", "one number"),
        (2, "least_likely = demo.top_k(robust, demo.prepare_digit(photo_bytes), k=10)[0][0]", "most likely"),
        # the service's default k=3: the last of the top 3
        (2, "least_likely = serve.post_image(service.url, photo_bytes)[1]['predictions'][-1]['digit']", "k=10"),
        (2, "least_likely = 'four'", "Give one digit"),
        (2, "least_likely = 10", "Give one digit"),
    ],
)
def test_common_wrong_answers_get_their_hint(namespace, index, wrong, hint, capsys):
    out = run_check(namespace, index, wrong, capsys)
    assert "❌" in out and hint in out, out
    assert "predictions'][-1]" not in out, "no hint spells out the answer's code"


def test_least_likely_hints_are_specific(namespace, capsys):
    ten = namespace["demo"].top_k(namespace["robust"], namespace["demo"].prepare_digit(namespace["photo_bytes"]), k=10)
    out = run_check(namespace, 2, f"least_likely = {ten[2][0]}", capsys)  # the third of the top 3
    assert "❌" in out and "last of the top 3" in out, out
    middle = ten[5][0]  # neither end of the list
    out = run_check(namespace, 2, f"least_likely = {middle}", capsys)
    assert "❌" in out and "Ask for all ten answers (k=10)" in out, out


def test_the_steps_by_hand_come_before_the_helper():
    code = [source(c) for c in cells(NOTEBOOK) if c["cell_type"] == "code"]
    by_hand = next(i for i, text in enumerate(code) if "centre_row = " in text)
    helper = next(i for i, text in enumerate(code) if "prepare_digit(photo_bytes)" in text)
    assert by_hand < helper
    assert "same as our steps:" in code[helper]


def test_the_service_is_started_called_and_stopped_before_the_closing_table():
    code = [source(c) for c in cells(NOTEBOOK) if c["cell_type"] == "code"]
    start = next(i for i, text in enumerate(code) if "serve.start_service()" in text)
    calls = [i for i, text in enumerate(code) if "serve.post_image(service.url" in text]
    stop = next(i for i, text in enumerate(code) if "service.stop()" in text)
    table = next(i for i, text in enumerate(code) if "scoreboard = {" in text)
    assert start < min(calls) and max(calls) < stop < table, "stopped after its last use, before the table"
    last = cells(NOTEBOOK)[-1]
    assert last["cell_type"] == "markdown" and "### Where to go next" in source(last), "the lesson ends looking ahead"


def test_the_course_table_says_which_rows_are_quoted():
    code = cell_with("scoreboard = {")
    markdown = "\n".join(source(c) for c in cells(NOTEBOOK) if c["cell_type"] == "markdown")
    assert "None" not in code, "every lesson's row has a value"
    assert "quoted" in code and "features of the CNN trained on all" in code
    assert "quoted from those lessons" in markdown


def test_models_are_loaded_or_trained():
    code = "\n".join(source(c) for c in cells(NOTEBOOK) if c["cell_type"] == "code")
    assert "trained_mnist_cnn(data=mnist)" in code
    assert "trained_robust_cnn(data=mnist, device=device)" in code


def test_the_upload_widget_handles_both_ipywidgets_versions():
    assert 'demo.uploaded_files(change["new"])' in cell_with("FileUpload(")
