"""The layers of a CNN in a few lines of numpy each, channels first, shapes as in PyTorch.

Introduced in lesson 04 (``04_cnn_building_blocks.ipynb``). Each function does
what its ``torch.nn.functional`` counterpart does (``F.conv2d``, ``F.relu``,
``torch.sigmoid``, ``F.max_pool2d``, ``F.avg_pool2d``, ``torch.flatten``,
``F.linear``, ``F.softmax``, ``F.cross_entropy``) and agrees with it to a
relative error below 1e-6 when both compute in float64 (``tests/test_layers.py``
checks this on random inputs).

Everything is vectorised: convolution and pooling look at every window at once
through ``numpy.lib.stride_tricks.sliding_window_view`` (a view, no copy), then
one ``tensordot`` (convolution) or one ``max``/``mean`` (pooling) does the
arithmetic. There is no Python loop over pixels or images.

The backward passes (``linear_backward``, ``relu_backward``,
``max_pool2d_backward``, ``conv2d_backward`` and
``softmax_cross_entropy_backward``) take the gradient of the loss with respect
to a layer's output (``dout``, the same shape as the output) and what the
layer saw in its forward pass, and return the gradients with respect to its
input and its parameters, as PyTorch's autograd does
(``tests/test_layers.py`` checks each against autograd and against a numerical
gradient, to a relative error below 1e-6 in float64).

Shapes follow PyTorch: images are ``(N, C, H, W)`` (a single ``(C, H, W)``
image works too), convolution weights ``(C_out, C_in, kH, kW)``, fully
connected weights ``(out_features, in_features)``.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

LESSON = 4

__all__ = [
    "avg_pool2d",
    "conv2d",
    "conv2d_backward",
    "cross_entropy",
    "flatten",
    "linear",
    "linear_backward",
    "log_softmax",
    "max_pool2d",
    "max_pool2d_backward",
    "relative_error",
    "relu",
    "relu_backward",
    "sigmoid",
    "softmax",
    "softmax_cross_entropy_backward",
]


def _float_array(x: object, name: str) -> np.ndarray:
    """``x`` as a float numpy array (integers and booleans become float64)."""
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().numpy()
    array = np.asarray(x)
    if array.dtype.kind in "biu":
        return array.astype(np.float64)
    if array.dtype.kind != "f":
        raise TypeError(f"{name} must hold real numbers; got dtype {array.dtype}.")
    return array


def _pair(value: int | tuple[int, int], name: str, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, as PyTorch accepts for sizes, strides and paddings."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v >= minimum for v in pair):
        raise ValueError(f"{name} must be an integer >= {minimum} or a pair of them (height, width); got {value!r}.")
    return int(pair[0]), int(pair[1])


def _as_batch(x: np.ndarray, name: str) -> tuple[np.ndarray, bool]:
    """A ``(C, H, W)`` image becomes a batch of one; ``(N, C, H, W)`` is kept."""
    if x.ndim == 3:
        return x[None], True
    if x.ndim == 4:
        return x, False
    raise ValueError(f"{name} expects images of shape (N, C, H, W) or (C, H, W), channels first; got shape {x.shape}.")


def conv2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
) -> np.ndarray:
    """A convolution layer (PyTorch's, which is a correlation): every filter over every window.

    Output channel ``o`` at position ``(i, j)`` is
    ``bias[o] + sum over c, u, v of weight[o, c, u, v] * x_padded[c, i*stride + u, j*stride + v]``:
    each filter spans *all* input channels, so ``C_out`` filters give an output
    of depth ``C_out``.

    Parameters
    ----------
    x : np.ndarray
        Images ``(N, C_in, H, W)``, or one image ``(C_in, H, W)``.
    weight : np.ndarray
        Filters ``(C_out, C_in, kH, kW)``.
    bias : np.ndarray, optional
        ``(C_out,)``, one number added to each output channel.
    stride : int or (int, int)
        Step between windows (height, width).
    padding : int or (int, int)
        Zeros added on each side (height, width) before sliding.

    Returns
    -------
    np.ndarray
        ``(N, C_out, H_out, W_out)`` (or ``(C_out, H_out, W_out)`` for one
        image) with ``H_out = (H + 2 * padding - kH) // stride + 1``, likewise
        ``W_out``.
    """
    x, single = _as_batch(_float_array(x, "conv2d input"), "conv2d")
    weight = _float_array(weight, "conv2d weight")
    if weight.ndim != 4:
        raise ValueError(f"conv2d weight must have shape (C_out, C_in, kH, kW); got shape {weight.shape}.")
    if weight.shape[1] != x.shape[1]:
        raise ValueError(
            f"conv2d weight expects {weight.shape[1]} input channels (weight shape {weight.shape}), "
            f"but the input has {x.shape[1]} (input shape {x.shape})."
        )
    (sh, sw), (ph, pw) = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    kh, kw = weight.shape[2:]
    if x.shape[2] + 2 * ph < kh or x.shape[3] + 2 * pw < kw:
        raise ValueError(
            f"conv2d kernel {kh}x{kw} is larger than the padded input "
            f"{x.shape[2] + 2 * ph}x{x.shape[3] + 2 * pw} (input {x.shape[2]}x{x.shape[3]}, "
            f"padding {(ph, pw)})."
        )
    x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    # windows[n, c, i, j, u, v] = x[n, c, i*sh + u, j*sw + v]: a view, nothing copied.
    windows = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    # Sum over input channel and kernel rows/columns: (N, H_out, W_out, C_out).
    out = np.tensordot(windows, weight, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)
    if bias is not None:
        bias = _float_array(bias, "conv2d bias")
        if bias.shape != (weight.shape[0],):
            raise ValueError(
                f"conv2d bias must have shape ({weight.shape[0]},), one per filter; got shape {bias.shape}."
            )
        out = out + bias[:, None, None]
    out = np.ascontiguousarray(out)
    return out[0] if single else out


def relu(x: np.ndarray) -> np.ndarray:
    """The rectified linear unit, ``max(0, x)`` elementwise: negatives become 0, positives stay."""
    x = _float_array(x, "relu input")
    return np.maximum(x, 0)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic sigmoid ``1 / (1 + exp(-x))`` elementwise, squashing any number into (0, 1).

    Computed as ``exp(x) / (1 + exp(x))`` for negative ``x`` so that large
    inputs of either sign never overflow.
    """
    x = _float_array(x, "sigmoid input")
    e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _pool_windows(
    x: np.ndarray, size: int | tuple[int, int], stride: int | tuple[int, int] | None, name: str
) -> tuple[np.ndarray, bool]:
    """Every pooling window at once: ``(N, C, H_out, W_out, kH, kW)`` (a view)."""
    x, single = _as_batch(_float_array(x, f"{name} input"), name)
    kh, kw = _pair(size, "size", 1)
    sh, sw = (kh, kw) if stride is None else _pair(stride, "stride", 1)
    if x.shape[2] < kh or x.shape[3] < kw:
        raise ValueError(f"{name} window {kh}x{kw} is larger than the input {x.shape[2]}x{x.shape[3]}.")
    return sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw], single


