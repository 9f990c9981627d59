"""What an optimised input or a saliency map shows: activation maximisation, saliency, SmoothGrad.

Introduced in lesson 06 (``06_visualizing_filters.ipynb``). Both ideas use the
gradient with respect to the *input*, with the model's weights held fixed:

* :func:`maximize_activation` climbs it: start from a plain grey image and
  change the pixels, step by step, to excite one channel (or class) as much
  as possible;
* :func:`saliency` reads it once: how much each pixel of a real image moves a
  class score (the lesson writes the plain version by hand first: one forward
  pass, ``backward`` on the class score, ``x.grad.abs()``), or, with
  ``samples > 1``, the average over noisy copies (SmoothGrad).

Layers, channels and images are as in ``helpers.activations``. Everything runs
on the model's device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from helpers.activations import _activation, _channel_list, _device, _Eval, _inputs, _module, _objective, pixel_range
from helpers.core import MNIST_MEAN, MNIST_STD, one_cpu_thread

LESSON = 6

__all__ = ["maximize_activation", "saliency"]


#: Up to this many images per pass, saliency runs on one CPU thread.
_SMALL_BATCH = 32

_BLUR = torch.tensor([1.0, 2.0, 1.0]) / 4


def _blur(x: torch.Tensor) -> torch.Tensor:
    """A light 3x3 binomial blur, edges replicated."""
    kernel = (_BLUR[:, None] * _BLUR[None, :]).to(x)[None, None]
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel)


def maximize_activation(
    model: nn.Module,
    layer: str,
    channel: int | Sequence[int],
    *,
    steps: int = 256,
    lr: float = 0.1,
    l2: float = 0.02,
    jitter: int = 1,
    blur_every: int = 8,
    blur_until: float = 0.5,
    objective: str = "mean",
    start_noise: float = 0.1,
    seed: int = 0,
    image_size: int = 28,
) -> torch.Tensor:
    """An input that excites one channel (or class) strongly, found by gradient ascent.

    Start from a plain grey image (half ink, with a little seeded noise), then
    for ``steps`` steps of Adam: shift it by up to ``jitter`` pixels at random,
    push it up the gradient of the channel's activation (its mean over all
    positions, see ``helpers.activations.channel_activation``; for
    ``layer=""`` the class logit) minus a light L2 penalty
    ``l2 * mean((x - grey)^2)``, blur it a little every ``blur_every`` steps
    during the first ``blur_until`` of the steps (coarse shapes first, fine
    detail last), and clip it to the range of real pixels (from paper, 0, to
    full ink, 255), so the result is a picture a digit could be.

    Parameters
    ----------
    model : nn.Module
        The trained model (left unchanged, in the mode it was in).
    layer : str
        A name from ``named_modules()``; ``""`` for the class logits.
    channel : int or sequence of int
        The channel or class; several are optimised together, as a batch.
    steps, lr, l2, jitter, blur_every, blur_until
        The ascent's settings (``jitter=0``, ``blur_every=0`` switch those off).
    objective : {"mean", "max", "centre"}
        What to maximise for a conv layer: the channel's mean over positions
        (a texture of what it detects), its strongest unit, or the unit in
        the centre (one receptive field's worth of pattern).
    seed : int
        Seeds the starting noise and the jitter, so the result is repeatable
        (on one machine; another device's arithmetic can lead the ascent
        elsewhere).

    Returns
    -------
    torch.Tensor
        On the model's device, in the model's input space (as ``to_input``
        makes it; ``helpers.activations.to_pixels`` turns it back into ink
        from 0 to 1): ``(1, 28, 28)`` for one channel, ``(K, 1, 28, 28)``
        for K channels.
    """
    _module(model, layer)
    channels = torch.as_tensor(_channel_list(channel), dtype=torch.long)
    if steps < 1:
        raise ValueError(f"steps must be at least 1; got {steps}.")
    device = _device(model)
    low, high = pixel_range()
    grey = (0.5 - MNIST_MEAN) / MNIST_STD
    generator = torch.Generator().manual_seed(seed)
    start = grey + start_noise * torch.randn(len(channels), 1, image_size, image_size, generator=generator)
    shifts = torch.randint(-jitter, jitter + 1, (steps, 2), generator=generator).tolist()
    x = start.clamp(low, high).to(device).requires_grad_(True)
    optimiser = torch.optim.Adam([x], lr=lr)
    with _Eval(model), torch.enable_grad(), one_cpu_thread(device):
        with torch.no_grad():
            out = _activation(model, layer, x)
        if out.ndim not in (2, 4) or int(channels.max()) >= out.shape[1] or int(channels.min()) < 0:
            raise ValueError(f"channel must be between 0 and {out.shape[1] - 1} for layer {layer!r}; got {channel!r}.")
        channels = channels.to(device)
        for step, (dy, dx) in enumerate(shifts):
            shifted = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
            score = _objective(_activation(model, layer, shifted), channels, objective)
            penalty = l2 * ((x - grey) ** 2).flatten(1).mean(dim=1)
            # autograd.grad, not backward(): the model's own .grad stays untouched
            (x.grad,) = torch.autograd.grad(-(score - penalty).sum(), x)
            optimiser.step()
            with torch.no_grad():
                if blur_every and (step + 1) % blur_every == 0 and step < blur_until * steps:
                    x.copy_(_blur(x))
                x.clamp_(low, high)
    result = x.detach()
    return result[0] if np.isscalar(channel) else result


def saliency(
    model: nn.Module,
    image: Any,
    target: int | Sequence[int] | None = None,
    *,
    samples: int = 1,
    noise: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """Which pixels the decision depends on: the gradient magnitude of a class score.

    Vanilla gradient saliency (Simonyan et al., 2014): the absolute value of
    the derivative of the target class's logit with respect to each input
    pixel. Large means a small change in that pixel changes the score a lot.
    With ``samples > 1`` it is SmoothGrad (Smilkov et al., 2017): the mean of
    the saliency of ``samples`` copies of the image with Gaussian noise of
    standard deviation ``noise`` (in model-input units) added, which is less
    speckled.

    Parameters
    ----------
    model : nn.Module
        The trained classifier (left unchanged; its parameters' ``.grad`` too).
    image : array or tensor
        One uint8 ``(28, 28)`` image or model input ``(1, 1, 28, 28)``; or a
        batch ``(N, 28, 28)`` / ``(N, 1, 28, 28)``.
    target : int or sequence of int, optional
        The class (one per image for a batch); by default the predicted one
        (for the image without noise).
    samples, noise, seed
        SmoothGrad's settings; the default is plain saliency.

    Returns
    -------
    np.ndarray
        float32, non-negative, on the CPU: ``(28, 28)`` for one image (in any
        of the forms above), ``(N, 28, 28)`` for N > 1 images.
    """
    if samples < 1 or noise < 0:
        raise ValueError(f"samples must be >= 1 and noise >= 0; got samples={samples}, noise={noise}.")
    device = _device(model)
    x = _inputs(image, device).detach()
    # a few images at a time: small operations, faster on one CPU thread (see helpers.core.one_cpu_thread)
    with _Eval(model), torch.enable_grad(), one_cpu_thread(device, when=len(x) <= _SMALL_BATCH):
        with torch.no_grad():
            logits = model(x)
        if logits.ndim != 2:
            raise ValueError(f"saliency needs a model that returns (N, classes) scores; got {tuple(logits.shape)}.")
        if target is None:
            classes = logits.argmax(dim=1)
        else:
            classes = torch.as_tensor(np.atleast_1d(target), dtype=torch.long, device=logits.device)
            if len(classes) not in (1, len(logits)):
                raise ValueError(f"target must be one class or one per image ({len(logits)}); got {len(classes)}.")
            if int(classes.min()) < 0 or int(classes.max()) >= logits.shape[1]:
                raise ValueError(f"target must be a class between 0 and {logits.shape[1] - 1}; got {target!r}.")
            classes = classes.expand(len(logits))
        generator = torch.Generator().manual_seed(seed)
        total = torch.zeros_like(x)
        for _ in range(samples):
            jittered = x + noise * torch.randn(x.shape, generator=generator).to(x) if noise else x
            jittered = jittered.clone().requires_grad_(True)
            scores = model(jittered).gather(1, classes[:, None]).sum()
            (grad,) = torch.autograd.grad(scores, jittered)
            total += grad.abs()
    result = (total / samples).amax(dim=1).cpu().numpy().astype(np.float32)
    return result[0] if len(result) == 1 else result
