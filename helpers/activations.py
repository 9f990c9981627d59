"""What a layer computes and which inputs excite it: feature maps, receptive fields, top patches.

Introduced in lesson 06 (``06_visualizing_filters.ipynb``). A *layer* is a
name from ``model.named_modules()`` (``"conv1"``, ``"conv2"``, ...; ``""`` is
the whole model, whose output is the ten class logits), and its *activation*
is that module's output; for a conv layer that is before its ReLU.

The lesson first writes a forward hook by hand (capture one conv layer's
output for one image); this module keeps that idea for every layer and for
whole data sets. Activations are read with forward hooks, so any ``nn.Module``
works, however its ``forward`` is written. When only one layer is needed, the
forward pass stops right after it. Everything runs on the model's device;
what comes back as numpy has been moved to the CPU first.

Images may be uint8 arrays from ``load_mnist`` (``(N, 28, 28)`` or one
``(28, 28)`` image) or model inputs as ``helpers.core.to_input`` makes them
(float ``(N, 1, 28, 28)``).

What an optimised input or a saliency map shows is in ``helpers.explain``;
the pictures are in ``helpers.plots``; ``helpers.visualize`` gathers the
lesson's names in one place.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from helpers.core import MNIST_MEAN, MNIST_STD, to_input

LESSON = 6

__all__ = [
    "channel_activation",
    "conv_layers",
    "cosine_similarity",
    "feature_maps",
    "pixel_range",
    "receptive_field",
    "to_pixels",
    "top_patches",
    "top_units",
]

# Images per forward pass when scanning a data set under no_grad.
_BATCH = 1000


class _Stop(Exception):
    """Raised by a hook to end the forward pass once the wanted layer has run."""


def conv_layers(model: nn.Module) -> list[str]:
    """The names of the model's 2-D convolution layers, in ``named_modules()`` order."""
    return [name for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]


def _module(model: nn.Module, layer: str | None) -> nn.Module:
    modules = dict(model.named_modules())
    layer = "" if layer is None else layer
    if not isinstance(layer, str) or layer not in modules:
        names = [name for name in modules if name]
        raise KeyError(
            f"layer must be a name from model.named_modules() ('' for the model's output); "
            f"got {layer!r}; the names are {names}."
        )
    return modules[layer]


def _device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _inputs(images: Any, device: torch.device, single: bool = False) -> torch.Tensor:
    """Images (uint8 pixels or model inputs) as a float ``(N, 1, H, W)`` model input on ``device``."""
    tensor = torch.as_tensor(images) if not isinstance(images, torch.Tensor) else images
    if tensor.is_floating_point():
        if tensor.ndim == 3 and tensor.shape[0] == 1:  # one (1, H, W) model input
            tensor = tensor[None]
        if tensor.ndim != 4 or tensor.shape[1] != 1:
            raise ValueError(
                "expected uint8 images (N, 28, 28) or (28, 28), or a float model input (N, 1, 28, 28) "
                f"or (1, 28, 28); got a float tensor of shape {tuple(tensor.shape)}."
            )
        x = tensor.to(device)
    else:
        x = to_input(tensor, device)
    if single and x.shape[0] != 1:
        raise ValueError(f"expected one image; got {x.shape[0]}.")
    return x


