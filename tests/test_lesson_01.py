"""Lesson 01's exercises: each solution passes its self-check, every right answer a learner can
reach is accepted (equivalent filters, sensible rounding), the common wrong answers get their
own hint, no hint gives the answer away, and undone exercises do not crash."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest

from helpers.data import load_mnist
from helpers.filters import TOP_EDGE, FingerprintClassifier
from tests.nbtools import exercises, imports_namespace, run_self_check

NOTEBOOK = "01_hand_made_filters.ipynb"
EXERCISES = exercises(NOTEBOOK)
RIGHT_EDGE, BY_HAND, THREE_VS_SEVEN = range(3)


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


@pytest.fixture(scope="module")
def namespace(mnist):
    names = imports_namespace(NOTEBOOK)
    names["mnist"] = mnist
    return names


@pytest.fixture(scope="module")
def accuracies(mnist):
    """What a learner can compute for exercise 3, right and wrong."""

    def fitted(digits):
        train, test = np.isin(mnist.train_labels, digits), np.isin(mnist.test_labels, digits)
        model = FingerprintClassifier().fit(mnist.train_images[train], mnist.train_labels[train])
        return model, train, test

    model, train, test = fitted([3, 7])
    eight_one, _, test_8_1 = fitted([8, 1])
    return {
        "test": model.score(mnist.test_images[test], mnist.test_labels[test]),
        "train": model.score(mnist.train_images[train], mnist.train_labels[train]),
        "all test": model.score(mnist.test_images, mnist.test_labels),
        "correct count": int((model.predict(mnist.test_images[test]) == mnist.test_labels[test]).sum()),
        "8 vs 1": eight_one.score(mnist.test_images[test_8_1], mnist.test_labels[test_8_1]),
    }


def rounded_twice(fraction: float) -> float:
    """What a learner gets by rounding the printed percentage (one decimal) to a whole percent, half up."""
    percent = Decimal(f"{100 * fraction:.1f}")
    return float(percent.quantize(Decimal(1), rounding=ROUND_HALF_UP)) / 100


def run_check(namespace, index, answer, capsys) -> str:
    """Set the exercise's answer variable to ``answer``, run its self-check, return what it printed."""
    variable = EXERCISES[index]["your_turn"].split("\n")[-1].split(" = ")[0]
    return run_self_check(EXERCISES[index], {**namespace, variable: answer}, "", capsys)


def test_three_exercises_with_solutions():
    assert len(EXERCISES) == 3
    assert all({"your_turn", "check", "solution"} <= exercise.keys() for exercise in EXERCISES)
    assert [e["your_turn"].split("\n")[-1] for e in EXERCISES] == [
        "right_edge = ...",
        "my_response = ...",
        "accuracy_3_vs_7 = ...",
    ]


@pytest.mark.parametrize("index", range(len(EXERCISES)))
def test_solution_passes_its_self_check(namespace, index, capsys):
    names = dict(namespace)
    exec(EXERCISES[index]["solution"], names)
    capsys.readouterr()
    exec(EXERCISES[index]["check"], names)
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("index", range(len(EXERCISES)))
def test_undone_exercise_says_so_without_raising(namespace, index, capsys):
    names = dict(namespace)
    exec(EXERCISES[index]["your_turn"], names)
    exec(EXERCISES[index]["check"], names)
    assert "⏳" in capsys.readouterr().out


# Exercise 1: a right-edge filter


@pytest.mark.parametrize(
    "right_edge",
    [
        np.rot90(TOP_EDGE, 3),
        np.rot90(TOP_EDGE, -1),
        [[0, 1, -1], [0, 1, -1], [0, 1, -1]],  # a plain list
        2 * np.rot90(TOP_EDGE, 3),  # any positive scale
        np.array([[1, 0, -1]] * 3),  # Prewitt: equal at columns 5 and 6, both on the edge
        np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]]),  # Sobel
        np.array([[0, 0, 0], [0, 1, -1], [0, 0, 0]]),  # one row is enough
    ],
    ids=["rot90 k=3", "rot90 k=-1", "list", "scaled", "prewitt", "sobel", "one row"],
)
def test_every_right_edge_filter_is_accepted(namespace, capsys, right_edge):
    assert "✅" in run_check(namespace, RIGHT_EDGE, right_edge, capsys)


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (TOP_EDGE, "each of its columns adds up to 0"),
        (np.rot90(TOP_EDGE, 2), "each of its columns adds up to 0"),  # the bottom edge
        (np.rot90(TOP_EDGE, 1), "most at the bar's left edge"),  # the left edge
        (-np.rot90(TOP_EDGE, 3), "Along the bar it responds"),  # signs swapped: strongest outside the bar
        (np.ones((3, 3)), "Along the bar it responds"),  # a blur
        ([[0, 2, -1]] * 3, "Make the weights add up to 0"),  # most at the right edge, but the left fires too
        ([[-1, 2, -1]] * 3, "where the ink starts"),  # a line finder: both edges alike
        ([0, 1, -1], "yours has shape (3,)"),
        (np.zeros((5, 5)), "yours has shape (5, 5)"),
        ("right", "Give a 3x3 numpy array of numbers"),
    ],
    ids=["top", "bottom", "left", "negated", "blur", "sum not 0", "both edges", "one row list", "5x5", "text"],
)
def test_wrong_right_edge_filters_get_their_hint(namespace, capsys, wrong, hint):
    out = run_check(namespace, RIGHT_EDGE, wrong, capsys)
    assert "❌" in out and hint in out, out


