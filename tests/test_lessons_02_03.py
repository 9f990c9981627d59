"""Lessons 02 and 03: each exercise's solution passes its self-check; undone exercises do not crash."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import linefit
from tests.nbtools import exercises, imports_namespace

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
    exec(EXERCISES_02[index]["solution"], names)
    capsys.readouterr()
    exec(EXERCISES_02[index]["check"], names)
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("index", range(len(EXERCISES_02)))
def test_lesson_02_undone_exercise_says_so(index, capsys):
    names = _lesson_02_namespace()
    exec(EXERCISES_02[index]["your_turn"], names)
    exec(EXERCISES_02[index]["check"], names)
    assert "⏳" in capsys.readouterr().out


@pytest.mark.parametrize(
    "index, wrong",
    [(0, "my_gradient = (9.0, 18.0)"), (1, "my_largest_lr = 0.9"), (2, "noisy_fit = (3.0, 8.0)")],
)
def test_lesson_02_wrong_answers_are_called_wrong(index, wrong, capsys):
    names = _lesson_02_namespace()
    exec(wrong, names)
    exec(EXERCISES_02[index]["check"], names)
    assert "❌" in capsys.readouterr().out


LESSON_03 = "03_learning_filters.ipynb"
EXERCISES_03 = exercises(LESSON_03)


@pytest.fixture(scope="module")
def lesson_03_namespace():
    """What lesson 03's exercises use: its imports and its 8-vs-1 training and validation splits."""
    import torch

    from helpers.data import load_mnist
    from helpers.learnable import two_digits, validation_split

    names = imports_namespace(LESSON_03)
    mnist = load_mnist()
    images, targets = two_digits(mnist.train_images, mnist.train_labels, yes=8, no=1)
    train_index, valid_index = validation_split(len(images), fraction=0.2, seed=0)
    names.update(
        X_train=images[train_index],
        y_train=targets[train_index],
        X_valid=images[valid_index],
        y_valid=targets[valid_index],
        device=torch.device("cpu"),
    )
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: fastest on one thread
    yield names
    torch.set_num_threads(before)


def test_lesson_03_has_three_exercises():
    assert len(EXERCISES_03) == 3
    assert all({"your_turn", "check", "solution"} <= exercise.keys() for exercise in EXERCISES_03)


@pytest.mark.parametrize("index", range(len(EXERCISES_03)))
def test_lesson_03_solution_passes_its_self_check(lesson_03_namespace, index, capsys):
    names = dict(lesson_03_namespace)
    exec(EXERCISES_03[index]["solution"], names)
    capsys.readouterr()
    exec(EXERCISES_03[index]["check"], names)
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("index", range(len(EXERCISES_03)))
def test_lesson_03_undone_exercise_says_so(lesson_03_namespace, index, capsys):
    names = dict(lesson_03_namespace)
    exec(EXERCISES_03[index]["your_turn"], names)
    exec(EXERCISES_03[index]["check"], names)
    assert "⏳" in capsys.readouterr().out


def test_lesson_03_wrong_answer_is_called_wrong(lesson_03_namespace, capsys):
    from helpers.learnable import LearnableFilters

    names = dict(lesson_03_namespace)
    names["two_filters"] = LearnableFilters(n_filters=8)  # wrong count, and untrained
    exec(EXERCISES_03[0]["check"], names)
    assert "❌" in capsys.readouterr().out
