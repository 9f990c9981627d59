"""Training on whatever device there is: device choice, seeds, model input.

Introduced in lesson 03 (``to_input``, ``seed_everything``) and lesson 05 (the
training loop).
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["MNIST_MEAN", "MNIST_STD", "pick_device", "seed_everything", "to_input"]

#: Pixel mean and standard deviation of the full MNIST training set, on [0, 1] values.
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


def pick_device() -> torch.device:
    """The fastest device available: a CUDA GPU, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and PyTorch's random generators (CPU and GPU)."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - seeds code that uses the legacy global generator
    torch.manual_seed(seed)  # also seeds every CUDA device
    os.environ["PYTHONHASHSEED"] = str(seed)


def to_input(images: np.ndarray | torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """Turn MNIST images into the model's input: float32 ``(N, 1, 28, 28)``, normalised.

    This is the one place where pixels are scaled and normalised: uint8 values
    0-255 become ``(pixel / 255 - MNIST_MEAN) / MNIST_STD``.

    Parameters
    ----------
    images : np.ndarray or torch.Tensor
        uint8 ``(N, 28, 28)`` (as from ``load_mnist``) or ``(28, 28)`` for one
        image; a float tensor of shape ``(N, 1, 28, 28)`` is taken to be a
        model input already and returned unchanged (moved to ``device``).
    device : torch.device or str, optional
        Where the result should live; by default where ``images`` are (the CPU
        for numpy arrays). The uint8 pixels are copied there first, then
        converted, so only a quarter of the bytes cross to a GPU.

    Returns
    -------
    torch.Tensor
        float32, shape ``(N, 1, 28, 28)``.
    """
    tensor = torch.as_tensor(images)
    if tensor.is_floating_point() and tensor.ndim == 4 and tensor.shape[1] == 1:
        return tensor.to(device) if device is not None else tensor
    if tensor.dtype != torch.uint8:
        raise TypeError(
            f"to_input expects uint8 pixel values 0-255 (as load_mnist gives) or a float model input "
            f"(N, 1, 28, 28); got dtype {tensor.dtype} with shape {tuple(tensor.shape)}."
        )
    if tensor.ndim == 2:
        tensor = tensor[None]
    if tensor.ndim != 3:
        raise ValueError(f"to_input expects images of shape (N, H, W) or (H, W); got {tuple(tensor.shape)}.")
    if device is not None:
        tensor = tensor.to(device, non_blocking=True)
    return ((tensor.float() / 255 - MNIST_MEAN) / MNIST_STD)[:, None]
