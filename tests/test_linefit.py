"""helpers.linefit: lesson 02's line, loss, three derivatives and gradient descent."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.linefit import (
    descend,
    gradient,
    largest_stable_lr,
    learning_rate_hint,
    lin,
    line_data,
    mse,
    noisy_fit_hint,
    nudge_gradient,
    one_point_hint,
)


@pytest.fixture
def points():
    return line_data()


def test_line_and_data(points):
    assert lin(3, 8, 2) == 14
    x, y = points
    assert x.shape == y.shape == (30,)
    assert x.min() >= 0 and x.max() < 1
    np.testing.assert_allclose(y, 3 * x + 8)
    np.testing.assert_array_equal(line_data()[0], x)  # seeded: the same points every time
    assert not np.array_equal(line_data(seed=1)[0], x)
    noisy = line_data(noise=0.5)[1]
    assert 0.2 < np.std(noisy - y) < 0.8


def test_bad_data_is_explained():
    with pytest.raises(ValueError, match="positive whole number of points; got 0"):
        line_data(n=0)
    with pytest.raises(ValueError, match="must be >= 0; got -1"):
        line_data(noise=-1)
    with pytest.raises(ValueError, match=r"same, non-zero length; got shapes \(3,\) and \(2,\)"):
        mse(1, 1, [1, 2, 3], [1, 2])


def test_mse_by_hand_and_on_a_grid(points):
    assert mse(1.0, 0.0, [0.0, 1.0], [1.0, 3.0]) == pytest.approx((1 + 4) / 2)
    x, y = points
    assert mse(3, 8, x, y) == pytest.approx(0)
    a, b = np.meshgrid(np.linspace(-1, 5, 4), np.linspace(0, 10, 3))
    grid = mse(a, b, x, y)
    assert grid.shape == (3, 4)
    assert grid[1, 2] == pytest.approx(mse(a[1, 2], b[1, 2], x, y))
    with pytest.raises(ValueError, match="same shape"):
        mse(np.zeros(2), np.zeros(3), x, y)


def test_three_derivatives_agree(points):
    x, y = points
    calculus = gradient(-1, 1, x, y)
    nudged = nudge_gradient(-1, 1, x, y)
    np.testing.assert_allclose(nudged, calculus, atol=0.011)  # a nudge of 0.01 is off by about 0.01
    np.testing.assert_allclose(nudge_gradient(-1, 1, x, y, h=1e-6), calculus, atol=1e-5)
    a = torch.tensor(-1.0, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    loss = mse(a, b, x, y)
    loss.backward()
    assert loss.item() == pytest.approx(mse(-1, 1, x, y))
    np.testing.assert_allclose([a.grad.item(), b.grad.item()], calculus, rtol=1e-12)
    with pytest.raises(ValueError, match="non-zero nudge"):
        nudge_gradient(-1, 1, x, y, h=0)


def test_gradient_of_one_point_by_hand():
    # error = -1 * 0.5 + 1 - 9.5 = -9: d/da = 2 * -9 * 0.5, d/db = 2 * -9
    assert gradient(-1, 1, [0.5], [9.5]) == pytest.approx((-9.0, -18.0))


def test_descent_path(points):
    x, y = points
    path = descend(-1, 1, x, y, lr=0.01, steps=500)
    assert path.shape == (501, 2)
    np.testing.assert_array_equal(path[0], [-1, 1])
    grad_a, grad_b = gradient(-1, 1, x, y)
    np.testing.assert_allclose(path[1], [-1 - 0.01 * grad_a, 1 - 0.01 * grad_b])
    losses = mse(path[:, 0], path[:, 1], x, y)
    assert np.all(np.diff(losses) <= 1e-12)  # a small learning rate only ever goes down
    np.testing.assert_allclose(path[-1], [3, 8], atol=0.1)
    assert descend(-1, 1, x, y, steps=0).shape == (1, 2)


def test_learning_rate_limit(points):
    x, y = points
    limit = largest_stable_lr(x)
    assert 0.5 < limit < 1.0
    below = descend(-1, 1, x, y, lr=0.97 * limit, steps=1000)[-1]
    above = descend(-1, 1, x, y, lr=1.03 * limit, steps=1000)[-1]
    assert mse(*below, x, y) < 1e-3
    assert not mse(*above, x, y) < mse(-1, 1, x, y)  # diverged (possibly to inf)


def test_descent_rejects_bad_settings(points):
    x, y = points
    with pytest.raises(ValueError, match="learning rate lr must be > 0; got 0"):
        descend(-1, 1, x, y, lr=0)
    with pytest.raises(ValueError, match="steps must be a whole number >= 0; got -5"):
        descend(-1, 1, x, y, steps=-5)


def test_learning_rate_hint_names_the_slip(points):
    x, y = points
    limit = largest_stable_lr(x)
    assert round(limit, 4) == 0.7497  # so 0.74 is right and 0.75 is the limit rounded up
    for right in (0.72, 0.73, 0.74, 0.745, 0.749, float(np.arange(0.01, 0.9, 0.01)[73])):
        assert learning_rate_hint(right, x, y) == "", right
    assert learning_rate_hint(..., x, y) == ""
    rounded_up = learning_rate_hint(0.75, x, y)
    assert "0.75 is the limit 0.7497... rounded up" in rounded_up
    assert "That is the limit itself" in learning_rate_hint(limit, x, y)
    assert "rounded up" not in learning_rate_hint(0.7498, x, y)
    assert "after 1000 steps the loss is 372 (it started at 86.7)" in rounded_up
    assert "looks like a percentage" in learning_rate_hint(74, x, y)
    assert "looks like a percentage" in learning_rate_hint(75, x, y)
    assert "diverges: after 1000 steps the loss is 2.64e+25" in learning_rate_hint(0.76, x, y)
    assert "overflowed to infinity" in learning_rate_hint(2.0, x, y)
    assert "converges (loss" in learning_rate_hint(0.71, x, y) and "larger" in learning_rate_hint(0.5, x, y)
    assert "greater than 0" in learning_rate_hint(0, x, y)
    assert learning_rate_hint("0.74", x, y) == ""
    assert "Give one number" in learning_rate_hint([0.74, 0.75], x, y)


def test_one_point_hint_names_the_slip():
    """The exercise's point x = 0.5, y = 9.5 from a = -1, b = 1: e = -9, the gradient is (-9, -18)."""
    for right in ((-9, -18), [-9.0, -18.0], np.array([-9, -18]), ..., None):
        assert one_point_hint(right) == "", right
    assert "Check the sign" in one_point_hint((9, 18))
    assert "is negative here, so both derivatives are negative" in one_point_hint((9.0, 18.0))
    assert "factor 2" in one_point_hint((-4.5, -9))
    assert "in the order (d loss/d a, d loss/d b)" in one_point_hint((-18, -9))
    assert "Only d/da has the factor x" in one_point_hint((-9, -9))
    assert "d/da has the factor x" in one_point_hint((-18, -18))
    assert "That is the loss" in one_point_hint(81)
    assert "Give two numbers" in one_point_hint(-9)
    assert "Give two numbers" in one_point_hint("(-9, -18)")
    assert "Give two numbers" in one_point_hint([1, 2, 3])
    assert one_point_hint((1, 2)).startswith("First the error e = a*x + b - y")
    # the hints follow the numbers they are given: another point, another error
    assert gradient(2.0, 0.0, [1.0], [0.0]) == pytest.approx((4, 4))
    assert one_point_hint((4, 4), a=2, b=0, x=1, y=0) == ""
    assert "is positive here" in one_point_hint((-4, -4), a=2, b=0, x=1, y=0)