def max_pool2d(
    x: np.ndarray, size: int | tuple[int, int] = 2, stride: int | tuple[int, int] | None = None
) -> np.ndarray:
    """Max pooling: the largest value in each ``size x size`` window, each channel on its own.

    No learnable parameters. As in PyTorch, ``stride`` defaults to ``size``
    (windows side by side, not overlapping) and windows that would stick out
    past the edge are dropped.

    Parameters
    ----------
    x : np.ndarray
        ``(N, C, H, W)`` or ``(C, H, W)``.
    size : int or (int, int)
        Window height and width.
    stride : int or (int, int), optional
        Step between windows; ``size`` by default.

    Returns
    -------
    np.ndarray
        ``(N, C, H_out, W_out)`` (or without ``N``), ``H_out = (H - size) // stride + 1``:
        the depth ``C`` is unchanged; 2x2 windows with stride 2 halve height and width.
    """
    windows, single = _pool_windows(x, size, stride, "max_pool2d")
    out = windows.max(axis=(4, 5))
    return out[0] if single else out


def avg_pool2d(
    x: np.ndarray, size: int | tuple[int, int] = 2, stride: int | tuple[int, int] | None = None
) -> np.ndarray:
    """Average pooling: the mean of each ``size x size`` window, each channel on its own.

    Same shapes and defaults as :func:`max_pool2d`; no learnable parameters.
    """
    windows, single = _pool_windows(x, size, stride, "avg_pool2d")
    out = windows.mean(axis=(4, 5))
    return out[0] if single else out


