"""Pictures used across lessons: digits, signed filters and responses, confusion matrices, sliders.

Introduced in lesson 01. Signed arrays (filters, responses, weights) are drawn
with a diverging colour map centred on zero, so that white always means 0,
red positive and blue negative.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

LESSON = 1

__all__ = [
    "SIGNED_CMAP",
    "confusion_matrix",
    "plot_confusion_matrix",
    "show_images",
    "show_signed",
    "slider_explorer",
]

#: The diverging colour map for signed values (blue negative, white zero, red positive).
SIGNED_CMAP = "RdBu_r"


def _as_numpy(x: Any) -> np.ndarray:
    """Tensors (on any device) and lists become numpy arrays."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _grid(count: int, ncols: int | None, size: float) -> tuple[Figure, np.ndarray]:
    ncols = min(count, ncols or 10)
    nrows = -(-count // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.3), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    return fig, axes


def show_images(
    images: Any,
    titles: Sequence[Any] | None = None,
    *,
    ncols: int | None = None,
    size: float = 1.2,
    cmap: str = "gray_r",
) -> Figure:
    """Show a row (or grid) of greyscale images, e.g. digits, with optional titles.

    Parameters
    ----------
    images : array or tensor
        ``(N, H, W)`` (or ``(H, W)`` for one image, or ``(N, 1, H, W)``).
    titles : sequence, optional
        One title per image (labels, predictions, ...).
    ncols : int, optional
        Images per row (default: up to 10).
    size : float
        Inches per image.
    cmap : str
        Colour map; the default draws ink dark on white paper.
    """
    images = _as_numpy(images)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3:
        raise ValueError(f"show_images expects (N, H, W) images; got shape {images.shape}.")
    fig, axes = _grid(len(images), ncols, size)
    for i, (ax, image) in enumerate(zip(axes.flat, images, strict=False)):
        ax.imshow(image, cmap=cmap)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=9)
    fig.tight_layout()
    return fig


def show_signed(
    arrays: Any,
    titles: Sequence[Any] | None = None,
    *,
    ncols: int | None = None,
    size: float = 1.4,
    limit: float | None = None,
    values: bool = False,
    colorbar: bool = True,
) -> Figure:
    """Show signed 2-D arrays (filters, responses) on one symmetric colour scale centred on zero.

    Parameters
    ----------
    arrays : array or tensor
        ``(N, H, W)`` or ``(H, W)``.
    titles : sequence, optional
        One title per array.
    ncols : int, optional
        Arrays per row (default: up to 8).
    size : float
        Inches per array.
    limit : float, optional
        The colour scale runs from ``-limit`` to ``+limit``; by default the
        largest absolute value, so zero is always white.
    values : bool
        Write each number in its cell (for small arrays such as 3x3 filters).
    colorbar : bool
        Add one colour bar for the whole figure.
    """
    arrays = _as_numpy(arrays).astype(float)
    if arrays.ndim == 2:
        arrays = arrays[None]
    if arrays.ndim != 3:
        raise ValueError(f"show_signed expects (N, H, W) or (H, W) arrays; got shape {arrays.shape}.")
    limit = float(np.abs(arrays).max()) if limit is None else float(limit)
    limit = limit or 1.0
    fig, axes = _grid(len(arrays), ncols, size)
    for i, (ax, array) in enumerate(zip(axes.flat, arrays, strict=False)):
        image = ax.imshow(array, cmap=SIGNED_CMAP, vmin=-limit, vmax=limit)
        if values:
            for (row, col), value in np.ndenumerate(array):
                ax.text(col, row, f"{value:g}", ha="center", va="center", fontsize=8)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=9)
    fig.tight_layout()
    if colorbar:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, pad=0.02)
    return fig


def confusion_matrix(true_labels: Any, predicted_labels: Any, labels: Sequence[int] | None = None) -> np.ndarray:
    """Count how often each true label (row) was predicted as each label (column).

    Parameters
    ----------
    true_labels, predicted_labels : array-like
        Same length.
    labels : sequence of int, optional
        The labels, in row/column order (any order, e.g. ``[8, 1]``); by
        default every label that appears, sorted.

    Returns
    -------
    np.ndarray
        int64, shape ``(len(labels), len(labels))``; ``[i, j]`` counts images
        of ``labels[i]`` predicted as ``labels[j]``.
    """
    true_labels, predicted_labels = _as_numpy(true_labels).ravel(), _as_numpy(predicted_labels).ravel()
    if true_labels.shape != predicted_labels.shape:
        raise ValueError(
            f"true and predicted labels must have the same length; got {true_labels.shape[0]} "
            f"and {predicted_labels.shape[0]}."
        )
    if labels is None:
        labels = np.unique(np.concatenate([true_labels, predicted_labels]))
    labels = np.asarray(labels)
    if len(np.unique(labels)) != len(labels):
        raise ValueError(f"labels must be distinct; got {labels.tolist()}.")
    order = np.argsort(labels)
    sorted_labels = labels[order]
    indices = []
    for values in (true_labels, predicted_labels):
        position = np.minimum(np.searchsorted(sorted_labels, values), len(labels) - 1)
        unknown = sorted_labels[position] != values
        if unknown.any():
            raise ValueError(f"label {values[unknown][0]} is not in labels={labels.tolist()}.")
        indices.append(order[position])
    counts = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(counts, tuple(indices), 1)
    return counts


def plot_confusion_matrix(
    counts: np.ndarray, labels: Sequence[Any], *, ax: Axes | None = None, title: str = ""
) -> Axes:
    """Draw a confusion matrix with its counts written in the cells.

    Rows are the true labels, columns the predicted ones; darker means more.
    """
    counts = _as_numpy(counts)
    if ax is None:
        size = 1.2 + 0.45 * len(labels)
        _, ax = plt.subplots(figsize=(size, size))
    ax.imshow(counts, cmap="Blues")
    ax.set_xticks(range(len(labels)), [str(label) for label in labels])
    ax.set_yticks(range(len(labels)), [str(label) for label in labels])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = counts.max() / 2
    for (row, col), value in np.ndenumerate(counts):
        colour = "white" if value > threshold else "black"
        ax.text(col, row, f"{value:,}", ha="center", va="center", color=colour, fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def slider_explorer(
    draw: Callable[..., None],
    static: Sequence[dict[str, Any]],
    *,
    figsize: tuple[float, float] = (3.0, 3.0),
    **controls: Any,
) -> Any:
    """A static row of pictures, plus sliders to explore the same picture live.

    The static figure always appears (it is what exported HTML, GitHub and CI
    show); the ipywidgets sliders come after it when ipywidgets is installed.

    Parameters
    ----------
    draw : callable
        ``draw(ax, **values)`` draws one picture on a matplotlib ``Axes``.
    static : sequence of dict
        The values for each picture of the static row, e.g.
        ``[{"size": 4}, {"size": 8}]``.
    figsize : (float, float)
        Inches per picture.
    **controls
        ipywidgets ``interact`` abbreviations, e.g. ``size=(2, 28, 1)``.

    Returns
    -------
    The ipywidgets ``interactive`` object, or None without ipywidgets.
    """
    fig, axes = plt.subplots(1, len(static), figsize=(figsize[0] * len(static), figsize[1]), squeeze=False)
    for ax, values in zip(axes.flat, static, strict=True):
        draw(ax, **values)
    fig.tight_layout()
    plt.show()
    try:
        import ipywidgets
    except ImportError:
        return None

    def redraw(**values: Any) -> None:
        _, ax = plt.subplots(figsize=figsize)
        draw(ax, **values)
        plt.show()

    return ipywidgets.interactive(redraw, **controls)