def test_noisy_fit_hint_names_the_slip():
    x, y = line_data(a=3, b=8, n=30, seed=0, noise=0.5)  # as in lesson 02's exercise 3
    best = np.polyfit(x, y, 1)
    assert abs(best[1] - 8) > 0.1  # the best fit is not the hidden line, and one decimal is not enough
    for right in (best, best.round(2), best.round(3), descend(-1, 1, x, y, lr=0.5, steps=1000)[-1], ...):
        assert noisy_fit_hint(right, x, y) == "", right
    assert "the line we hid" in noisy_fit_hint((3, 8), x, y)
    assert "the line we hid" in noisy_fit_hint((3.0, 8.0), x, y)
    assert "at least two decimals" in noisy_fit_hint(tuple(best.round(1)), x, y)
    assert "Run more steps" in noisy_fit_hint(descend(-1, 1, x, y, lr=0.1, steps=100)[-1], x, y)
    assert "whole path that descend returns" in noisy_fit_hint(descend(-1, 1, x, y, lr=0.5, steps=100), x, y)
    assert "in the order (a, b)" in noisy_fit_hint(tuple(best[::-1]), x, y)
    assert "Give two numbers" in noisy_fit_hint("(3, 8)", x, y)
    assert "Give two numbers" in noisy_fit_hint(3.0, x, y)
    assert noisy_fit_hint((1, 1), x, y).startswith("descend(-1.0, 1.0, x_noisy, y_noisy")


def test_noisy_fit_hint_says_how_long_descent_takes():
    """The hint's numbers: lr 0.5 is within the tolerance by step 100; lr 0.01 not before step 1,000."""
    x, y = line_data(a=3, b=8, n=30, seed=0, noise=0.5)
    assert "with lr 0.5, 100 steps are plenty; with 0.01 it takes over 1,000" in noisy_fit_hint((1, 1), x, y)
    assert noisy_fit_hint(descend(-1, 1, x, y, lr=0.5, steps=100)[-1], x, y) == ""
    assert noisy_fit_hint(descend(-1, 1, x, y, lr=0.01, steps=1000)[-1], x, y) != ""
