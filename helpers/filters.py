"""Hand-made filters, correlation, max pooling and the nearest-fingerprint classifier.

Introduced in lesson 01 (``01_hand_made_filters.ipynb``); lesson 03 learns the
filters instead, and lesson 06 compares a CNN's first layer with them.

Lesson 01 first slides a filter with a plain loop over positions, then with
numpy, and only then calls these helpers. Here everything is vectorised: images
are processed in chunks with PyTorch's ``conv2d`` (which computes a
correlation), never one image or pixel at a time.

Everything runs on the CPU, whatever device the lesson uses: the functions take
numpy arrays (or PyTorch tensors on any device, copied to the CPU), return
numpy arrays, and the tensors they make come from ``torch.from_numpy``, so they
are CPU tensors even when PyTorch's default device is a GPU.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from helpers.core import one_cpu_thread

LESSON = 1

__all__ = [
    "DIAGONAL",
    "TOP_EDGE",
    "FingerprintClassifier",
    "convolve",
    "correlate",
    "edge_filters",
    "filter_names",
    "fingerprints",
    "max_pool",
]

#: The hand-made 3x3 top-edge filter: dark above, bright in the middle row.
TOP_EDGE = np.array([[-1, -1, -1], [1, 1, 1], [0, 0, 0]], dtype=np.float32)

#: The lesson's diagonal filter (a top-left edge along the anti-diagonal).
DIAGONAL = np.array([[0, 0, 1], [0, 1, -1.5], [1, -1.5, 0]], dtype=np.float32)

# How many images go through conv2d at once: enough to keep the per-call overhead
# small, few enough that the (chunk, 8, 28, 28) float32 responses (3 MB) are
# still in the processor's cache when max pooling reads them back. Measured on
# a 2-core CPU: 128 images per chunk made `fingerprints` about 2x faster than 1024.
_CHUNK = 128


def edge_filters() -> np.ndarray:
    """The lesson's eight filters: four edges and four diagonals.

    Returns
    -------
    np.ndarray
        float32, shape (8, 3, 3): ``np.rot90(TOP_EDGE, k)`` for k = 0..3, then
        ``np.rot90(DIAGONAL, k)`` for k = 0..3 (each turn is 90 degrees
        anticlockwise).
    """
    edges = [np.rot90(TOP_EDGE, k) for k in range(4)]
    diagonals = [np.rot90(DIAGONAL, k) for k in range(4)]
    return np.stack(edges + diagonals).astype(np.float32)


def filter_names() -> list[str]:
    """Names for the eight filters of :func:`edge_filters`, in the same order."""
    return ["top", "left", "bottom", "right", "diag 1", "diag 2", "diag 3", "diag 4"]


def correlate(images: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """Slide each filter over each image (correlation), keeping the image size.

    At every position the output is the sum of the filter times the pixels
    under it; pixels beyond the border count as zero. This equals
    ``scipy.ndimage.correlate(image, filter, mode="constant")``.

    Parameters
    ----------
    images : np.ndarray
        One image ``(H, W)`` or a stack ``(N, H, W)``. uint8 images are scaled
        to [0, 1]; float images are used as they are. A PyTorch tensor (on any
        device) is copied to the CPU first.
    filters : np.ndarray
        One filter ``(k, k)`` or a stack ``(K, k, k)``, k odd.

    Returns
    -------
    np.ndarray
        Responses of shape ``(N, K, H, W)``, with the image axis dropped for a
        single image and the filter axis dropped for a single filter. float64
        when images or filters are float64, float32 otherwise.
    """
    stack, single_image = _as_image_stack(images)
    kernels, single_filter = _as_filter_stack(filters)
    dtype = np.float64 if np.float64 in (stack.dtype, kernels.dtype) else np.float32
    out = np.empty((len(stack), len(kernels), *stack.shape[1:]), dtype=dtype)
    with one_cpu_thread():  # small convolutions: fastest on one thread
        for start, responses in _response_chunks(stack, kernels):
            out[start : start + len(responses)] = responses.numpy()
    if single_filter:
        out = out[:, 0]
    return out[0] if single_image else out


def _response_chunks(stack: np.ndarray, kernels: np.ndarray) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(start, responses)`` for chunks of a checked image stack, computed with conv2d.

    The work is float64 when the images or the filters are, float32 otherwise.
    """
    dtype = torch.float64 if np.float64 in (stack.dtype, kernels.dtype) else torch.float32
    weight = torch.from_numpy(np.array(kernels, dtype=_numpy_dtype(dtype)))[:, None]
    pad = weight.shape[-1] // 2
    with torch.no_grad():
        for start in range(0, len(stack), _CHUNK):
            chunk = _to_float_tensor(stack[start : start + _CHUNK], dtype)[:, None]
            yield start, F.conv2d(chunk, weight, padding=pad)


