"""Small experiments of lesson 04: a CNN with a chosen activation, gradient norms, a few training steps.

Introduced in lesson 04 (``04_cnn_building_blocks.ipynb``), for the sigmoid vs
ReLU experiment and the numerical gradient check. Lesson 05's real model and
training loop live in ``helpers.models`` and ``helpers.training``; nothing here
depends on them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

LESSON = 4

__all__ = [
    "ACTIVATIONS",
    "draw_pipeline",
    "gradient_norms",
    "numerical_gradient",
    "small_cnn",
    "train_steps",
]

#: The activations :func:`small_cnn` can use, by name.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
}


def small_cnn(activation: str = "relu", channels: tuple[int, int] = (8, 16), hidden: int = 32) -> nn.Sequential:
    """A small CNN for 28x28 digits with the activation of your choice after every layer but the last.

    Two stages of (conv -> act -> conv -> act -> 2x2 max-pool), then flatten ->
    fully connected -> act -> fully connected (10 logits)::

        conv1 (1 -> c1, 3x3, padding 1)  act1
        conv2 (c1 -> c1, 3x3, padding 1) act2  pool1   28x28 -> 14x14
        conv3 (c1 -> c2, 3x3, padding 1) act3
        conv4 (c2 -> c2, 3x3, padding 1) act4  pool2   14x14 -> 7x7
        flatten                                        c2 * 7 * 7 numbers
        fc1 (c2 * 49 -> hidden)          act5
        fc2 (hidden -> 10)                             logits

    Six layers with weights: deep enough that a sigmoid's small slope
    (at most 1/4) visibly shrinks the gradients on their way back to ``conv1``.
    Weights get PyTorch's default initialisation, so seed before calling
    (``torch.manual_seed``) to get the same starting weights for every activation.

    Parameters
    ----------
    activation : str
        One of ``ACTIVATIONS``: ``"relu"``, ``"sigmoid"``, ``"tanh"``, ``"leaky_relu"``.
    channels : (int, int)
        Filters in the first and in the second stage.
    hidden : int
        Units of the hidden fully connected layer.

    Returns
    -------
    torch.nn.Sequential
        Input ``(N, 1, 28, 28)`` float, output ``(N, 10)`` logits; layers named
        ``conv1``..``conv4``, ``act1``..``act5``, ``pool1``, ``pool2``,
        ``flatten``, ``fc1``, ``fc2``.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}; got {activation!r}.")
    if len(channels) != 2 or not all(isinstance(c, int) and c > 0 for c in (*channels, hidden)):
        raise ValueError(
            f"channels must be two positive integers and hidden a positive integer; "
            f"got channels={channels!r}, hidden={hidden!r}."
        )
    act = ACTIVATIONS[activation]
    c1, c2 = channels
    layers = OrderedDict(
        [
            ("conv1", nn.Conv2d(1, c1, 3, padding=1)),
            ("act1", act()),
            ("conv2", nn.Conv2d(c1, c1, 3, padding=1)),
            ("act2", act()),
            ("pool1", nn.MaxPool2d(2)),
            ("conv3", nn.Conv2d(c1, c2, 3, padding=1)),
            ("act3", act()),
            ("conv4", nn.Conv2d(c2, c2, 3, padding=1)),
            ("act4", act()),
            ("pool2", nn.MaxPool2d(2)),
            ("flatten", nn.Flatten()),
            ("fc1", nn.Linear(c2 * 7 * 7, hidden)),
            ("act5", act()),
            ("fc2", nn.Linear(hidden, 10)),
        ]
    )
    return nn.Sequential(layers)


