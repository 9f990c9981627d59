"""Lesson 06's structure: three exercises, the model loaded or trained on the device and said
what trained it, Exercise 3's channel chosen so that no slip reaches its answer, prose that names
no data count. The answers themselves are tried in ``tests/trials/lesson_06.py``.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.nbtools import cells, exercises, run_self_check, source
from tests.trials.lesson_06 import cell_with, lesson_names

NOTEBOOK = "06_visualizing_filters.ipynb"
EXERCISES = exercises(NOTEBOOK)


def markdown() -> str:
    return "\n".join(source(cell) for cell in cells(NOTEBOOK) if cell["cell_type"] == "markdown")


@pytest.fixture(scope="module", params=[0, 1], ids=["seed0", "seed1"])
def any_seed_namespace(request):
    """Models trained from different seeds: other filters, channels and favourite digits."""
    return lesson_names(request.param)


def test_three_exercises_with_solutions():
    assert len(EXERCISES) == 3
    assert all({"your_turn", "check", "solution"} <= exercise.keys() for exercise in EXERCISES)


def test_conv4_field_is_measured_as_38(any_seed_namespace):
    names = dict(any_seed_namespace)
    exec("conv4_field = 38", names)
    exec(EXERCISES[0]["check"], names)
    assert names["conv4_size"] == 38, "conv3 sees 18 at spacing 4; pool3: 22 at 8; conv4: 22 + 2 * 8"


def test_exercise_3_channel_has_one_favourite_that_no_slip_gives(any_seed_namespace, capsys):
    names = any_seed_namespace
    channel, top_labels = names["exercise_channel"], names["top_labels"]

    def favourites(labels):
        counts = np.bincount(labels, minlength=10)
        return {int(d) for d in np.flatnonzero(counts == counts.max())}

    favourite = favourites(top_labels["conv3"][channel])
    assert len(favourite) == 1, "no tie"
    slips = {int(top_labels["conv3"][channel][0])}
    for layer in ("conv1", "conv2"):
        if channel < len(top_labels[layer]):
            slips |= favourites(top_labels[layer][channel])
    assert not favourite & slips
    assert "✅" in run_self_check(EXERCISES[2], names, EXERCISES[2]["solution"], capsys)


def test_solutions_pass_for_another_seed(any_seed_namespace, capsys):
    for exercise in EXERCISES:
        assert "✅" in run_self_check(exercise, any_seed_namespace, exercise["solution"], capsys)


def test_notebook_loads_saved_weights_or_trains_the_same_model_on_the_device_and_says_what_trained_it():
    code = "\n".join(source(cell) for cell in cells(NOTEBOOK) if cell["cell_type"] == "code")
    assert "WEIGHTS_PATH.is_file()" in code
    assert "trained_mnist_cnn(data=mnist).to(device)" in code, "lesson 05's model, on pick_device()"
    assert "device = pick_device()" in code
    assert "describe_record(model.training_record)" in code


def test_every_check_reads_numbers_through_as_number():
    for exercise in EXERCISES:
        assert "as_number(" in exercise["check"]
        assert "isinstance(answer, int | float" not in exercise["check"]


def test_prose_names_no_data_count_and_the_accuracy_verdict_has_a_band_for_full_mnist():
    assert not re.search(r"9,000|10,000|54,000|60,000", markdown()), "counts are printed from the run"
    verdict = cell_with("test accuracy between")
    assert 'mnist.source == "sample"' in verdict and "FAILED" in verdict


def test_exercise_2_prompt_names_a_weight_the_helper_takes(any_seed_namespace):
    """The prompt's `model.conv1.weight[:, 0]` is the (16, 3, 3) stack that cosine_similarity compares."""
    prompt = next(
        source(cell) for cell in cells(NOTEBOOK) if cell["cell_type"] == "markdown" and "## Exercise 2" in source(cell)
    )
    assert "`model.conv1.weight[:, 0]`" in prompt
    names = any_seed_namespace
    cosines = names["V"].cosine_similarity(names["model"].conv1.weight[:, 0], names["TOP_EDGE"][None])
    assert cosines.shape == (16, 1)


def test_the_explorer_does_not_show_exercise_2s_answer():
    explorer = next(source(cell) for cell in cells(NOTEBOOK) if "slider_explorer(" in source(cell))
    assert "similarity" not in explorer and "TOP_EDGE" not in explorer, "the static frame names no filter by cosine"
