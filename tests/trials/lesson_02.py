"""Trial answers for lesson 02's exercises (see ``tests/trials/__init__.py``).

The namespace is the notebook's imports, its 30 points ``x, y`` on ``y = 3x + 8``, its ``lin``
and ``mse``, and the noisy points of exercise 3.
"""

from __future__ import annotations

import contextlib

import numpy as np

from helpers import linefit
from tests.nbtools import imports_namespace

NOTEBOOK = "02_gradient_descent.ipynb"


def lesson_02_names() -> dict:
    """What lesson 02's exercises use: its imports, its data and its lin/mse."""
    names = imports_namespace(NOTEBOOK)
    rng = np.random.default_rng(42)  # as in the notebook
    x = rng.random(30)
    names.update(x=x, y=3 * x + 8, lin=linefit.lin, mse=linefit.mse)
    names["x_noisy"], names["y_noisy"] = linefit.line_data(a=3, b=8, n=30, seed=0, noise=0.5)
    return names


@contextlib.contextmanager
def namespace(tmp_path):
    yield lesson_02_names()


POLYFIT = "np.polyfit(x_noisy, y_noisy, 1)"

TRIALS = {
    1: {
        "right": [
            "my_gradient = (-9, -18)",
            "my_gradient = [-9.0, -18.0]",
            "my_gradient = np.array([-9, -18])",
            "my_gradient = torch.tensor([-9.0, -18.0])",
            # autograd's way: two tensors' .grad
            "a_ = torch.tensor(-1.0, requires_grad=True)\nb_ = torch.tensor(1.0, requires_grad=True)\n"
            "((a_ * 0.5 + b_ - 9.5) ** 2).backward()\nmy_gradient = (a_.grad, b_.grad)",
            "my_gradient = (np.float32(-9), np.int64(-18))",
            "my_gradient = ('-9', '-18')",
        ],
        "wrong": [
            ("my_gradient = (9, 18)", "Check the sign"),  # error taken as y - prediction
            ("my_gradient = (-4.5, -9)", "factor 2"),  # the square's 2 dropped
            ("my_gradient = (-18, -9)", "in the order (d loss/d a, d loss/d b)"),  # swapped
            ("my_gradient = (-9, -9)", "Only d/da has the factor x"),
            ("my_gradient = (-18, -18)", "d/da has the factor x"),
            ("my_gradient = 81", "That is the loss"),
            ("my_gradient = torch.tensor(81.0)", "That is the loss"),
            ("my_gradient = -9", "Give two numbers"),
            ("my_gradient = '(-9, -18)'", "Give two numbers"),
            ("my_gradient = (1, 2)", "First the error e = a*x + b - y"),
        ],
    },
    2: {
        "right": [
            "my_largest_lr = 0.74",
            "my_largest_lr = np.float32(0.74)",
            "my_largest_lr = torch.tensor(0.74)",
            "my_largest_lr = '0.74'",
            "my_largest_lr = 0.72",
            "my_largest_lr = 0.745",
            "my_largest_lr = np.arange(0.01, 0.9, 0.01)[73]",  # 0.7400000000000001
        ],
        "wrong": [
            ("my_largest_lr = 0.75", "0.75 is the limit 0.7497... rounded up"),
            ("my_largest_lr = largest_stable_lr(x)", "That is the limit itself"),  # does not converge
            ("my_largest_lr = torch.tensor(largest_stable_lr(x))", "That is the limit itself"),
            ("my_largest_lr = 0.7498", "lies just past the limit"),  # not rounded: no 'rounded up'
            ("my_largest_lr = 75", "looks like a percentage"),
            ("my_largest_lr = 0.8", "the descent diverges"),
            ("my_largest_lr = 0.5", "but larger learning rates do too"),
            ("my_largest_lr = '74%'", "percent sign"),
            ("my_largest_lr = [0.74, 0.75]", "not 2 of them"),
            ("my_largest_lr = 0", "greater than 0"),
        ],
    },
    3: {
        "right": [
            f"noisy_fit = tuple({POLYFIT}.round(2))",  # two decimals, as the exercise asks
            "noisy_fit = descend(-1.0, 1.0, x_noisy, y_noisy, lr=0.5, steps=100)[-1]",
            "noisy_fit = descend(-1.0, 1.0, x_noisy, y_noisy, lr=0.01, steps=3000)[-1]",
            f"noisy_fit = torch.tensor({POLYFIT})",
            f"noisy_fit = [np.float32(v) for v in {POLYFIT}]",
            "noisy_fit = (2.99, 8.14)",
            "noisy_fit = ('2.988', '8.144')",
        ],
        "wrong": [
            ("noisy_fit = (3, 8)", "the line we hid"),  # the hidden line, not the best fit
            (f"noisy_fit = tuple({POLYFIT}.round(1))", "rounded to 1 decimal"),  # (3.0, 8.1)
            ("noisy_fit = descend(-1.0, 1.0, x_noisy, y_noisy, lr=0.5, steps=300)", "whole path that descend returns"),
            (f"noisy_fit = tuple({POLYFIT}[::-1])", "in the order (a, b)"),
            # the case: stopped too early is told to run longer, not to keep decimals
            ("noisy_fit = descend(-1.0, 1.0, x_noisy, y_noisy, lr=0.1, steps=100)[-1]", "Run more steps"),
            ("noisy_fit = descend(-1.0, 1.0, x_noisy, y_noisy, lr=0.01, steps=300)[-1]", "has not arrived yet"),
            ("noisy_fit = descend(-1.0, 1.0, x_noisy, y_noisy, lr=0.01, steps=1000)[-1]", "has not arrived yet"),
            ("noisy_fit = '(3, 8)'", "Give two numbers"),
            ("noisy_fit = (1, 1)", "descend(-1.0, 1.0, x_noisy, y_noisy"),
        ],
    },
}
