"""Self-checks for the exercises.

Introduced in lesson 01. Every exercise has a "Your turn" cell where the learner
replaces ``...`` with an answer, then a self-check cell that calls
:func:`check`. A check prints what is right or wrong and never raises, so a
notebook with an exercise left undone still runs top to bottom.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

LESSON = 1

__all__ = ["CheckResult", "check"]


class CheckResult:
    """The outcome of a self-check: truthy when the answer is right.

    It shows nothing as a cell's last value (the check has already printed its
    verdict), so a self-check cell displays one line, not an extra ``True``.
    """

    def __init__(self, passed: bool) -> None:
        self.passed = passed

    def __bool__(self) -> bool:
        return self.passed

    def __eq__(self, other: object) -> bool:
        return bool(self) == other

    def __hash__(self) -> int:
        return hash(self.passed)

    def __repr__(self) -> str:
        return f"CheckResult(passed={self.passed})"

    def _ipython_display_(self) -> None:
        """Display nothing in a notebook."""


def check(name: str, answer: Any, is_right: Callable[[Any], bool], hint: str = "") -> CheckResult:
    """Print whether an exercise's answer is right; return True when it is.

    Parameters
    ----------
    name : str
        What is being checked, e.g. ``"right-edge filter"``.
    answer : object
        The learner's answer; ``...`` (Ellipsis) or ``None`` means "not done yet".
    is_right : callable
        Returns True for a right answer. Any exception it raises is reported
        as a wrong answer, with its message.
    hint : str
        Said when the answer is wrong.

    Returns
    -------
    CheckResult
        Truthy (and ``== True``) for a right answer, falsy otherwise, including
        "not done yet". It displays nothing as a cell's last value.
    """
    if answer is ... or answer is None:
        print(f"⏳ {name}: not done yet: replace the ... with your answer, then run this cell again.")
        return CheckResult(False)
    try:
        right = bool(is_right(answer))
    except Exception as error:  # a malformed answer is a wrong answer, not a crash
        right, hint = False, f"{hint} (Checking it raised {type(error).__name__}: {error})".strip()
    if right:
        print(f"✅ {name}: right, well done!")
    else:
        print(f"❌ {name}: not yet. {hint}".rstrip())
    return CheckResult(right)
