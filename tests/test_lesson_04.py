"""Lesson 04: every exercise solution passes its self-check, and an undone exercise does not raise."""

import re

import pytest

from tests.nbtools import cells, solutions, source

NOTEBOOK = "04_cnn_building_blocks.ipynb"


def _imports() -> str:
    """The notebook's imports cell (the one that imports ``check``)."""
    return next(source(c) for c in cells(NOTEBOOK) if "from helpers.exercises import check" in source(c))


def _exercises() -> list[tuple[str, str, str]]:
    """(your-turn cell, self-check cell, solution) for each exercise, in notebook order."""
    code = [source(c) for c in cells(NOTEBOOK) if c["cell_type"] == "code"]
    checks = [i for i, text in enumerate(code) if text.lstrip().startswith("check(")]
    found = solutions(NOTEBOOK)
    assert len(checks) == len(found) == 5, (len(checks), len(found))
    return [(code[i - 1], code[i], solution) for i, solution in zip(checks, found, strict=True)]


@pytest.fixture(scope="module")
def namespace():
    ns: dict = {}
    exec(_imports(), ns)  # noqa: S102 - the notebook's own imports
    return ns


@pytest.mark.parametrize("index", range(5))
def test_solution_passes_its_check(index, namespace, capsys):
    _, check_cell, solution = _exercises()[index]
    ns = dict(namespace)
    exec(solution, ns)  # noqa: S102
    assert bool(eval(check_cell, ns)) is True  # noqa: S307
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("index", range(5))
def test_undone_exercise_does_not_raise(index, namespace, capsys):
    your_turn, check_cell, _ = _exercises()[index]
    assert re.search(r"= \.\.\.$", your_turn, re.MULTILINE), your_turn
    ns = dict(namespace)
    exec(your_turn, ns)  # noqa: S102
    assert bool(eval(check_cell, ns)) is False  # noqa: S307
    assert "not done yet" in capsys.readouterr().out


@pytest.mark.parametrize("index", range(5))
def test_wrong_answer_is_caught(index, namespace, capsys):
    _, check_cell, _ = _exercises()[index]
    ns = dict(namespace)
    your_turn_name = re.search(r"^check\(\s*\"[^\"]+\",\s*(\w+)", check_cell.strip()).group(1)
    ns[your_turn_name] = (lambda x, slope=0.01: x) if index == 3 else 0
    assert bool(eval(check_cell, ns)) is False  # noqa: S307
    assert "❌" in capsys.readouterr().out