def flatten(x: np.ndarray, start_dim: int = 1) -> np.ndarray:
    """Join the axes from ``start_dim`` on into one, in C order, like ``torch.flatten(x, start_dim)``.

    With the default ``start_dim=1`` a batch ``(N, C, H, W)`` becomes
    ``(N, C * H * W)``, as ``nn.Flatten()`` does: channel 0's rows first (row by
    row), then channel 1's, and so on. ``start_dim=0`` flattens everything.
    """
    x = np.asarray(x)
    if not -max(x.ndim, 1) <= start_dim < max(x.ndim, 1):
        raise ValueError(f"flatten start_dim must be an axis of the input (shape {x.shape}); got {start_dim}.")
    start_dim %= max(x.ndim, 1)
    return x.reshape(*x.shape[:start_dim], -1)


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """A fully connected layer: ``x @ weight.T + bias``, every input connected to every output.

    Parameters
    ----------
    x : np.ndarray
        ``(..., in_features)``, e.g. ``(N, in_features)``.
    weight : np.ndarray
        ``(out_features, in_features)``, as in ``torch.nn.Linear``.
    bias : np.ndarray, optional
        ``(out_features,)``.

    Returns
    -------
    np.ndarray
        ``(..., out_features)``.
    """
    x = _float_array(x, "linear input")
    weight = _float_array(weight, "linear weight")
    if weight.ndim != 2:
        raise ValueError(f"linear weight must have shape (out_features, in_features); got shape {weight.shape}.")
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear weight {weight.shape} expects inputs with {weight.shape[1]} features in the last axis; "
            f"got input shape {x.shape} (flatten images first)."
        )
    out = x @ weight.T
    if bias is not None:
        bias = _float_array(bias, "linear bias")
        if bias.shape != (weight.shape[0],):
            raise ValueError(
                f"linear bias must have shape ({weight.shape[0]},), one per output; got shape {bias.shape}."
            )
        out = out + bias
    return out


def _check_axis(z: np.ndarray, axis: int, name: str) -> None:
    if z.ndim == 0 or not -z.ndim <= axis < z.ndim:
        raise ValueError(f"{name} needs an array with an axis {axis}; got shape {z.shape}.")


