"""Lessons 02 and 03: each exercise's solution passes its self-check, right answers from any seed
pass, the common wrong answers get their specific hint, and undone exercises do not crash."""

from __future__ import annotations

import re

import numpy as np
import pytest

from helpers import linefit
from helpers.core import one_cpu_thread
from tests.nbtools import cells, exercises, imports_namespace, run_self_check, source

LESSON_02 = "02_gradient_descent.ipynb"
EXERCISES_02 = exercises(LESSON_02)


def _lesson_02_namespace() -> dict:
    """What lesson 02's exercises use: its imports, its data and its lin/mse."""
    names = imports_namespace(LESSON_02)
    rng = np.random.default_rng(42)  # as in the notebook
    x = rng.random(30)
    names.update(x=x, y=3 * x + 8, lin=linefit.lin, mse=linefit.mse)
    names["x_noisy"], names["y_noisy"] = linefit.line_data(a=3, b=8, n=30, seed=0, noise=0.5)
    return names


@pytest.mark.parametrize("notebook", [LESSON_02, "03_learning_filters.ipynb"])
def test_early_lessons_import_basics_from_core_not_lesson_05(notebook):
    code = "\n".join(source(cell) for cell in cells(notebook) if cell["cell_type"] == "code")
    assert "helpers.training" not in code
    assert "validation_split" not in code


def test_lesson_02_data_is_line_data():
    x, y = linefit.line_data()
    names = _lesson_02_namespace()
    np.testing.assert_array_equal(names["x"], x)
    np.testing.assert_allclose(names["y"], y)


def test_lesson_02_has_three_exercises():
    assert len(EXERCISES_02) == 3
    assert all({"your_turn", "check", "solution"} <= exercise.keys() for exercise in EXERCISES_02)


@pytest.mark.parametrize("index", range(len(EXERCISES_02)))
def test_lesson_02_solution_passes_its_self_check(index, capsys):
    names = _lesson_02_namespace()
    assert "✅" in run_self_check(EXERCISES_02[index], names, EXERCISES_02[index]["solution"], capsys)


@pytest.mark.parametrize("index", range(len(EXERCISES_02)))
def test_lesson_02_undone_exercise_says_so(index, capsys):
    names = _lesson_02_namespace()
    assert "⏳" in run_self_check(EXERCISES_02[index], names, EXERCISES_02[index]["your_turn"], capsys)


@pytest.mark.parametrize(
    "index, wrong",
    [(0, "my_gradient = (9.0, 18.0)"), (1, "my_largest_lr = 0.9"), (2, "noisy_fit = (3.0, 8.0)")],
)
def test_lesson_02_wrong_answers_are_called_wrong(index, wrong, capsys):
    names = _lesson_02_namespace()
    assert "❌" in run_self_check(EXERCISES_02[index], names, wrong, capsys)


@pytest.mark.parametrize(
    "wrong, hint",
    [
        ("(9, 18)", "Check the sign"),  # error taken as y - prediction
        ("(-4.5, -9)", "factor 2"),  # the square's 2 dropped
        ("(-18, -9)", "in the order (d loss/d a, d loss/d b)"),  # swapped
        ("(-18, -18)", "d/da has the factor x"),
        ("81", "That is the loss"),
        ("-9", "Give two numbers"),
        ("(1, 2)", "First the error e = a*x + b - y"),
    ],
)
def test_lesson_02_gradient_wrong_answers_get_their_hint(wrong, hint, capsys):
    names = _lesson_02_namespace()
    out = run_self_check(EXERCISES_02[0], names, f"my_gradient = {wrong}", capsys)
    assert "❌" in out and hint in out


@pytest.mark.parametrize("right", ["(-9, -18)", "[-9.0, -18.0]", "np.array([-9, -18])"])
def test_lesson_02_gradient_accepts_every_right_answer(right, capsys):
    names = _lesson_02_namespace()
    assert "✅" in run_self_check(EXERCISES_02[0], names, f"my_gradient = {right}", capsys)


