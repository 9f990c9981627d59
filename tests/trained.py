"""A briefly trained CNN for tests that need one that tells digits apart (not lesson 05's model)."""

from __future__ import annotations

import copy
from functools import cache

from torch import nn

from helpers.core import one_cpu_thread
from helpers.data import load_mnist
from helpers.models import mnist_cnn
from helpers.training import fit


@cache
def _trained(seed: int) -> nn.Module:
    mnist = load_mnist()
    with one_cpu_thread():  # small batches: one thread is faster, and unaffected by other load
        model = mnist_cnn(seed=seed)
        images, labels = mnist.train_images[:2000], mnist.train_labels[:2000]
        fit(model, images, labels, epochs=1, progress=False, seed=seed, device="cpu")
    return model.eval()


def briefly_trained_cnn(seed: int = 0) -> nn.Module:
    """The lesson's CNN after one epoch on the first 2,000 training images, on the CPU, in eval mode.

    Trained once per seed and test session; each call returns a copy, so a test may move or
    change its model without touching another test's.
    """
    return copy.deepcopy(_trained(seed))