def convolve(images: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """Convolution: correlation with each filter turned 180 degrees.

    Same inputs, outputs and border handling as :func:`correlate`; equals
    ``scipy.ndimage.convolve(image, filter, mode="constant")``.
    """
    _as_filter_stack(filters)  # the same checks and messages as correlate
    return correlate(images, np.rot90(_as_array(filters), 2, axes=(-2, -1)))


def max_pool(x: np.ndarray, size: int) -> np.ndarray:
    """Non-overlapping ``size x size`` maxima over the last two axes.

    Parameters
    ----------
    x : np.ndarray
        Any array with at least two axes, e.g. ``(N, K, 28, 28)`` responses.
    size : int
        Window size; it must divide both of the last two axes.

    Returns
    -------
    np.ndarray
        Shape ``(..., H // size, W // size)``, same dtype as ``x``.
    """
    x = _as_array(x)
    if x.ndim < 2:
        raise ValueError(f"max_pool expects an array with at least 2 axes (..., H, W); got shape {x.shape}.")
    if not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"max_pool size must be a positive integer; got {size!r}.")
    height, width = x.shape[-2:]
    if height % size or width % size:
        raise ValueError(
            f"max_pool size {size} must divide the last two axes evenly; got {height}x{width} "
            f"(try a size that divides {height}, such as {_divisors(height)})."
        )
    blocks = x.reshape(*x.shape[:-2], height // size, size, width // size, size)
    return blocks.max(axis=(-3, -1))


def fingerprints(images: np.ndarray, filters: np.ndarray | None = None, pool: int = 7) -> np.ndarray:
    """Correlate with each filter, then max-pool: one small "fingerprint" per image.

    Parameters
    ----------
    images : np.ndarray
        ``(N, H, W)`` or ``(H, W)``; uint8 images are scaled to [0, 1].
    filters : np.ndarray, optional
        ``(K, k, k)`` filters; the eight :func:`edge_filters` by default.
    pool : int
        Max-pool window; must divide H and W.

    Returns
    -------
    np.ndarray
        ``(N, K, H // pool, W // pool)`` (e.g. ``(N, 8, 4, 4)`` for MNIST), or
        without the first axis for a single image.
    """
    filters = edge_filters() if filters is None else filters
    stack, single_image = _as_image_stack(images)
    kernels, _ = _as_filter_stack(filters)
    height, width = stack.shape[1:]
    if height % pool or width % pool:
        raise ValueError(f"pool size {pool} must divide the image size evenly; got {height}x{width} images.")
    out = np.empty((len(stack), len(kernels), height // pool, width // pool), dtype=np.float32)
    with one_cpu_thread():  # small convolutions: fastest on one thread
        for start, responses in _response_chunks(stack, kernels):
            # Pooling in torch on the chunk: the same maxima as max_pool, without a numpy round
            # trip. Channels last (each pixel's K responses side by side) lets the pooling kernel
            # take the K maxima at once: about 1.2x faster here, and exactly the same numbers.
            responses = responses.contiguous(memory_format=torch.channels_last)
            out[start : start + len(responses)] = F.max_pool2d(responses, pool).numpy()
    return out[0] if single_image else out


class FingerprintClassifier:
    """Nearest mean fingerprint: lesson 01's hand-made classifier.

    ``fit`` averages the fingerprints of each label; ``predict`` gives every
    image the label whose mean fingerprint is closest (smallest sum of squared
    errors).

    Parameters
    ----------
    filters : np.ndarray, optional
        ``(K, k, k)`` filters; the eight :func:`edge_filters` by default.
    pool : int
        Max-pool window (7 turns 28x28 into 4x4).

    Attributes
    ----------
    labels_ : np.ndarray
        The labels seen in ``fit``, sorted (set by ``fit``).
    means_ : np.ndarray
        ``(len(labels_), K, H // pool, W // pool)`` mean fingerprints.
    """

    def __init__(self, filters: np.ndarray | None = None, pool: int = 7) -> None:
        self.filters = edge_filters() if filters is None else _as_filter_stack(filters)[0]
        self.pool = pool
        self.labels_: np.ndarray | None = None
        self.means_: np.ndarray | None = None

    def fingerprints(self, images: np.ndarray) -> np.ndarray:
        """The ``(N, K, h, w)`` fingerprints of a stack of images."""
        return fingerprints(_as_image_stack(images, single_ok=False)[0], self.filters, self.pool)

    def fit(self, images: np.ndarray, labels: np.ndarray) -> FingerprintClassifier:
        """Store the mean fingerprint of each label; returns ``self``."""
        stack = _as_image_stack(images, single_ok=False)[0]
        labels = _as_array(labels)
        if len(stack) == 0:
            raise ValueError("fit needs at least one image; got 0 images.")
        if labels.shape != (len(stack),):
            raise ValueError(
                f"fit needs one label per image: expected labels of shape ({len(stack)},), got {labels.shape}."
            )
        prints = self.fingerprints(stack)
        self.labels_, index = np.unique(labels, return_inverse=True)
        # members[j, i]: image i has the j-th label. One matrix product sums each label's
        # fingerprints (in float64), far faster than np.add.at over the images.
        members = index == np.arange(len(self.labels_))[:, None]
        sums = members.astype(np.float64) @ prints.reshape(len(prints), -1).astype(np.float64)
        means = sums / members.sum(axis=1, keepdims=True)
        self.means_ = means.reshape(len(self.labels_), *prints.shape[1:]).astype(np.float32)
        return self

    def distances(self, images: np.ndarray) -> np.ndarray:
        """Sum of squared errors from each image's fingerprint to each mean: ``(N, labels)``."""
        if self.means_ is None:
            raise RuntimeError("This FingerprintClassifier is not fitted yet: call fit(images, labels) first.")
        prints = self.fingerprints(images).reshape(-1, 1, self.means_[0].size)
        means = self.means_.reshape(1, len(self.means_), -1)
        return ((prints - means) ** 2).sum(axis=-1)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """The label whose mean fingerprint is closest to each image's: ``(N,)``."""
        return self.labels_[self.distances(images).argmin(axis=1)]

    def score(self, images: np.ndarray, labels: np.ndarray) -> float:
        """Fraction of images whose predicted label equals the given one."""
        return float((self.predict(images) == _as_array(labels)).mean())


def _as_array(x: object) -> np.ndarray:
    """numpy arrays and lists as they are; a PyTorch tensor (any device) copied to the CPU."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _as_image_stack(images: np.ndarray, single_ok: bool = True) -> tuple[np.ndarray, bool]:
    """Check images and return them as ``(N, H, W)`` plus whether one image was given."""
    images = _as_array(images)
    if images.dtype.kind not in "uif" or images.dtype == np.bool_:
        raise TypeError(f"images must be numbers (uint8 0-255 or floats); got dtype {images.dtype}.")
    if images.ndim == 2 and single_ok:
        return images[None], True
    if images.ndim != 3:
        expected = "(H, W) or (N, H, W)" if single_ok else "(N, H, W)"
        raise ValueError(f"images must have shape {expected}; got shape {images.shape}.")
    return images, False


def _as_filter_stack(filters: np.ndarray) -> tuple[np.ndarray, bool]:
    """Check filters and return them as ``(K, k, k)`` plus whether one filter was given."""
    filters = _as_array(filters)
    if filters.dtype.kind not in "uif":
        raise TypeError(f"filters must be numbers; got dtype {filters.dtype}.")
    single = filters.ndim == 2
    stack = filters[None] if single else filters
    if stack.ndim != 3:
        raise ValueError(f"filters must have shape (k, k) or (K, k, k); got shape {filters.shape}.")
    rows, cols = stack.shape[1:]
    if rows != cols or rows % 2 == 0:
        raise ValueError(
            f"filters must be square with an odd size (3x3, 5x5, ...), so that each has a centre; got {rows}x{cols}."
        )
    if stack.dtype != np.float64:
        stack = stack.astype(np.float32)
    return stack, single


def _to_float_tensor(images: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """uint8 images scaled to [0, 1]; other numbers converted as they are."""
    tensor = torch.from_numpy(np.array(images, dtype=_numpy_dtype(dtype)))
    return tensor / 255 if images.dtype == np.uint8 else tensor


def _numpy_dtype(dtype: torch.dtype) -> type:
    return np.float64 if dtype == torch.float64 else np.float32


def _divisors(n: int) -> str:
    return ", ".join(str(d) for d in range(2, n) if n % d == 0) or "1"
