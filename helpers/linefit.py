"""Fitting a line by gradient descent: the two-parameter case of deep learning.

Introduced in lesson 02 (``02_gradient_descent.ipynb``). A line
``lin(a, b, x) = a * x + b`` is fitted to points by moving ``a`` and ``b``
against the derivative of the mean squared error, computed three ways: by
nudging (the spreadsheet idea), by calculus, and (in the notebook) by PyTorch's
autograd.

Everything works on numpy arrays; :func:`lin` and :func:`mse` also work on
PyTorch tensors, so autograd can differentiate them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from helpers.exercises import AnswerFormError, as_number

LESSON = 2

__all__ = [
    "descend",
    "gradient",
    "largest_stable_lr",
    "learning_rate_hint",
    "lin",
    "line_data",
    "mse",
    "noisy_fit_hint",
    "nudge_gradient",
    "one_point_hint",
]


def lin(a: Any, b: Any, x: Any) -> Any:
    """The line ``a * x + b``.

    Works for numbers, numpy arrays and PyTorch tensors alike (so autograd can
    differentiate it).
    """
    return a * x + b


def line_data(
    a: float = 3.0, b: float = 8.0, n: int = 30, *, seed: int = 42, noise: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Points on the line ``a * x + b`` (plus optional noise), x uniform in [0, 1).

    Parameters
    ----------
    a, b : float
        The true slope and intercept (lesson 02: 3 and 8).
    n : int
        How many points.
    seed : int
        Seed for ``np.random.default_rng``: the same seed gives the same points.
    noise : float
        Standard deviation of Gaussian noise added to y (0: exactly on the line).

    Returns
    -------
    x, y : np.ndarray
        float64 arrays of shape ``(n,)``.
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive whole number of points; got {n!r}.")
    if noise < 0:
        raise ValueError(f"noise is a standard deviation, so it must be >= 0; got {noise}.")
    rng = np.random.default_rng(seed)
    x = rng.random(n)
    y = lin(a, b, x)
    if noise:
        y = y + rng.normal(0.0, noise, size=n)
    return x, y


def _points(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Check and return x and y as float arrays of the same shape (n,)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.ndim != 1 or x.shape != y.shape or len(x) == 0:
        raise ValueError(
            f"x and y must be 1-D arrays of the same, non-zero length; got shapes {x.shape} and {y.shape}."
        )
    return x, y


def mse(a: Any, b: Any, x: Any, y: Any) -> Any:
    """Mean squared error of the line ``(a, b)`` on the points ``(x, y)``.

    ``a`` and ``b`` may be numbers or arrays of the same shape (e.g. a grid
    for a contour plot of the loss surface): the result then has that shape.
    With PyTorch tensors for ``a`` and ``b`` the result is a tensor, so
    ``.backward()`` gives the derivatives.
    """
    if hasattr(a, "detach") or hasattr(b, "detach"):  # PyTorch: keep it differentiable
        import torch

        x, y = (torch.as_tensor(np.asarray(v, dtype=float)) for v in _points(x, y))
        return ((lin(a, b, x) - y) ** 2).mean()
    x, y = _points(x, y)
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape; got {a.shape} and {b.shape}.")
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging descent may reach inf
        errors = lin(a[..., None], b[..., None], x) - y
        loss = (errors**2).mean(axis=-1)
    return float(loss) if loss.ndim == 0 else loss


def nudge_gradient(a: float, b: float, x: Any, y: Any, h: float = 0.01) -> tuple[float, float]:
    """The derivatives of :func:`mse` by nudging: change one parameter by ``h``, see the loss change.

    ``(mse(a + h, b) - mse(a, b)) / h`` for ``a``, likewise for ``b``: the
    spreadsheet way. It approaches the calculus derivative as ``h`` shrinks.
    """
    if h == 0:
        raise ValueError("h must be a small non-zero nudge such as 0.01; got 0.")
    base = mse(a, b, x, y)
    return (mse(a + h, b, x, y) - base) / h, (mse(a, b + h, x, y) - base) / h


def gradient(a: float, b: float, x: Any, y: Any) -> tuple[float, float]:
    """The derivatives of :func:`mse` by calculus.

    With ``error = a * x + b - y``: ``d loss / d a = mean(2 * error * x)`` and
    ``d loss / d b = mean(2 * error)``.
    """
    x, y = _points(x, y)
    error = lin(a, b, x) - y
    return float(np.mean(2 * error * x)), float(np.mean(2 * error))


def descend(a: float, b: float, x: Any, y: Any, *, lr: float = 0.01, steps: int = 100) -> np.ndarray:
    """Gradient descent on :func:`mse` from ``(a, b)``; returns the whole path.

    Each step moves both parameters a little against their derivatives:
    ``a -= lr * d loss / d a`` and ``b -= lr * d loss / d b``.

    Parameters
    ----------
    a, b : float
        Where to start.
    x, y : array-like
        The points.
    lr : float
        The learning rate: how big "a little" is.
    steps : int
        How many updates.

    Returns
    -------
    np.ndarray
        ``(steps + 1, 2)``: row ``i`` is ``(a, b)`` after ``i`` updates (row 0
        is the start). A learning rate that is too large makes the values grow
        without bound (they may reach ``inf`` or ``nan``; no warning is shown).
    """
    if not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a whole number >= 0; got {steps!r}.")
    if lr <= 0:
        raise ValueError(f"the learning rate lr must be > 0; got {lr}.")
    x, y = _points(x, y)
    path = np.empty((steps + 1, 2))
    path[0] = a, b
    with np.errstate(over="ignore", invalid="ignore"):
        for step in range(steps):
            grad_a, grad_b = gradient(a, b, x, y)
            a, b = a - lr * grad_a, b - lr * grad_b
            path[step + 1] = a, b
    return path


def largest_stable_lr(x: Any) -> float:
    """The largest learning rate for which gradient descent on :func:`mse` converges.

    The mean squared error of a line is a bowl whose curvature along its
    steepest direction is the largest eigenvalue ``s`` of
    ``2 * [[mean(x**2), mean(x)], [mean(x), 1]]``; gradient descent converges
    for learning rates below ``2 / s`` and diverges above it.
    """
    x = np.asarray(x, dtype=float)
    if x.ndim != 1 or len(x) == 0:
        raise ValueError(f"x must be a 1-D array of points; got shape {x.shape}.")
    hessian = 2 * np.array([[np.mean(x**2), np.mean(x)], [np.mean(x), 1.0]])
    return float(2 / np.linalg.eigvalsh(hessian).max())


def _is_rounded(value: float, decimals: int) -> bool:
    """True when ``value`` has at most ``decimals`` decimals (up to float32 noise)."""
    return abs(value * 10**decimals - round(value * 10**decimals)) < 1e-4


def learning_rate_hint(
    answer: Any, x: Any, y: Any, *, start: tuple[float, float] = (-1.0, 1.0), steps: int = 1000
) -> str:
    """A hint for lesson 02's exercise "the largest learning rate that still converges".

    The right answers lie from 95% of :func:`largest_stable_lr` up to, but not including, the
    limit itself: at the limit the error along the steepest direction flips sign every step
    without shrinking, so the descent never converges. To two decimals the answer is the
    limit rounded down. This says what is wrong with any other answer, measured by running
    the descent: the limit itself, the limit rounded *up* (e.g. 0.75 for 0.7497, which
    already diverges), another value just past the limit, a percentage, a rate that
    diverges, or one that converges but is not the largest. Numbers are read with
    :func:`helpers.exercises.as_number` (so ``"0.74"``, ``np.float32(0.74)`` and
    ``torch.tensor(0.74)`` are all 0.74); for an answer that is not one number it says so.

    Returns
    -------
    str
        The hint ("" for a right answer or one not given yet).
    """
    if answer is ... or answer is None:
        return ""
    try:
        lr = as_number(answer)
    except AnswerFormError as error:
        return f"{error} The learning rate is one number, such as 0.5."
    limit = largest_stable_lr(x)
    if 0.95 * limit <= lr < limit:
        return ""
    if lr <= 0:
        return f"A learning rate is a number greater than 0; got {lr}."
    first_loss = mse(*start, x, y)
    if 0.9 * limit <= lr / 100 <= 1.05 * limit:
        return f"{lr:g} looks like a percentage: a learning rate is a plain number, such as 0.5."
    final_loss = mse(*descend(*start, x, y, lr=lr, steps=steps)[-1], x, y)
    ended = f"the loss is {final_loss:.3g}" if np.isfinite(final_loss) else "the loss has overflowed to infinity"
    if np.isclose(lr, limit, rtol=1e-6, atol=0):
        return (
            f"That is the limit itself ({limit:.4f}...): at it, every step overshoots the valley floor by "
            f"exactly as much as it corrects, so the descent swings back and forth without ever settling "
            f"(after {steps} steps {ended}; it started at {first_loss:.3g}). The exercise asks for the "
            "largest two-decimal rate below the limit: the limit rounded down."
        )
    if lr > limit and _is_rounded(lr, 2) and round(lr, 2) == round(limit, 2):
        return (
            f"{lr:g} is the limit {limit:.4f}... rounded up, so it lies just past it: at lr={lr:g} every "
            f"step overshoots a little more than it corrects, and after {steps} steps {ended} "
            f"(it started at {first_loss:.3g}). The largest rate that converges, to two decimals, is the "
            "limit rounded down."
        )
    if lr > limit and lr < limit + 0.01:
        return (
            f"{lr:g} lies just past the limit {limit:.4f}...: every step overshoots a little more than it "
            f"corrects, and after {steps} steps {ended} (it started at {first_loss:.3g}). Give the largest "
            "two-decimal rate that still converges."
        )
    if lr > limit:
        return (
            f"At lr={lr:g} the descent diverges: after {steps} steps {ended} "
            f"(it started at {first_loss:.3g}). Try smaller learning rates."
        )
    return (
        f"At lr={lr:g} the descent converges (loss {final_loss:.2g} after {steps} steps), but larger "
        "learning rates do too. Go up in steps of 0.01 until the loss no longer ends near 0."
    )


def _two_numbers(answer: Any) -> np.ndarray | None:
    """``answer`` as a float array of shape (2,), or None when it is not two numbers.

    Each number is read with :func:`helpers.exercises.as_number`, so a pair of torch or
    numpy scalars, a tensor or array of two numbers and a list of two numeric strings all
    count; text such as ``"(3, 8)"`` does not.
    """
    if isinstance(answer, (str, bytes)):
        return None
    if hasattr(answer, "detach"):  # a torch tensor, perhaps one that requires grad
        answer = answer.detach().cpu().numpy()
    if isinstance(answer, np.ndarray):
        answer = list(answer.ravel()) if answer.size == 2 else None
    if not isinstance(answer, (list, tuple)) or len(answer) != 2:
        return None
    try:
        return np.array([float(as_number(value)) for value in answer])
    except AnswerFormError:
        return None


def one_point_hint(answer: Any, *, a: float = -1.0, b: float = 1.0, x: float = 0.5, y: float = 9.5) -> str:
    """A hint for lesson 02's exercise "the gradient for one point, by hand".

    The right answer is ``(2 * e * x, 2 * e)`` with the error ``e = a * x + b - y``
    (for the exercise's numbers: ``(-9, -18)``). This recognises the common
    slips: the sign flipped (the error taken as ``y - prediction``), the factor
    2 of the square dropped, the two derivatives swapped, the factor ``x`` on
    both, and the loss ``e ** 2`` given instead of its derivatives. Numbers are
    read with :func:`helpers.exercises.as_number`. It never raises, whatever the answer.

    Returns
    -------
    str
        The hint ("" for a right answer or one not given yet).
    """
    if answer is ... or answer is None:
        return ""
    error = a * x + b - y
    general = "First the error e = a*x + b - y; then d/da = 2*e*x and d/db = 2*e."
    values = _two_numbers(answer)
    if values is None:
        try:
            single = as_number(answer)
        except AnswerFormError:
            return f"Give two numbers, (d loss/d a, d loss/d b), such as (1.5, -2.0). {general}"
        if np.isclose(single, error**2):
            return "That is the loss; we want its two derivatives, (d loss/d a, d loss/d b)."
        return f"Give two numbers, (d loss/d a, d loss/d b), not one. {general}"
    right = np.array([2 * error * x, 2 * error])
    if np.allclose(values, right):
        return ""
    sign = "negative" if error < 0 else "positive"
    slips = [
        (
            -right,
            f"Check the sign: e = a*x + b - y (the prediction minus y) is {sign} here, so both derivatives are {sign}.",
        ),
        (right / 2, "The square's derivative brings a factor 2: d/da = 2*e*x and d/db = 2*e."),
        (right[::-1], "Give them in the order (d loss/d a, d loss/d b); only d/da has the factor x."),
        (np.array([2 * error * x, 2 * error * x]), "Only d/da has the factor x: d/db = 2*e."),
        (np.array([2 * error, 2 * error]), "d/da has the factor x: d/da = 2*e*x, while d/db = 2*e."),
    ]
    for wrong, hint in slips:
        if not np.allclose(wrong, right) and np.allclose(values, wrong):
            return hint
    return general


def noisy_fit_hint(
    answer: Any, x: Any, y: Any, *, hidden: tuple[float, float] = (3.0, 8.0), tolerance: float = 0.02
) -> str:
    """A hint for lesson 02's exercise "fitting noisy data".

    The right answers lie within ``tolerance`` of the least-squares line
    (``np.polyfit(x, y, 1)``), so any fit kept to two decimals or more passes.
    This recognises the common slips: the line the data was made from
    (``hidden``) given instead of the best fit, a fit rounded to one decimal or
    none, the whole path that :func:`descend` returns instead of its last row,
    ``(b, a)`` instead of ``(a, b)``, and a descent stopped too early (still on its
    way: more steps, or a larger learning rate). Anything else gets the general
    hint. Numbers are read with :func:`helpers.exercises.as_number`. It never
    raises, whatever the answer.

    Returns
    -------
    str
        The hint ("" for a right answer or one not given yet).
    """
    if answer is ... or answer is None:
        return ""
    x, y = _points(x, y)
    best = np.polyfit(x, y, 1)
    general = (
        "descend(-1.0, 1.0, x_noisy, y_noisy, lr=..., steps=...)[-1] gives the fit; with lr 0.5, "
        "100 steps are plenty; with 0.01 it takes over 1,000."
    )
    path = answer.detach().cpu().numpy() if hasattr(answer, "detach") else answer
    try:
        path = np.asarray(path, dtype=float)
    except (TypeError, ValueError):
        path = None
    if path is not None and path.ndim == 2 and path.shape[1] == 2 and len(path) > 1:
        return "That is the whole path that descend returns, one row per step: its last row, [-1], is the fit."
    values = _two_numbers(answer)
    if values is None:
        return f"Give two numbers, (a, b). {general}"
    if np.allclose(values, best, atol=tolerance):
        return ""
    if np.allclose(values, hidden, atol=0.01):
        return (
            f"That is the line we hid, {hidden}; with noise, the best-fitting line differs a little. Fit these points."
        )
    for decimals in (0, 1):  # the fit, rounded too far
        if all(_is_rounded(v, decimals) for v in values) and np.allclose(values, best, atol=0.5 * 10**-decimals):
            return (
                f"Those are the right numbers rounded to {decimals} decimal{'s' if decimals != 1 else ''}: "
                "too few here. Keep at least two decimals (or give descend's last row as it is)."
            )
    if np.allclose(values[::-1], best, atol=3 * tolerance):
        return "Give them in the order (a, b): the slope first, then the intercept."
    if np.allclose(values, best, atol=0.5):
        return (
            "Close, but the descent has not arrived yet: it was stopped while a and b were still moving. "
            "Run more steps (or use a larger learning rate) until a and b stop changing in the second "
            "decimal; with lr 0.5, 100 steps are plenty; with 0.01 it takes over 1,000."
        )
    return general
