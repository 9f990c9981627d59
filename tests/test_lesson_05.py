"""Lesson 05's exercises: each solution passes its self-check; undone exercises do not crash."""

from __future__ import annotations

import pytest

from helpers.data import load_mnist
from helpers.training import split_validation
from tests.nbtools import cells, exercises, imports_namespace, source

NOTEBOOK = "05_training_a_cnn.ipynb"
EXERCISES = exercises(NOTEBOOK)


@pytest.fixture(scope="module")
def namespace():
    names = imports_namespace(NOTEBOOK)
    mnist = load_mnist()
    (train_images, train_labels), (valid_images, valid_labels) = split_validation(
        mnist.train_images, mnist.train_labels, valid_size=0.1, seed=0
    )
    names.update(
        mnist=mnist,
        train_images=train_images,
        train_labels=train_labels,
        valid_images=valid_images,
        valid_labels=valid_labels,
    )
    return names


def test_three_exercises_with_solutions():
    assert len(EXERCISES) == 3
    assert all({"your_turn", "check", "solution"} <= exercise.keys() for exercise in EXERCISES)


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


@pytest.mark.parametrize(
    ("index", "wrong"),
    [(0, "two_block_model = mnist_cnn()"), (1, "best_lr = 1.0"), (2, "small_accuracy = 99.0")],
)
def test_a_wrong_answer_is_called_wrong(namespace, index, wrong, capsys):
    names = dict(namespace)
    exec(wrong, names)
    exec(EXERCISES[index]["check"], names)
    assert "❌" in capsys.readouterr().out


def test_notebook_saves_and_reloads_with_weights_only():
    code = "\n".join(source(cell) for cell in cells(NOTEBOOK) if cell["cell_type"] == "code")
    assert "save_weights(model, WEIGHTS_PATH)" in code
    assert "torch.load(WEIGHTS_PATH, weights_only=True)" in code
    assert "valid=(valid_images, valid_labels)" in code, "curves come from the validation split"
