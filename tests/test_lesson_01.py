"""Lesson 01's exercises: each solution passes its self-check; undone exercises do not crash."""

from __future__ import annotations

import pytest

from helpers.data import load_mnist
from tests.nbtools import exercises, imports_namespace

NOTEBOOK = "01_hand_made_filters.ipynb"
EXERCISES = exercises(NOTEBOOK)


@pytest.fixture(scope="module")
def namespace():
    names = imports_namespace(NOTEBOOK)
    names["mnist"] = load_mnist()
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


def test_a_wrong_answer_is_called_wrong(namespace, capsys):
    names = dict(namespace)
    exec(EXERCISES[0]["your_turn"].replace("right_edge = ...", "right_edge = TOP_EDGE"), names)
    exec(EXERCISES[0]["check"], names)
    assert "❌" in capsys.readouterr().out