def log_softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """``log(softmax(z))`` computed stably: ``z - max - log(sum(exp(z - max)))``."""
    z = _float_array(z, "log_softmax input")
    _check_axis(z, axis, "log_softmax")
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """Turn scores (logits) into probabilities: ``exp(z) / sum(exp(z))`` along ``axis``.

    The largest score is subtracted first. That changes nothing in the result
    (the same factor cancels above and below) but keeps ``exp`` from
    overflowing for large logits such as 1000.
    """
    z = _float_array(z, "softmax input")
    _check_axis(z, axis, "softmax")
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _logits_and_labels(logits: object, labels: object, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Logits ``(N, K)`` or ``(K,)`` and one integer label in ``0..K-1`` per row, checked."""
    logits = _float_array(logits, f"{name} logits")
    labels = np.asarray(labels)
    if logits.ndim not in (1, 2):
        raise ValueError(f"{name} expects logits of shape (N, K) or (K,); got shape {logits.shape}.")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{name} labels must be integers (class numbers); got dtype {labels.dtype}.")
    expected = logits.shape[:-1]
    if labels.shape != expected:
        raise ValueError(
            f"{name} expects one label per row of logits, shape {expected}; got labels of shape "
            f"{labels.shape} for logits of shape {logits.shape}."
        )
    classes = logits.shape[-1]
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"{name} labels must lie in 0..{classes - 1}; got {labels.min()}..{labels.max()}.")
    return logits, labels


def cross_entropy(logits: np.ndarray, labels: np.ndarray, reduction: str = "mean") -> np.ndarray | float:
    """Cross-entropy: minus the log of the probability that softmax gives the true label.

    Like ``F.cross_entropy`` it takes raw scores (logits), not probabilities,
    and works through :func:`log_softmax`, so it stays finite for large logits.

    Parameters
    ----------
    logits : np.ndarray
        ``(N, K)`` scores for ``K`` classes, or ``(K,)`` for one example.
    labels : np.ndarray
        ``(N,)`` integer labels in ``0 .. K-1`` (or one integer).
    reduction : {"mean", "sum", "none"}
        Average over the batch (default), add up, or return one loss per example.

    Returns
    -------
    float or np.ndarray
        The loss (a float), or ``(N,)`` losses with ``reduction="none"``.
    """
    logits, labels = _logits_and_labels(logits, labels, "cross_entropy")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none'; got {reduction!r}.")
    log_p = log_softmax(logits)
    losses = -np.take_along_axis(log_p, labels[..., None], axis=-1)[..., 0]
    if reduction == "none":
        return losses
    return float(losses.mean() if reduction == "mean" else losses.sum())


# ---------------------------------------------------------------------------------------------
# Backward passes. Each takes ``dout``, the gradient of the loss with respect to the layer's
# output (same shape as that output), and what the layer saw in its forward pass; it returns
# the gradients of the loss with respect to the layer's input and parameters (chain rule).
# ---------------------------------------------------------------------------------------------


def _check_dout(dout: object, expected: tuple[int, ...], name: str, what: str) -> np.ndarray:
    """``dout`` as a float array of the forward output's shape, or a clear error."""
    dout = _float_array(dout, f"{name} dout")
    if dout.shape != tuple(expected):
        raise ValueError(
            f"{name} dout must have the shape of the forward output, {tuple(expected)} ({what}); "
            f"got shape {dout.shape}."
        )
    return dout


def softmax_cross_entropy_backward(logits: np.ndarray, labels: np.ndarray, reduction: str = "mean") -> np.ndarray:
    """Gradient of :func:`cross_entropy` (softmax, then minus the log of the true class) for its logits.

    For one example with logits ``z`` and true class ``y`` the loss is
    ``-z[y] + log(sum_j exp(z[j]))``, so its derivative with respect to
    ``z[k]`` is ``softmax(z)[k] - (1 if k == y else 0)``: the predicted
    probabilities, minus 1 at the true class. With ``reduction="mean"`` the
    loss is averaged over the ``N`` examples, so each row is divided by ``N``.

    Parameters
    ----------
    logits : np.ndarray
        ``(N, K)`` scores, or ``(K,)`` for one example (what the forward pass got).
    labels : np.ndarray
        ``(N,)`` integer labels in ``0 .. K-1`` (or one integer).
    reduction : {"mean", "sum"}
        How the forward pass combined the examples' losses.

    Returns
    -------
    np.ndarray
        ``dlogits``, the same shape as ``logits``.
    """
    logits, labels = _logits_and_labels(logits, labels, "softmax_cross_entropy_backward")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum' (one loss to differentiate); got {reduction!r}.")
    dlogits = softmax(logits)
    np.put_along_axis(dlogits, labels[..., None], np.take_along_axis(dlogits, labels[..., None], -1) - 1, -1)
    if reduction == "mean" and logits.ndim == 2:
        dlogits /= max(len(logits), 1)
    return dlogits


def linear_backward(dout: np.ndarray, x: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`linear` (``out = x @ weight.T + bias``).

    Each output ``out[n, o] = sum_i x[n, i] * weight[o, i] + bias[o]``, so

    * ``dx = dout @ weight``: every input feeds every output, through its weight;
    * ``dweight = dout.T @ x``: summed over the batch, since each example uses the same weights;
    * ``dbias = dout`` summed over the batch.

    Parameters
    ----------
    dout : np.ndarray
        ``(..., out_features)``: the loss gradient at the layer's output.
    x : np.ndarray
        ``(..., in_features)``: the layer's input in the forward pass.
    weight : np.ndarray
        ``(out_features, in_features)``.

    Returns
    -------
    dx, dweight, dbias : np.ndarray
        Shapes of ``x``, ``weight`` and ``(out_features,)``.
    """
    x = _float_array(x, "linear_backward input")
    weight = _float_array(weight, "linear_backward weight")
    if weight.ndim != 2:
        raise ValueError(
            f"linear_backward weight must have shape (out_features, in_features); got shape {weight.shape}."
        )
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear_backward weight {weight.shape} expects inputs with {weight.shape[1]} features in the "
            f"last axis; got input shape {x.shape}."
        )
    dout = _check_dout(dout, (*x.shape[:-1], weight.shape[0]), "linear_backward", "x.shape[:-1] + (out_features,)")
    dx = dout @ weight
    flat_dout, flat_x = dout.reshape(-1, weight.shape[0]), x.reshape(-1, weight.shape[1])
    return dx, flat_dout.T @ flat_x, flat_dout.sum(axis=0)


def relu_backward(dout: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Backward pass of :func:`relu`: the gradient passes where the input was positive, 0 elsewhere.

    ReLU's slope is 1 for ``x > 0`` and 0 for ``x < 0`` (at exactly 0 we take
    0, as PyTorch does), so ``dx = dout * (x > 0)``.

    Parameters
    ----------
    dout : np.ndarray
        The loss gradient at ReLU's output, shaped like ``x``.
    x : np.ndarray
        ReLU's input in the forward pass.

    Returns
    -------
    np.ndarray
        ``dx``, shaped like ``x``.
    """
    x = _float_array(x, "relu_backward input")
    dout = _check_dout(dout, x.shape, "relu_backward", "the shape of x")
    return dout * (x > 0)


def max_pool2d_backward(
    dout: np.ndarray,
    x: np.ndarray,
    size: int | tuple[int, int] = 2,
    stride: int | tuple[int, int] | None = None,
) -> np.ndarray:
    """Backward pass of :func:`max_pool2d`: each window's gradient goes to the input that was its maximum.

    Only the largest value of a window reached the output, so only it
    receives that output's gradient; the others get 0. When windows overlap
    (``stride`` smaller than ``size``) one input can be the maximum of several
    windows and then receives the sum of their gradients. Ties go to the first
    maximum in reading order, as in PyTorch.

    Parameters
    ----------
    dout : np.ndarray
        The loss gradient at the pooled output ``(N, C, H_out, W_out)`` (or ``(C, H_out, W_out)``).
    x : np.ndarray
        The pooling layer's input in the forward pass, ``(N, C, H, W)`` (or ``(C, H, W)``).
    size, stride
        As given to :func:`max_pool2d`.

    Returns
    -------
    np.ndarray
        ``dx``, shaped like ``x``.
    """
    x, single = _as_batch(_float_array(x, "max_pool2d_backward input"), "max_pool2d_backward")
    windows, _ = _pool_windows(x, size, stride, "max_pool2d_backward")
    n, c, h_out, w_out, kh, kw = windows.shape
    height, width = x.shape[2:]
    expected = (c, h_out, w_out) if single else (n, c, h_out, w_out)
    dout = _check_dout(dout, expected, "max_pool2d_backward", "what max_pool2d(x, size, stride) gives")
    dout = dout[None] if single else dout
    sh, sw = (kh, kw) if stride is None else _pair(stride, "stride", 1)
    # Where each window's maximum sits: first its place inside the window, then in the input.
    which = windows.reshape(n, c, h_out, w_out, kh * kw).argmax(axis=-1)
    rows = np.arange(h_out)[:, None] * sh + which // kw
    cols = np.arange(w_out)[None, :] * sw + which % kw
    planes = np.arange(n * c).reshape(n, c, 1, 1)  # which (image, channel) plane
    flat_index = (planes * height + rows) * width + cols
    # bincount adds up the gradients that land on the same input (overlapping windows).
    dx = np.bincount(flat_index.ravel(), weights=dout.ravel(), minlength=x.size).reshape(x.shape)
    dx = dx.astype(np.result_type(dout, x), copy=False)
    return dx[0] if single else dx


def conv2d_backward(
    dout: np.ndarray,
    x: np.ndarray,
    weight: np.ndarray,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`conv2d`: the gradients of its input, its filters and its biases.

    Each output number was ``out[n, o, i, j] = bias[o] + sum(weight[o] * window)``
    where ``window`` is the patch of the (padded) input under filter ``o`` at
    position ``(i, j)``. So its gradient ``dout[n, o, i, j]`` flows

    * to the filter: ``dweight[o] += dout[n, o, i, j] * window`` (summed over images and positions);
    * to the bias: ``dbias[o] += dout[n, o, i, j]``;
    * back to the input: ``dwindow += dout[n, o, i, j] * weight[o]``, added up where windows overlap,
      then the padding is cut off again.

    Vectorised: one ``tensordot`` over all windows gives ``dweight``; ``dx`` is
    built with one loop over the ``kH * kW`` positions inside the kernel (not
    over pixels or images).

    Parameters
    ----------
    dout : np.ndarray
        The loss gradient at the conv output, ``(N, C_out, H_out, W_out)`` (or without ``N``).
    x : np.ndarray
        The conv layer's input in the forward pass, ``(N, C_in, H, W)`` (or ``(C_in, H, W)``).
    weight : np.ndarray
        Its filters, ``(C_out, C_in, kH, kW)``.
    stride, padding
        As given to :func:`conv2d`.

    Returns
    -------
    dx, dweight, dbias : np.ndarray
        Shapes of ``x``, ``weight`` and ``(C_out,)``.
    """
    x, single = _as_batch(_float_array(x, "conv2d_backward input"), "conv2d_backward")
    weight = _float_array(weight, "conv2d_backward weight")
    if weight.ndim != 4:
        raise ValueError(f"conv2d_backward weight must have shape (C_out, C_in, kH, kW); got shape {weight.shape}.")
    if weight.shape[1] != x.shape[1]:
        raise ValueError(
            f"conv2d_backward weight expects {weight.shape[1]} input channels (weight shape {weight.shape}), "
            f"but the input has {x.shape[1]} (input shape {x.shape})."
        )
    (sh, sw), (ph, pw) = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    n, _, height, width = x.shape
    c_out, _, kh, kw = weight.shape
    if height + 2 * ph < kh or width + 2 * pw < kw:
        raise ValueError(
            f"conv2d_backward kernel {kh}x{kw} is larger than the padded input "
            f"{height + 2 * ph}x{width + 2 * pw} (input {height}x{width}, padding {(ph, pw)})."
        )
    h_out, w_out = (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1
    expected = (c_out, h_out, w_out) if single else (n, c_out, h_out, w_out)
    dout = _check_dout(dout, expected, "conv2d_backward", "what conv2d(x, weight, stride, padding) gives")
    dout = dout[None] if single else dout
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    windows = sliding_window_view(padded, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]  # (N, C_in, H_out, W_out, kH, kW)
    dweight = np.tensordot(dout, windows, axes=([0, 2, 3], [0, 2, 3]))  # (C_out, C_in, kH, kW)
    dbias = dout.sum(axis=(0, 2, 3))
    # dwindows[n, i, j, c, u, v] = sum over o of dout[n, o, i, j] * weight[o, c, u, v]
    dwindows = np.tensordot(dout, weight, axes=([1], [0]))
    dpadded = np.zeros(padded.shape, dtype=dwindows.dtype)
    for u in range(kh):  # each position inside the kernel: all windows at once
        for v in range(kw):
            dpadded[:, :, u : u + sh * h_out : sh, v : v + sw * w_out : sw] += dwindows[..., u, v].transpose(0, 3, 1, 2)
    dx = dpadded[:, :, ph : ph + height, pw : pw + width]
    dx = np.ascontiguousarray(dx)
    return (dx[0] if single else dx), dweight, dbias


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """The largest elementwise relative error ``|a - b| / max(1e-8, |a| + |b|)`` (as in CS231n).

    Used to compare our numpy layers with PyTorch's: around 1e-15 means equal
    up to float64 rounding; 1e-6 and below counts as equal.
    """
    a, b = (_float_array(v, name).astype(np.float64) for v, name in ((a, "a"), (b, "b")))
    if a.shape != b.shape:
        raise ValueError(f"relative_error compares arrays of the same shape; got {a.shape} and {b.shape}.")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))
