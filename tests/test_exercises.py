"""Every exercise of every lesson, tried with a table of answers a learner might give.

The tables live in ``tests/trials/lesson_NN.py`` (see ``tests/trials/__init__.py``). One
parametrised test, :func:`test_trial_answer`, runs each answer through its exercise's real
self-check cell (read from the notebook) with one test id per exercise and answer:
``NN-exK-right-i`` must be accepted, ``NN-exK-wrong-i`` rejected with its specific hint.
Also here: the solutions and the undone exercises, for every lesson, and ``as_number``.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
from fractions import Fraction

import numpy as np
import pytest
import torch

import tests.trials
from helpers.exercises import AnswerFormError, as_number, check
from tests.nbtools import exercises, notebook_paths, run_self_check

TRIAL_MODULES = {
    name.removeprefix("lesson_"): importlib.import_module(f"tests.trials.{name}")
    for _, name, _ in pkgutil.iter_modules(tests.trials.__path__)
    if name.startswith("lesson_")
}
MIN_RIGHT, MIN_WRONG = 3, 4


def _cases() -> list:
    cases = []
    for lesson, module in sorted(TRIAL_MODULES.items()):
        for number, table in sorted(module.TRIALS.items()):
            for i, code in enumerate(table["right"], 1):
                cases.append(pytest.param(lesson, number, code, None, id=f"{lesson}-ex{number}-right-{i}"))
            for i, (code, hint) in enumerate(table["wrong"], 1):
                cases.append(pytest.param(lesson, number, code, hint, id=f"{lesson}-ex{number}-wrong-{i}"))
    return cases


@pytest.fixture(scope="session")
def lesson_namespace(tmp_path_factory):
    """``lesson_namespace(lesson)``: that lesson's namespace, built once and kept for the session."""
    built: dict[str, dict] = {}
    with contextlib.ExitStack() as stack:

        def get(lesson: str) -> dict:
            if lesson not in built:
                module = TRIAL_MODULES[lesson]
                built[lesson] = stack.enter_context(module.namespace(tmp_path_factory.mktemp(f"trials{lesson}")))
            return built[lesson]

        yield get


def _exercise(lesson: str, number: int) -> dict[str, str]:
    return exercises(TRIAL_MODULES[lesson].NOTEBOOK)[number - 1]


@pytest.mark.parametrize(("lesson", "number", "code", "hint"), _cases())
def test_trial_answer(lesson_namespace, lesson, number, code, hint, capsys):
    out = run_self_check(_exercise(lesson, number), lesson_namespace(lesson), code, capsys)
    if hint is None:
        assert "✅" in out, f"a right answer was rejected:\n{code}\n{out}"
    else:
        assert "❌" in out, f"a wrong answer was accepted:\n{code}\n{out}"
        assert hint in out, f"expected the hint {hint!r}:\n{code}\n{out}"
        assert "Checking it raised" not in out, f"the check crashed on it:\n{code}\n{out}"


def _lessons_with_exercises() -> list[tuple[str, str, int]]:
    found = []
    for path in notebook_paths():
        count = len(exercises(path.name))
        if count:
            found.append((path.name[:2], path.name, count))
    return found


@pytest.mark.parametrize(("lesson", "notebook", "count"), _lessons_with_exercises())
def test_every_exercise_has_a_table(lesson, notebook, count):
    module = TRIAL_MODULES.get(lesson)
    assert module is not None, f"{notebook} has {count} exercises but no tests/trials/lesson_{lesson}.py"
    assert module.NOTEBOOK == notebook
    assert sorted(module.TRIALS) == list(range(1, count + 1)), f"{notebook}: a table for each of its {count} exercises"
    for number, table in module.TRIALS.items():
        assert len(table["right"]) >= MIN_RIGHT, f"{lesson} exercise {number}: at least {MIN_RIGHT} right answers"
        assert len(table["wrong"]) >= MIN_WRONG, f"{lesson} exercise {number}: at least {MIN_WRONG} wrong answers"


def _every_exercise() -> list:
    return [
        pytest.param(lesson, number, id=f"{lesson}-ex{number}")
        for lesson, _, count in _lessons_with_exercises()
        if lesson in TRIAL_MODULES
        for number in range(1, count + 1)
    ]


@pytest.mark.parametrize(("lesson", "number"), _every_exercise())
def test_solution_passes_its_self_check(lesson_namespace, lesson, number, capsys):
    exercise = _exercise(lesson, number)
    assert "solution" in exercise, "every exercise has a collapsed solution"
    out = run_self_check(exercise, lesson_namespace(lesson), exercise["solution"], capsys)
    assert "✅" in out, out


@pytest.mark.parametrize(("lesson", "number"), _every_exercise())
def test_undone_exercise_says_so_without_raising(lesson_namespace, lesson, number, capsys):
    exercise = _exercise(lesson, number)
    out = run_self_check(exercise, lesson_namespace(lesson), exercise["your_turn"], capsys)
    assert "⏳" in out, out


# as_number: the one way every check reads a number.


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (2, 2),
        (2.0, 2),
        (0.96, 0.96),
        (np.int64(7), 7),
        (np.int32(7), 7),
        (np.float32(0.5), 0.5),
        (np.float64(3.0), 3),
        (np.array(4), 4),
        (np.array([0.25]), 0.25),
        (torch.tensor(2), 2),
        (torch.tensor(0, dtype=torch.int32), 0),
        (torch.tensor(0.5), 0.5),
        (torch.tensor([[3.0]]), 3),
        ("0.96", 0.96),
        (" 12 ", 12),
        ([5], 5),
        ((0.5,), 0.5),
        (Fraction(1, 4), 0.25),
    ],
)
def test_as_number_reads_every_form_of_one_number(answer, expected):
    got = as_number(answer)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (True, "yes/no"),
        ([1, 2], "not 2 of them"),
        (np.array([1.0, 2.0]), "array of 2"),
        (torch.zeros(3), "tensor of 3"),
        ("96%", "percent"),
        ("seven", "not one"),
        (None, "one number"),
        ({"a": 1}, "one number"),
        (float("nan"), "finite"),
        (1 + 2j, "one number"),
    ],
)
def test_as_number_refuses_what_is_not_one_number_with_a_readable_message(answer, words):
    with pytest.raises(AnswerFormError, match=words):
        as_number(answer)
    assert issubclass(AnswerFormError, TypeError)


def test_check_prints_an_unreadable_answer_s_message_as_the_hint(capsys):
    result = check("share", "96%", lambda a: as_number(a) == 0.96, hint="some other hint")
    out = capsys.readouterr().out
    assert not result and "percent sign" in out and "Checking it raised" not in out
    assert check("share", torch.tensor(0.96), lambda a: abs(as_number(a) - 0.96) < 1e-6)