@pytest.mark.parametrize(
    "wrong", [TOP_EDGE, np.rot90(TOP_EDGE, 1), np.ones((3, 3)), [[0, 2, -1]] * 3, [[-1, 2, -1]] * 3, [1, 2]]
)
def test_right_edge_hints_do_not_give_the_answer_away(namespace, capsys, wrong):
    out = run_check(namespace, RIGHT_EDGE, wrong, capsys)
    for giveaway in ("rot90", "0, 1, -1", "-1s in the right column", "+1s in the middle column"):
        assert giveaway not in out


# Exercise 2: one response by hand


@pytest.mark.parametrize("answer", [2.2, 2.20, np.float32(2.2), 2.2000001, 2.199, np.array(2.2)])
def test_the_response_by_hand_is_accepted_with_float_noise(namespace, capsys, answer):
    assert "✅" in run_check(namespace, BY_HAND, answer, capsys)


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (-2.2, "The sign is the wrong way round"),
        (3.0, "The top row's weights are -1"),  # top row added
        (2.6, "The top row's weights are -1"),  # top row left out
        (5.0, "The bottom row's weights are 0"),  # bottom row added
        (-0.6, "The bottom row's weights are 0"),  # bottom row subtracted
        (-0.2, "turned 180 degrees (convolution)"),  # the turned filter
        (1.0, "That is the centre pixel"),
        (7.0, "Multiply each filter weight by the pixel under it"),
        ([1, 2], "Give one number"),
    ],
)
def test_wrong_responses_by_hand_get_their_hint(namespace, capsys, wrong, hint):
    out = run_check(namespace, BY_HAND, wrong, capsys)
    assert "❌" in out and hint in out, out


# Exercise 3: 3 vs 7


@pytest.mark.parametrize("digits", [None, 4, 3, 2])
def test_the_3_vs_7_accuracy_is_accepted_however_rounded(namespace, capsys, accuracies, digits):
    answer = accuracies["test"] if digits is None else round(accuracies["test"], digits)
    assert "✅" in run_check(namespace, THREE_VS_SEVEN, answer, capsys)
    assert "✅" in run_check(namespace, THREE_VS_SEVEN, np.float32(answer), capsys)


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda a: 100 * a["test"], "That looks like a percentage: give a fraction between 0 and 1"),
        (lambda a: round(100 * a["test"], 1), "That looks like a percentage: give a fraction between 0 and 1"),
        (lambda a: a["correct count"], "That looks like a count of images"),
        (lambda a: 1 - a["test"], "That is the share of mistakes"),
        (lambda a: a["train"], "That is the accuracy on the training 3s and 7s"),
        (lambda a: rounded_twice(a["test"]), "Two decimals are too few here: give three"),
        (lambda a: round(a["train"], 2), "It is also the training accuracy rounded"),
        (lambda a: a["all test"], "That scores all ten digits of the test set"),
        (lambda a: round(a["all test"], 2), "That scores all ten digits of the test set"),
        (lambda a: a["8 vs 1"], "That is the 8 vs 1 accuracy"),
        (lambda a: 0.5, "Select with np.isin(labels, [3, 7])"),
        (lambda a: "95.5%", "Give one number"),
    ],
    ids=[
        "percent",
        "percent rounded",
        "count",
        "error rate",
        "training",
        "rounded twice",
        "training 2 decimals",
        "all ten",
        "all ten 2 decimals",
        "8 vs 1",
        "other",
        "text",
    ],
)
def test_wrong_3_vs_7_accuracies_get_their_hint(namespace, capsys, accuracies, wrong, hint):
    out = run_check(namespace, THREE_VS_SEVEN, wrong(accuracies), capsys)
    assert "❌" in out and hint in out, out


def test_the_measured_wrong_answers_are_really_different(accuracies):
    """The hints above are only meaningful when the wrong answers differ from the right one."""
    right = accuracies["test"]
    assert abs(accuracies["train"] - right) > 0.005
    assert abs(rounded_twice(right) - right) > 0.005  # rounding the percentage twice lands one off
    assert abs(round(accuracies["train"], 2) - rounded_twice(right)) < 1e-9  # ... on the training accuracy, rounded
    assert abs(accuracies["8 vs 1"] - right) > 0.005
    assert abs(accuracies["all test"] - right) > 0.005
