"""Lessons 02 and 03: each exercise's solution passes its self-check, right answers from any seed
pass, the common wrong answers get their specific hint, and undone exercises do not crash."""

from __future__ import annotations

import re

import numpy as np
import pytest

from helpers import linefit
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
# Lesson 03's answers (the solutions, right answers from other seeds and forms, and the wrong
# ones with their hints) are tried in tests/trials/lesson_03.py, run by tests/test_exercises.py.


def test_lesson_03_has_three_exercises():
    assert len(EXERCISES_03) == 3
    assert all({"your_turn", "check", "solution"} <= exercise.keys() for exercise in EXERCISES_03)


def test_lesson_03_bars_are_what_the_notebook_says():
    checks = [exercise["check"] for exercise in EXERCISES_03]
    bars = [float(re.search(r"min_accuracy=([0-9.]+)", text).group(1)) for text in checks]
    assert bars == [0.94, 0.97, 0.96]


def test_lesson_03_checks_ask_for_the_method_each_exercise_names():
    """Each check names the shape, steps, learning rate and training split its exercise asks for
    (issue 20: a model trained on the validation split, two 5x5 filters where eight are asked for,
    30 steps for 300 all scored well enough to pass)."""
    checks = [exercise["check"] for exercise in EXERCISES_03]
    for text in checks:
        assert "steps=300" in text and "trained_on=X_train" in text and "X_test" in text
    assert "n_filters=2" in checks[0]
    assert "n_filters=8" in checks[1] and "size=5" in checks[1]
    assert "n_filters=8" in checks[2] and "pool=1" in checks[2] and "lr=0.01" in checks[2]


def test_lesson_03_asks_for_a_prediction_before_the_frozen_filters():
    texts = [source(cell) for cell in cells(LESSON_03)]
    ask = next(i for i, text in enumerate(texts) if "Predict before you run" in text)
    assert "requires_grad_(False)" in texts[ask + 1]