def _weighted_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _check_batch(images: torch.Tensor, labels: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or not images.is_floating_point() or images.ndim != 4:
        given = f"{type(images).__name__} {tuple(getattr(images, 'shape', ()))}"
        raise TypeError(f"images must be a float tensor (N, C, H, W), e.g. from helpers.core.to_input; got {given}.")
    if not isinstance(labels, torch.Tensor) or labels.shape != images.shape[:1]:
        raise ValueError(
            f"labels must be a tensor with one label per image, shape ({images.shape[0]},); "
            f"got {type(labels).__name__} {tuple(getattr(labels, 'shape', ()))}."
        )


def gradient_norms(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """How large the loss gradient is at each layer's weights, for one batch.

    Runs one forward and backward pass of the cross-entropy loss and returns
    the Euclidean norm of each conv/linear layer's weight gradient, input side
    first. The model's parameters are not changed and its ``.grad`` fields are
    cleared again afterwards.

    Parameters
    ----------
    model : torch.nn.Module
        Any model giving logits; its conv and linear layers are measured.
    images : torch.Tensor
        ``(N, C, H, W)`` float model input, on the model's device.
    labels : torch.Tensor
        ``(N,)`` integer labels, same device.

    Returns
    -------
    dict[str, float]
        Layer name (from ``named_modules``) -> norm of its weight gradient.
    """
    _check_batch(images, labels)
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(images), labels).backward()
    norms = {name: float(m.weight.grad.norm()) for name, m in _weighted_layers(model)}
    model.zero_grad(set_to_none=True)
    return norms


def train_steps(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    steps: int = 200,
    batch_size: int = 64,
    lr: float = 0.05,
    momentum: float = 0.0,
    seed: int = 0,
) -> list[float]:
    """A few steps of minibatch gradient descent (plain SGD by default) on random batches.

    Each step draws ``batch_size`` random images (a seeded generator, so two
    models trained with the same ``seed`` see exactly the same batches),
    computes the cross-entropy loss, and takes one optimiser step. The data
    stay where they are (put them on the model's device first); no Python
    loop touches individual images.

    Parameters
    ----------
    model : torch.nn.Module
        Trained in place.
    images, labels : torch.Tensor
        ``(N, C, H, W)`` float inputs and ``(N,)`` integer labels.
    steps, batch_size, lr, seed
        Number of steps, images per step, learning rate, batch-order seed.
    momentum : float
        0 (the default) gives plain SGD, ``parameter -= lr * gradient``, as in
        lessons 02-04; lesson 05 explains momentum.

    Returns
    -------
    list[float]
        The training loss of each step's batch (before that step's update).
    """
    _check_batch(images, labels)
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be positive; got steps={steps}, batch_size={batch_size}.")
    generator = torch.Generator().manual_seed(seed)
    batches = torch.randint(len(images), (steps, batch_size), generator=generator).to(images.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    model.train()
    losses = torch.empty(steps, device=images.device)
    for step in range(steps):
        index = batches[step]
        loss = F.cross_entropy(model(images[index]), labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses[step] = loss.detach()
    return losses.tolist()  # one transfer from the device at the end


def numerical_gradient(
    f: Callable[[np.ndarray], float | np.ndarray],
    x: np.ndarray,
    dout: np.ndarray | None = None,
    eps: float = 1e-6,
) -> np.ndarray:
    """The gradient of ``f`` at ``x`` by central differences: nudge each entry up and down.

    ``df/dx[i] ~ (f(x + eps * e_i) - f(x - eps * e_i)) / (2 * eps)``: two
    evaluations of ``f`` per entry, so this is only for checking small
    examples (a layer on a few numbers, a tiny network's parameters), never
    for training.

    With ``dout``, ``f`` returns an array (a layer's output) and the result is
    the gradient of ``sum(f(x) * dout)``: what a backward pass given ``dout``
    must return. The two outputs are subtracted before they are multiplied by
    ``dout`` and added up, so the outputs that the nudged entry does not touch
    cancel exactly and add no rounding error (as in CS231n's
    ``eval_numerical_gradient_array``).

    Parameters
    ----------
    f : callable
        Takes an array shaped like ``x`` and returns a number (or, with
        ``dout``, an array shaped like ``dout``).
    x : np.ndarray
        Where to take the gradient (computed in float64); not modified.
    dout : np.ndarray, optional
        The weights of ``f``'s outputs: the gradient of the loss with respect to them.
    eps : float
        The nudge.

    Returns
    -------
    np.ndarray
        float64, the shape of ``x``.
    """
    x = np.array(x, dtype=np.float64)  # a copy we may nudge
    if dout is not None:
        dout = np.asarray(dout, dtype=np.float64)
    grad = np.empty_like(x)
    flat, grad_flat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        original = flat[i]
        flat[i] = original + eps
        up = np.asarray(f(x), dtype=np.float64)
        flat[i] = original - eps
        down = np.asarray(f(x), dtype=np.float64)
        flat[i] = original
        if dout is None:
            if up.size != 1:
                raise ValueError(
                    f"numerical_gradient: f returned an array of shape {up.shape}; return one number, "
                    "or pass dout (the weights of its outputs)."
                )
            grad_flat[i] = (float(up.reshape(())) - float(down.reshape(()))) / (2 * eps)
        else:
            if up.shape != dout.shape:
                raise ValueError(
                    f"numerical_gradient: f returned shape {up.shape} but dout has shape {dout.shape}; they must match."
                )
            grad_flat[i] = np.sum((up - down) * dout) / (2 * eps)
    return grad


def draw_pipeline(
    blocks: Sequence[tuple[str, str]], stages: Sequence[tuple[str, int, int]] = (), *, width: float = 9.0
) -> Figure:
    """Draw a network as a row of labelled boxes joined by arrows, with brackets for its stages.

    Parameters
    ----------
    blocks : list of (str, str)
        ``(name, shape)`` for each box, left to right, e.g. ``("conv + ReLU", "8x28x28")``.
    stages : list of (str, int, int)
        ``(label, first, last)``: a bracket under boxes ``first..last`` (inclusive).
    width : float
        Figure width in inches.
    """
    if not blocks:
        raise ValueError("draw_pipeline needs at least one (name, shape) block.")
    for label, first, last in stages:
        if not 0 <= first <= last < len(blocks):
            raise ValueError(f"stage {label!r} must span boxes within 0..{len(blocks) - 1}; got {first}..{last}.")
    fig, ax = plt.subplots(figsize=(width, 1.9))
    ax.set_xlim(-0.1, len(blocks) - 0.1)
    ax.set_ylim(-1.0, 1.0)
    ax.set_axis_off()
    for i, (name, shape) in enumerate(blocks):
        ax.add_patch(plt.Rectangle((i, -0.1), 0.8, 0.9, facecolor="#e8eef7", edgecolor="#4a6fa5"))
        ax.text(i + 0.4, 0.5, name, ha="center", va="center", fontsize=8)
        ax.text(i + 0.4, 0.1, shape, ha="center", va="center", fontsize=7, color="#555555")
        if i:
            ax.annotate("", xy=(i, 0.35), xytext=(i - 0.2, 0.35), arrowprops={"arrowstyle": "->"})
    for label, first, last in stages:
        ax.plot([first, first, last + 0.8, last + 0.8], [-0.25, -0.35, -0.35, -0.25], color="black", lw=1)
        ax.text((first + last + 0.8) / 2, -0.6, label, ha="center", va="center", fontsize=9)
    fig.tight_layout()
    return fig
