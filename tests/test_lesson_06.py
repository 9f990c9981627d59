"""Lesson 06's exercises: each solution passes its self-check; undone or wrong answers are called so."""

from __future__ import annotations

import pytest
import torch

from helpers.data import load_mnist
from helpers.models import mnist_cnn
from helpers.training import fit
from tests.nbtools import cells, exercises, imports_namespace, source

NOTEBOOK = "06_visualizing_filters.ipynb"
EXERCISES = exercises(NOTEBOOK)


@pytest.fixture(scope="module")
def namespace():
    """The notebook's imports plus `mnist` and a `model`: the lesson's CNN, trained briefly.

    The self-checks compare an answer with what the model in the namespace gives, so any
    trained model will do; a short training keeps the test fast.
    """
    names = imports_namespace(NOTEBOOK)
    mnist = load_mnist()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small batches: one thread is faster, and unaffected by other load
    try:
        model = mnist_cnn()
        fit(model, mnist.train_images[:2000], mnist.train_labels[:2000], epochs=1, progress=False, device="cpu")
    finally:
        torch.set_num_threads(threads)
    names.update(mnist=mnist, model=model.eval())
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
    [
        (0, "conv2_field = 5"),  # 3 + 2: forgets that a pooled cell already sees 4 pixels
        (1, "top_edge_filter = 16"),  # there are only filters 0-15
        (2, "favourite_class = 'three'"),
    ],
)
def test_a_wrong_answer_is_called_wrong(namespace, index, wrong, capsys):
    names = dict(namespace)
    exec(wrong, names)
    exec(EXERCISES[index]["check"], names)
    assert "❌" in capsys.readouterr().out


def test_notebook_loads_saved_weights_or_trains_the_same_model():
    code = "\n".join(source(cell) for cell in cells(NOTEBOOK) if cell["cell_type"] == "code")
    assert "WEIGHTS_PATH.is_file()" in code
    assert "trained_mnist_cnn(data=mnist)" in code, "loads lesson 05's weights, or trains with lesson 05's recipe"
