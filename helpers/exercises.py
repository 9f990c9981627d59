"""Self-checks for the exercises.

Introduced in lesson 01. Every exercise has a "Your turn" cell where the learner
replaces ``...`` with an answer, then a self-check cell that calls
:func:`check`. A check prints what is right or wrong and never raises, so a
notebook with an exercise left undone still runs top to bottom.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

LESSON = 1

__all__ = ["AnswerFormError", "CheckResult", "as_number", "check"]


class AnswerFormError(TypeError):
    """An answer that is not in a form the exercise can read (not one number, say).

    Its message is written for the learner: :func:`check` prints it as the hint.
    """


def as_number(answer: Any) -> int | float:
    """One number, however a learner wrote it: an ``int`` when it is whole, else a ``float``.

    Accepts Python, numpy and torch numbers; 0-d or one-element numpy arrays and
    tensors (``tensor(2)``, ``np.float32(0.96)``, ``x.sum()``, ``np.array([3])``);
    one-element lists and tuples; and text holding one number (``"0.96"``).
    Every exercise check reads numbers through this, so no right value is
    rejected for its type.

    Raises
    ------
    AnswerFormError
        (a ``TypeError``) for anything else, with a message a learner can read:
        a ``bool``, several numbers, text that is not a number (``"96%"``),
        ``nan`` or infinity.

    Examples
    --------
    >>> as_number(3.0), as_number("0.25"), as_number([7])
    (3, 0.25, 7)
    """
    original = answer
    if isinstance(answer, list | tuple):
        if len(answer) != 1:
            raise AnswerFormError(f"Give one number, not {len(answer)} of them ({_short(original)}).")
        answer = answer[0]
    if hasattr(answer, "numel") and hasattr(answer, "item"):  # a torch tensor
        if answer.numel() != 1:
            raise AnswerFormError(
                f"Give one number, not a tensor of {answer.numel()} numbers (shape {tuple(answer.shape)})."
            )
        answer = answer.item()
    elif hasattr(answer, "size") and hasattr(answer, "item") and hasattr(answer, "dtype"):  # numpy
        if answer.size != 1:
            raise AnswerFormError(
                f"Give one number, not an array of {answer.size} numbers (shape {tuple(answer.shape)})."
            )
        answer = answer.item()
    if isinstance(answer, str):
        text = answer.strip()
        if text.endswith("%"):
            raise AnswerFormError(f"Give a number, not text with a percent sign ({original!r}): 0.96, not '96%'.")
        try:
            answer = float(text)
        except ValueError:
            raise AnswerFormError(f"Give a number; {original!r} is text that is not one.") from None
    if isinstance(answer, bool):
        raise AnswerFormError(f"Give a number, not {answer} (a yes/no value).")
    if not isinstance(answer, numbers.Real):
        raise AnswerFormError(f"Give one number; got {_short(original)} (a {type(original).__name__}).")
    if not math.isfinite(answer):
        raise AnswerFormError(f"Give a finite number; got {answer}.")
    if float(answer).is_integer():
        return int(answer)
    return float(answer)


def _short(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
        Returns True for a right answer. An :class:`AnswerFormError` it raises
        (from :func:`as_number`, say) is a wrong answer whose message is the
        hint; any other exception is a wrong answer too, reported with its message.
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
    except AnswerFormError as error:  # an answer in a form we cannot read: say which form we want
        right, hint = False, str(error)
    except Exception as error:  # a malformed answer is a wrong answer, not a crash
        right, hint = False, f"{hint} (Checking it raised {type(error).__name__}: {error})".strip()
    if right:
        print(f"✅ {name}: right, well done!")
    else:
        print(f"❌ {name}: not yet. {hint}".rstrip())
    return CheckResult(right)
