"""The course's CNN for MNIST.

Introduced in lesson 05 (trained there) and used again in lesson 06 (what it
learned). The layers are named ``conv1``, ``pool1``, ``norm1``, ``relu1``,
``conv2``, ... so that later lessons can pick a layer by name from
``model.named_modules()``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

LESSON = 5

__all__ = ["CHANNELS", "layer_shapes", "mnist_cnn", "parameter_count"]

#: Output channels of the three 3x3 convolution blocks.
CHANNELS = (16, 32, 64)


def mnist_cnn(seed: int | None = 0) -> nn.Sequential:
    """The lesson's CNN: three conv blocks and one fully connected layer.

    Each block is a 3x3 convolution (zero padding 1, so the size is kept), a 2x2
    max-pool that halves the size, batch normalisation and a ReLU::

        (N, 1, 28, 28) -> conv1 -> (N, 16, 28, 28) -> pool1 -> (N, 16, 14, 14)
                       -> conv2 -> (N, 32, 14, 14) -> pool2 -> (N, 32, 7, 7)
                       -> conv3 -> (N, 64, 7, 7)   -> pool3 -> (N, 64, 3, 3)
                       -> flatten -> (N, 576) -> fc -> (N, 10) logits

    Pooling comes straight after each convolution, so batch normalisation and
    the ReLU work on a quarter of the numbers; on a CPU that saves about a
    fifth of the training time and changes the accuracy very little.

    Parameters
    ----------
    seed : int or None
        Seed for the starting weights (the global random state is left as it
        was), so that ``mnist_cnn()`` always starts from the same weights; None
        draws them from PyTorch's global generator instead.

    Returns
    -------
    torch.nn.Sequential
        Input: float ``(N, 1, 28, 28)`` as made by ``helpers.training.to_input``.
        Output: 10 logits (unnormalised class scores) per image.
    """
    if seed is None:
        return _build()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _build()


def _build() -> nn.Sequential:
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    in_channels, size = 1, 28
    for i, out_channels in enumerate(CHANNELS, start=1):
        # No bias: batch normalisation right after would cancel it anyway.
        layers[f"conv{i}"] = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        layers[f"pool{i}"] = nn.MaxPool2d(2)
        layers[f"norm{i}"] = nn.BatchNorm2d(out_channels)
        layers[f"relu{i}"] = nn.ReLU()
        in_channels, size = out_channels, size // 2
    layers["flatten"] = nn.Flatten()
    layers["fc"] = nn.Linear(in_channels * size * size, 10)
    return nn.Sequential(layers)


def parameter_count(model: nn.Module) -> int:
    """How many numbers training adjusts: the total size of the model's trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def layer_shapes(model: nn.Sequential, input_shape: tuple[int, ...] = (1, 1, 28, 28)) -> list[dict]:
    """Walk a zero input through each layer of a Sequential model and report what comes out.

    Returns
    -------
    list of dict
        One per layer, in order: ``name``, ``layer`` (its description),
        ``output_shape`` (a tuple) and ``parameters`` (trainable numbers in it).
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"layer_shapes expects an nn.Sequential model; got {type(model).__name__}.")
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    rows = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            x = torch.zeros(input_shape, device=device)
            for name, layer in model.named_children():
                x = layer(x)
                rows.append(
                    {
                        "name": name,
                        "layer": repr(layer),
                        "output_shape": tuple(x.shape),
                        "parameters": parameter_count(layer),
                    }
                )
    finally:
        model.train(was_training)
    return rows