@pytest.mark.parametrize(
    "wrong, hint",
    [
        ("(3, 8)", "the line we hid"),  # the hidden line, not the best fit
        ("tuple(np.polyfit(x_noisy, y_noisy, 1).round(1))", "at least two decimals"),  # (3.0, 8.1)
        ("descend(-1.0, 1.0, x_noisy, y_noisy, lr=0.5, steps=300)", "whole path that descend returns"),
        ("tuple(np.polyfit(x_noisy, y_noisy, 1)[::-1])", "in the order (a, b)"),
        ("descend(-1.0, 1.0, x_noisy, y_noisy, lr=0.01, steps=300)[-1]", "100 steps are plenty"),  # too short
    ],
)
def test_lesson_02_noisy_fit_wrong_answers_get_their_hint(wrong, hint, capsys):
    names = _lesson_02_namespace()
    out = run_self_check(EXERCISES_02[2], names, f"noisy_fit = {wrong}", capsys)
    assert "❌" in out and hint in out


@pytest.mark.parametrize(
    "right",
    [
        "tuple(np.polyfit(x_noisy, y_noisy, 1).round(2))",  # two decimals, as the exercise asks
        "descend(-1.0, 1.0, x_noisy, y_noisy, lr=0.5, steps=100)[-1]",
        "descend(-1.0, 1.0, x_noisy, y_noisy, lr=0.01, steps=2000)[-1]",
    ],
)
def test_lesson_02_noisy_fit_accepts_every_right_answer(right, capsys):
    names = _lesson_02_namespace()
    assert "✅" in run_self_check(EXERCISES_02[2], names, f"noisy_fit = {right}", capsys)


@pytest.mark.parametrize("right", ["0.72", "0.73", "0.74", "0.745", "0.749", "np.arange(0.01, 0.9, 0.01)[73]"])
def test_lesson_02_largest_lr_accepts_every_right_answer(right, capsys):
    names = _lesson_02_namespace()
    assert "✅" in run_self_check(EXERCISES_02[1], names, f"my_largest_lr = {right}", capsys)


@pytest.mark.parametrize(
    "wrong, hint",
    [
        ("0.75", "0.75 is the limit 0.7497... rounded up"),  # sensible rounding, but past the limit
        ("75", "looks like a percentage"),
        ("0.8", "the descent diverges"),
        ("0.5", "but larger learning rates do too"),
        ("'0.74'", "as a number, without quotes"),
    ],
)
def test_lesson_02_largest_lr_wrong_answers_get_their_hint(wrong, hint, capsys):
    names = _lesson_02_namespace()
    out = run_self_check(EXERCISES_02[1], names, f"my_largest_lr = {wrong}", capsys)
    assert "❌" in out and hint in out


def test_lesson_02_asks_for_a_prediction_before_the_learning_rates():
    texts = [source(cell) for cell in cells(LESSON_02)]
    ask = next(i for i, text in enumerate(texts) if "Predict before you run" in text)
    assert "slider_explorer" in texts[ask + 1]  # the very next cell shows the answer


LESSON_03 = "03_learning_filters.ipynb"
EXERCISES_03 = exercises(LESSON_03)


@pytest.fixture(scope="module")
def lesson_03_namespace():
    """What lesson 03's exercises use: its imports and its 8-vs-1 training and validation splits."""
    import torch

    from helpers.core import split_indices
    from helpers.data import load_mnist
    from helpers.learnable import two_digits

    names = imports_namespace(LESSON_03)
    mnist = load_mnist()
    images, targets = two_digits(mnist.train_images, mnist.train_labels, yes=8, no=1)
    train_index, valid_index = split_indices(len(images), valid_size=0.2, seed=0)  # as in the notebook
    names.update(
        X_train=images[train_index],
        y_train=targets[train_index],
        X_valid=images[valid_index],
        y_valid=targets[valid_index],
        device=torch.device("cpu"),
    )
    with one_cpu_thread():  # tiny convolutions: fastest on one thread
        yield names


def _with_seed(solution: str, seed: int) -> str:
    assert "torch.manual_seed(0)" in solution
    return solution.replace("torch.manual_seed(0)", f"torch.manual_seed({seed})")


def test_lesson_03_has_three_exercises():
    assert len(EXERCISES_03) == 3
    assert all({"your_turn", "check", "solution"} <= exercise.keys() for exercise in EXERCISES_03)