class _Capture:
    """Forward hooks that record the outputs of some layers (optionally ending the pass after the last)."""

    def __init__(self, model: nn.Module, layers: Sequence[str], stop: bool, clone: bool = False):
        self.model, self.outputs, self.stop, self.clone = model, {}, stop, clone
        self.layers = list(layers)
        self.handles = [_module(model, name).register_forward_hook(self._hook(name)) for name in self.layers]

    def _hook(self, name: str):
        def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            if name in self.outputs:  # a module used twice: keep its first use
                return
            # clone: an in-place ReLU right after a conv would otherwise overwrite what we keep
            self.outputs[name] = output.clone() if self.clone else output
            if self.stop and len(self.outputs) == len(self.layers):
                raise _Stop

        return hook

    def run(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self.outputs = {}
        try:
            output = self.model(x)
        except _Stop:
            output = None
        if "" in self.layers and "" not in self.outputs:
            self.outputs[""] = output
        return self.outputs

    def __enter__(self) -> _Capture:
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self.handles:
            handle.remove()


class _Eval:
    """Put a model in eval mode for a while (dropout off, batch-norm statistics frozen)."""

    def __init__(self, model: nn.Module):
        self.model, self.was_training = model, model.training

    def __enter__(self) -> nn.Module:
        self.model.eval()
        return self.model

    def __exit__(self, *exc: Any) -> None:
        self.model.train(self.was_training)


def _activation(model: nn.Module, layer: str, x: torch.Tensor) -> torch.Tensor:
    """The layer's output for the model input ``x`` (the pass ends right after the layer)."""
    stop = layer != ""
    with _Capture(model, [layer], stop=stop) as capture:
        return capture.run(x)[layer]


def feature_maps(model: nn.Module, image: Any) -> dict[str, torch.Tensor]:
    """Every conv layer's output (before its ReLU) for one image.

    The lesson writes this once by hand: a forward hook on one layer that keeps
    its output. Here there is one hook per conv layer, and the forward pass
    stops after the last of them.

    Parameters
    ----------
    model : nn.Module
        A CNN; its conv layers are found with :func:`conv_layers`. It runs on
        its own device.
    image : array or tensor
        One uint8 ``(28, 28)`` image, or a model input ``(1, 1, 28, 28)`` /
        ``(1, 28, 28)``.

    Returns
    -------
    dict[str, torch.Tensor]
        ``{layer name: (channels, height, width)}`` float tensors on the CPU
        (ready for numpy and matplotlib, whatever the model's device), in
        forward order.
    """
    layers = conv_layers(model)
    if not layers:
        raise ValueError(f"feature_maps needs a model with nn.Conv2d layers; {type(model).__name__} has none.")
    x = _inputs(image, _device(model), single=True)
    with _Eval(model), torch.no_grad(), _Capture(model, layers, stop=True, clone=True) as capture:
        outputs = capture.run(x)
    return {name: outputs[name][0].cpu() for name in layers if name in outputs}


def receptive_field(model: nn.Module, layer: str, image_size: int = 28) -> tuple[int, int, int]:
    """Where a unit of a conv layer looks: its receptive field in the input.

    Unit ``(i, j)`` of the layer's output sees input rows
    ``i * stride + offset`` to ``i * stride + offset + size - 1`` (and the same
    for columns); ``offset`` is negative when the layers pad their input.

    It is measured, not derived from the architecture, so it holds however
    the model is written: on a copy of the model with random weights, the
    gradients of two neighbouring units are taken for a batch of random
    inputs (a large canvas, so nothing is cut off at the border), and the
    pixels that move each unit give its extent.

    Returns
    -------
    (size, stride, offset) : tuple of int
    """
    _module(model, layer)
    if layer == "":
        raise ValueError("receptive_field needs a layer with a spatial output, not the model's output ('').")
    probe = copy.deepcopy(model).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # random weights: a trained weight that happens to be 0 must not hide a pixel
        for parameter in probe.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
    canvas = 4 * image_size
    x = torch.randn(32, 1, canvas, canvas, generator=generator).to(_device(model)).requires_grad_(True)
    with torch.enable_grad():
        try:
            out = _activation(probe, layer, x)
        except RuntimeError:  # e.g. a reshape that needs exactly image_size: use the real size
            canvas = image_size
            x = x[:, :, :canvas, :canvas].detach().requires_grad_(True)
            out = _activation(probe, layer, x)
        if out is None or out.ndim != 4:
            raise ValueError(f"layer {layer!r} has no (N, C, H, W) output; got {tuple(out.shape)}.")
        centre = out.shape[-1] // 2 - 1 if out.shape[-1] > 1 else 0
        extents = []
        for unit in (centre, centre + 1) if out.shape[-1] > 1 else (centre,):
            (grad,) = torch.autograd.grad(out[:, :, unit, unit].sum(), x, retain_graph=True)
            touched = (grad.abs().sum(dim=(0, 1, 2)) > 0).nonzero().flatten().cpu()
            if len(touched) == 0:
                raise ValueError(f"no input pixel reaches layer {layer!r}; is the model wired as expected?")
            extents.append((int(touched[0]), int(touched[-1])))
    (first, last) = extents[0]
    stride = extents[1][0] - first if len(extents) > 1 else 1
    return last - first + 1, stride, first - centre * stride


def _channel_list(channel: int | Sequence[int]) -> list[int]:
    channels = [channel] if np.isscalar(channel) else list(channel)
    if not channels or not all(isinstance(c, int | np.integer) for c in channels):
        raise ValueError(f"channel must be an int or a non-empty sequence of ints; got {channel!r}.")
    return [int(c) for c in channels]


def _check_channels(channels: Sequence[int], count: int, layer: str) -> None:
    bad = [c for c in channels if not 0 <= c < count]
    if bad:
        raise ValueError(f"channel must be between 0 and {count - 1} for layer {layer!r}; got {bad[0]}.")


def top_units(
    model: nn.Module,
    layer: str,
    images: Any,
    channel: int | Sequence[int],
    k: int = 9,
    *,
    one_per_image: bool = True,
    batch_size: int = _BATCH,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` units of a channel that the images excite most, strongest first.

    The images go through the model in large batches under ``no_grad``; each
    batch's best ``k`` are kept and merged with the best so far, so memory
    stays small for any number of images. Several channels are ranked in the
    same pass.

    Parameters
    ----------
    model, layer
        The model and the name of one of its conv layers.
    images : array or tensor
        uint8 ``(N, 28, 28)`` or model inputs ``(N, 1, 28, 28)``.
    channel : int or sequence of int
        The channel, or several.
    k : int
        How many units per channel.
    one_per_image : bool
        Keep only each image's strongest position (as Zeiler and Fergus do),
        so the ``k`` patches come from ``k`` different images; otherwise the
        top ``k`` over all images and positions.

    Returns
    -------
    image_index, row, col, value : np.ndarray
        Shape ``(k,)`` for one channel, ``(C, k)`` for C channels: which
        image, where in the layer's output, and the activation there, sorted
        by activation (largest first).
    """
    _module(model, layer)
    channels = _channel_list(channel)
    device = _device(model)
    n = len(images)
    if k < 1 or k > n:
        raise ValueError(f"k must be between 1 and the number of images ({n}); got {k}.")
    best_values = torch.empty(len(channels), 0)
    best_flat = torch.empty(len(channels), 0, dtype=torch.long)
    with _Eval(model), torch.no_grad():
        for start in range(0, n, batch_size):
            out = _activation(model, layer, _inputs(images[start : start + batch_size], device))
            if out.ndim != 4:
                raise ValueError(f"layer {layer!r} must have an (N, C, H, W) output; got {tuple(out.shape)}.")
            _check_channels(channels, out.shape[1], layer)
            maps = out[:, channels].flatten(2).transpose(0, 1)  # (channels, batch, H*W)
            width, positions = out.shape[-1], maps.shape[2]
            first = start * positions  # flat index = image * positions + position
            if one_per_image:
                values, where = maps.max(dim=2)
                flat = torch.arange(maps.shape[1], device=maps.device) * positions + where + first
            else:
                values = maps.flatten(1)
                flat = torch.arange(values.shape[1], device=maps.device).expand_as(values) + first
            keep = torch.topk(values, min(k, values.shape[1]), dim=1).indices
            best_values = torch.cat([best_values, values.gather(1, keep).float().cpu()], dim=1)
            best_flat = torch.cat([best_flat, flat.gather(1, keep).cpu()], dim=1)
            order = torch.topk(best_values, min(k, best_values.shape[1]), dim=1).indices
            best_values, best_flat = best_values.gather(1, order), best_flat.gather(1, order)
    image_index, position = (best_flat // positions).numpy(), (best_flat % positions).numpy()
    result = image_index, position // width, position % width, best_values.numpy()
    return tuple(a[0] for a in result) if np.isscalar(channel) else result


def top_patches(
    model: nn.Module,
    layer: str,
    images: Any,
    channel: int | Sequence[int],
    k: int = 9,
    *,
    one_per_image: bool = True,
    batch_size: int = _BATCH,
) -> tuple[np.ma.MaskedArray, np.ndarray]:
    """The ``k`` input crops that excite a channel of a conv layer most (Zeiler and Fergus).

    Each crop is the receptive field (:func:`receptive_field`) of one of the
    :func:`top_units`, cut from the image it came from. Where the field runs
    over the image's border the crop is zero-padded and *masked*: those cells
    are not pixels of the image (the layers pad their own inputs there), and
    ``helpers.plots.show_patches`` draws them in a colour of their own rather
    than as paper. Crops grow with depth.

    Parameters
    ----------
    model, layer, images, channel, k, one_per_image, batch_size
        As for :func:`top_units`; several channels are found in one pass.

    Returns
    -------
    crops : np.ma.MaskedArray
        ``(k, size, size)`` for one channel (``(C, k, size, size)`` for C),
        in the images' own values (uint8 pixels for uint8 images: 0 is paper,
        255 is ink), strongest first. ``crops.mask`` is True outside the
        image (the data there is 0: ``crops.filled(0)`` is the zero-padded
        crop).
    values : np.ndarray
        float32 ``(k,)`` (or ``(C, k)``), the activations, largest first.
    """
    image_index, rows, cols, values = top_units(
        model, layer, images, channel, k, one_per_image=one_per_image, batch_size=batch_size
    )
    size, stride, offset = receptive_field(model, layer)
    pixels = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if pixels.ndim == 4:
        pixels = pixels[:, 0]
    chosen = pixels[image_index.ravel()]
    padded = np.pad(chosen, ((0, 0), (size, size), (size, size)))  # zeros all round
    outside = np.pad(np.zeros(chosen.shape[1:], bool), size, constant_values=True)
    span = np.arange(size)
    top = rows.ravel() * stride + offset + size  # + size: coordinates in the padded images
    left = cols.ravel() * stride + offset + size
    row_index, col_index = (top[:, None] + span)[:, :, None], (left[:, None] + span)[:, None, :]
    crops = padded[np.arange(len(chosen))[:, None, None], row_index, col_index]
    mask = outside[row_index, col_index]
    shape = (*image_index.shape, size, size)
    return np.ma.MaskedArray(crops.reshape(shape), mask=mask.reshape(shape)), values


def _objective(out: torch.Tensor, channel: torch.Tensor | int, reduce: str = "mean") -> torch.Tensor:
    """Per-image score of channel ``channel[i]`` of image i: its mean, maximum or centre value."""
    rows = torch.arange(out.shape[0], device=out.device)
    chosen = out[rows, torch.as_tensor(channel, device=out.device).expand(out.shape[0])]
    if out.ndim == 4 and reduce not in ("mean", "max", "centre"):
        raise ValueError(f"reduce must be 'mean', 'max' or 'centre'; got {reduce!r}.")
    if chosen.ndim == 1:  # (N, classes) output: the logit itself
        return chosen
    if reduce == "mean":
        return chosen.flatten(1).mean(dim=1)
    if reduce == "max":
        return chosen.flatten(1).amax(dim=1)
    if reduce == "centre":
        return chosen[:, (chosen.shape[1] - 1) // 2, (chosen.shape[2] - 1) // 2]
    raise ValueError(f"reduce must be 'mean', 'max' or 'centre'; got {reduce!r}.")


def channel_activation(
    model: nn.Module,
    layer: str,
    images: Any,
    channel: int | Sequence[int],
    *,
    reduce: str = "max",
    batch_size: int = _BATCH,
) -> np.ndarray:
    """How strongly each image excites a channel of a layer.

    Parameters
    ----------
    model, layer
        The model and a name from its ``named_modules()`` (``""``: the logits).
    images : array or tensor
        uint8 ``(N, 28, 28)`` or model inputs ``(N, 1, 28, 28)`` (on any
        device: they are moved to the model's).
    channel : int or sequence of int
        The channel (or class), or several, measured in the same pass.
    reduce : str
        ``"max"``: the channel's strongest unit (the position that
        :func:`top_units` would pick); ``"mean"``: its mean over all
        positions (what ``helpers.explain.maximize_activation`` maximises by
        default); ``"centre"``: the unit at the centre of the map. For the
        model's output (``layer=""``) it is simply the class logit ``channel``.

    Returns
    -------
    np.ndarray
        float32 ``(N,)`` for one channel, ``(N, C)`` for C channels.
    """
    _module(model, layer)
    channels = _channel_list(channel)
    device = _device(model)
    values = []
    with _Eval(model), torch.no_grad():
        for start in range(0, len(images), batch_size):
            out = _activation(model, layer, _inputs(images[start : start + batch_size], device))
            _check_channels(channels, out.shape[1], layer)
            scores = [_objective(out, c, reduce).float().cpu() for c in channels]
            values.append(torch.stack(scores, dim=1))
    result = torch.cat(values).numpy()
    return result[:, 0] if np.isscalar(channel) else result


def cosine_similarity(a: Any, b: Any) -> np.ndarray:
    """Cosine similarity of every filter in ``a`` with every filter in ``b``.

    Parameters
    ----------
    a, b : array or tensor
        ``(K, h, w)`` and ``(M, h, w)`` (any trailing shape, the same for
        both); tensors may live on any device.

    Returns
    -------
    np.ndarray
        ``(K, M)``, each between -1 and 1.
    """
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    b = b.detach().cpu().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"filters must have the same shape; got {a.shape[1:]} and {b.shape[1:]}.")
    a = a.reshape(len(a), -1).astype(np.float64)
    b = b.reshape(len(b), -1).astype(np.float64)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T


def pixel_range() -> tuple[float, float]:
    """The model-input values of paper (pixel 0) and full ink (pixel 255), as ``to_input`` makes them."""
    return (0 - MNIST_MEAN) / MNIST_STD, (1 - MNIST_MEAN) / MNIST_STD


def to_pixels(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """Model inputs back to ink in [0, 1] (0 paper, 1 full ink; the inverse of ``to_input``), as numpy.

    Shown with ``helpers.plots.show_images`` (whose grey map draws 1 dark), ink
    looks as it does in every lesson: dark strokes on white paper.
    """
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return np.clip(x * MNIST_STD + MNIST_MEAN, 0, 1)
