"""What every lesson needs: the device, seeds, the model's input, a validation split.

Introduced in lesson 00. This module imports no other lesson's module, so the
early lessons (and their helpers) never load lesson 05's training code.

* ``pick_device()``: a CUDA GPU, then Apple's MPS, then the CPU; the
  environment variable ``COURSE_DEVICE`` (``cpu``, ``cuda`` or ``mps``) forces
  one, so that a whole run (tests, notebooks) can be held to one device.
* ``seed_everything(seed)``: Python's, numpy's and PyTorch's generators.
* ``to_input(images)``: uint8 MNIST pixels to the float ``(N, 1, 28, 28)``
  model input, scaled and normalised with ``MNIST_MEAN`` / ``MNIST_STD``.
* ``split_validation(images, labels)``: a reproducible held-out part of the
  training images (``split_indices`` gives the positions only).
* ``amp_dtype(device_type, capability)``: which mixed-precision type suits a
  device, and ``sync(device)``: wait for a GPU before reading a clock.
* ``one_cpu_thread(device)``: small CPU work on one thread inside a ``with``
  block, the thread count restored after.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

LESSON = 0

__all__ = [
    "DEVICE_VARIABLE",
    "MNIST_MEAN",
    "MNIST_STD",
    "amp_dtype",
    "needs_grad_scaler",
    "one_cpu_thread",
    "pick_device",
    "seed_everything",
    "split_indices",
    "split_validation",
    "sync",
    "to_input",
]

#: Pixel mean and standard deviation of the full MNIST training set, on [0, 1] values.
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081

#: The environment variable that forces a device: ``cpu``, ``cuda`` or ``mps``.
DEVICE_VARIABLE = "COURSE_DEVICE"
_DEVICE_TYPES = ("cpu", "cuda", "mps")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def pick_device() -> torch.device:
    """The fastest device available: a CUDA GPU, then Apple's MPS, then the CPU.

    Set the environment variable ``COURSE_DEVICE`` to ``cpu``, ``cuda`` or
    ``mps`` to force one (for example ``COURSE_DEVICE=cpu`` on a GPU machine).

    Raises
    ------
    ValueError
        ``COURSE_DEVICE`` names something else.
    RuntimeError
        ``COURSE_DEVICE`` asks for a device this machine does not have.
    """
    wanted = os.environ.get(DEVICE_VARIABLE, "").strip().lower()
    if wanted:
        if wanted not in _DEVICE_TYPES:
            raise ValueError(f"{DEVICE_VARIABLE} must be one of {', '.join(_DEVICE_TYPES)}; got {wanted!r}.")
        if wanted == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"{DEVICE_VARIABLE}=cuda, but PyTorch sees no CUDA GPU on this machine.")
        if wanted == "mps" and not _mps_available():
            raise RuntimeError(f"{DEVICE_VARIABLE}=mps, but PyTorch sees no Apple GPU (MPS) on this machine.")
        return torch.device(wanted)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
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
    0-255 become ``(pixel / 255 - MNIST_MEAN) / MNIST_STD``, so the paper
    (0) becomes about -0.42 and the ink (255) about +2.82.

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


def split_indices(count: int, valid_size: int | float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Positions of a reproducible train / validation split of ``count`` items.

    Parameters
    ----------
    count : int
        How many items there are.
    valid_size : int or float
        How many to hold out (an int), or which fraction of them (a float in (0, 1)).
    seed : int
        Fixes which items are held out.

    Returns
    -------
    train_index, valid_index : np.ndarray
        Disjoint, sorted int64 positions that together cover ``range(count)``.
    """
    fractional = isinstance(valid_size, float)
    n_valid = round(valid_size * count) if fractional else int(valid_size)
    if not 0 < n_valid < count or (fractional and not 0 < valid_size < 1):
        raise ValueError(
            f"valid_size must leave images on both sides (a count from 1 to {count - 1}, or a fraction "
            f"between 0 and 1); got {valid_size!r} of {count} images."
        )
    order = np.random.default_rng(seed).permutation(count)
    return np.sort(order[n_valid:]), np.sort(order[:n_valid])


def split_validation(
    images: Any, labels: Any, valid_size: int | float = 0.1, seed: int = 0
) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """Carve a validation set out of the training images, at random but reproducibly.

    Parameters
    ----------
    images, labels : arrays
        The training images and labels (same length).
    valid_size : int or float
        How many images to hold out (an int), or which fraction of them (a float in (0, 1)).
    seed : int
        Fixes which images are held out.

    Returns
    -------
    ((train_images, train_labels), (valid_images, valid_labels))
    """
    if len(labels) != len(images):
        raise ValueError(f"got {len(images)} images but {len(labels)} labels; they must match one to one.")
    train, held_out = split_indices(len(images), valid_size, seed)
    return (images[train], labels[train]), (images[held_out], labels[held_out])


def amp_dtype(device_type: str, capability: tuple[int, int] | None = None) -> torch.dtype | None:
    """The mixed-precision type that suits a device, or None for none.

    * CUDA with compute capability 8.0 or newer (A100, RTX 30xx, H100, ...):
      ``torch.bfloat16``, which these GPUs compute natively and which needs
      no loss scaling.
    * Older CUDA GPUs (a T4, Colab's free GPU, is 7.5): ``torch.float16``
      with a ``GradScaler`` (see ``needs_grad_scaler``). PyTorch reports bf16
      as "supported" there too, but only by emulation: its convolutions fall
      back to slow kernels.
    * The CPU and Apple's MPS: None (full float32).

    Parameters
    ----------
    device_type : str
        ``"cuda"``, ``"cpu"`` or ``"mps"`` (a ``torch.device``'s ``type``).
    capability : (major, minor), optional
        The GPU's compute capability (``torch.cuda.get_device_capability()``);
        needed for CUDA.
    """
    if device_type != "cuda":
        return None
    if capability is None:
        raise ValueError("amp_dtype needs the GPU's compute capability for CUDA, e.g. (7, 5) for a T4.")
    return torch.bfloat16 if tuple(capability) >= (8, 0) else torch.float16


def needs_grad_scaler(dtype: torch.dtype | None) -> bool:
    """float16 gradients need loss scaling so that small ones do not round to zero; bfloat16's do not."""
    return dtype == torch.float16


def sync(device: torch.device | str) -> None:
    """Wait for the GPU to finish its queued work, so that a clock reading means something."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


@contextmanager
def one_cpu_thread(device: torch.device | str = "cpu", *, when: bool = True) -> Iterator[None]:
    """Inside the block, PyTorch's CPU work runs on one thread; the thread count is restored after.

    For small operations (a few images through a small model, tiny convolutions,
    a linear probe's steps) splitting the work across cores costs more in
    coordination than it saves, and on a busy machine the threads that wait for
    each other spin: measured on a 2-core machine shared with other jobs, lesson
    01's fingerprints of 2,071 images took 5.0 s on two threads and 0.37 s on
    one. Nothing changes on a GPU (``device`` not the CPU) or when ``when`` is
    False.

    Parameters
    ----------
    device : torch.device or str
        Where the work runs; only the CPU's thread count is changed.
    when : bool
        False leaves the thread count alone (e.g. for a batch too large to gain).
    """
    if torch.device(device).type != "cpu" or not when:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