@pytest.mark.parametrize("index", range(len(EXERCISES_03)))
def test_lesson_03_solution_passes_its_self_check(lesson_03_namespace, index, capsys):
    names = dict(lesson_03_namespace)
    assert "✅" in run_self_check(EXERCISES_03[index], names, EXERCISES_03[index]["solution"], capsys)


@pytest.mark.parametrize(
    "index, seed",
    [(0, 1), (0, 2), (0, 3), (0, 4), (0, 5), (1, 1), (1, 2), (1, 7), (2, 1), (2, 2), (2, 3)],
)
def test_lesson_03_solutions_pass_from_other_seeds(lesson_03_namespace, index, seed, capsys):
    """A few seeds besides the solutions' 0; the bars sit below the spread over many seeds.

    Validation accuracy of each solution over seeds 0-19, measured on the sample (one thread,
    without the notebook pins): exercise 1 (two filters) 95.9-98.6% (bar 94%), exercise 2
    (5x5 filters) 98.1-99.5% (bar 97%), exercise 3 (no pooling, lr 0.01) 97.3-98.1% (bar 96%).
    """
    names = dict(lesson_03_namespace)
    solution = _with_seed(EXERCISES_03[index]["solution"], seed)
    assert "✅" in run_self_check(EXERCISES_03[index], names, solution, capsys)


@pytest.mark.parametrize("index", range(len(EXERCISES_03)))
def test_lesson_03_undone_exercise_says_so(lesson_03_namespace, index, capsys):
    names = dict(lesson_03_namespace)
    assert "⏳" in run_self_check(EXERCISES_03[index], names, EXERCISES_03[index]["your_turn"], capsys)


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (  # the history that train returns, given instead of the model
            "torch.manual_seed(0)\nm = LearnableFilters(n_filters=2)\n"
            "two_filters = train(m, X_train, y_train, steps=300, progress=False)",
            "the history that train(...) returns",
        ),
        ("two_filters = LearnableFilters(n_filters=8)", "Your model has n_filters=8"),
        ("two_filters = LearnableFilters(n_filters=2)", "never been through a training step"),
        (  # trained far too little
            "torch.manual_seed(0)\ntwo_filters = LearnableFilters(n_filters=2)\n"
            "train(two_filters, X_train, y_train, steps=3, lr=0.01, progress=False)",
            "Train it for the steps the exercise asks",
        ),
    ],
)
def test_lesson_03_two_filters_wrong_answers_get_their_hint(lesson_03_namespace, wrong, hint, capsys):
    names = dict(lesson_03_namespace)
    out = run_self_check(EXERCISES_03[0], names, wrong, capsys)
    assert "❌" in out and hint in out


def test_lesson_03_no_pooling_at_too_large_a_learning_rate_is_explained(lesson_03_namespace, capsys):
    """At lr 0.1, some starts of the unpooled model overshoot and answer "1" to everything.

    Seeds 1 and 2 (also 10 and 18) got stuck so on the machine that set this test; another
    machine's arithmetic may rescue one of them, so at least one of the two must be stuck.
    """
    outs = []
    for seed in (1, 2):
        names = dict(lesson_03_namespace)
        solution = _with_seed(EXERCISES_03[2]["solution"], seed).replace("lr=0.01", "lr=0.1")
        outs.append(run_self_check(EXERCISES_03[2], names, solution, capsys))
    stuck = [out for out in outs if "❌" in out]
    assert stuck and all("same answer for every image" in out for out in stuck)


def test_lesson_03_bars_are_what_the_notebook_says():
    checks = [exercise["check"] for exercise in EXERCISES_03]
    bars = [float(re.search(r"min_accuracy=([0-9.]+)", text).group(1)) for text in checks]
    assert bars == [0.94, 0.97, 0.96]


def test_lesson_03_asks_for_a_prediction_before_the_frozen_filters():
    texts = [source(cell) for cell in cells(LESSON_03)]
    ask = next(i for i, text in enumerate(texts) if "Predict before you run" in text)
    assert "requires_grad_(False)" in texts[ask + 1]
