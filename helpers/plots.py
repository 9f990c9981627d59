"""Pictures used across lessons: digits, signed filters and responses, confusion matrices, sliders.

Introduced in lesson 01. Signed arrays (filters, responses, weights) are drawn
with a diverging colour map centred on zero, so that white always means 0,
red positive and blue negative. Digits are drawn as in every lesson: dark ink
on white paper (pixel 255 dark, 0 white).

Lesson 06 adds its figures here, beside the others: ``show_patches`` (top
patches, with the part of a receptive field that lies outside the image in a
colour of its own) and ``show_feature_maps``; and ``slider_explorer`` can let
one slider's range follow another control (``limits``: the channel slider
follows the chosen layer). Its widgets use only what ipywidgets 7.7 (Colab)
and 8 share: ``interactive`` (which makes ``Dropdown`` and ``IntSlider``
controls and an ``Output``), the widgets' ``value``, ``max`` and
``description``, ``children``, and ``observe``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

LESSON = 1

__all__ = [
    "SIGNED_CMAP",
    "confusion_matrix",
    "INK_CMAP",
    "OUTSIDE_COLOUR",
    "plot_confusion_matrix",
    "show_feature_maps",
    "show_images",
    "show_patches",
    "show_signed",
    "slider_explorer",
]

#: The diverging colour map for signed values (blue negative, white zero, red positive).
SIGNED_CMAP = "RdBu_r"

#: Digits: dark ink on white paper (pixel 255 dark, 0 white), in every lesson.
INK_CMAP = "gray_r"

#: Where a crop runs over the image's border (no pixels there): a colour no digit pixel has.
OUTSIDE_COLOUR = "#9ecae1"


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
    cmap: str = INK_CMAP,
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


def show_patches(
    patches: Sequence[np.ndarray],
    row_titles: Sequence[str] | None = None,
    *,
    size: float = 0.6,
    cmap: str = INK_CMAP,
) -> Figure:
    """A grid of top patches (lesson 06): one row per channel, strongest patch on the left.

    Ink is dark on white paper, as in every lesson. Cells of a crop that lie
    outside the image (masked, as ``helpers.activations.top_patches`` returns
    them) are drawn in ``OUTSIDE_COLOUR``, with a legend, so they are not
    mistaken for paper.

    Parameters
    ----------
    patches : sequence of arrays
        One ``(k, s, s)`` stack of crops per row (e.g. ``top_patches``'
        crops, or its ``(C, k, s, s)`` result for C rows); all rows the same
        ``k``. uint8 crops are drawn on the 0-255 scale, float ones on 0-1.
    row_titles : sequence of str, optional
        Written at the left of each row.
    size : float
        Inches per crop.
    """
    patches = [p if isinstance(p, np.ma.MaskedArray) else np.asarray(p) for p in patches]
    if not patches or any(p.ndim != 3 for p in patches):
        raise ValueError(f"show_patches expects a list of (k, s, s) crops; got shapes {[p.shape for p in patches]}.")
    k = patches[0].shape[0]
    colours = plt.get_cmap(cmap).with_extremes(bad=OUTSIDE_COLOUR)
    outside = any(np.ma.is_masked(p) for p in patches)
    legend = 0.25 if outside else 0.0
    fig, axes = plt.subplots(
        len(patches), k, figsize=(size * k + 1.0, size * len(patches) + 0.2 + legend), squeeze=False
    )
    for r, crops in enumerate(patches):
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(crops):
                ax.imshow(crops[c], cmap=colours, vmin=0, vmax=255 if crops.dtype == np.uint8 else 1)
            else:
                ax.set_axis_off()
        if row_titles is not None:
            axes[r, 0].set_ylabel(str(row_titles[r]), rotation=0, ha="right", va="center", fontsize=8)
    bottom = 0.01
    if outside:
        height = fig.get_size_inches()[1]
        bottom = legend / height
        handle = Patch(facecolor=OUTSIDE_COLOUR, edgecolor="black", linewidth=0.5)
        fig.legend(
            [handle],
            ["outside the image (the layers pad with zeros there)"],
            loc="lower center",
            fontsize=8,
            frameon=False,
            handlelength=1.2,
            borderaxespad=0.1,
        )
    fig.subplots_adjust(wspace=0.05, hspace=0.05, left=0.16, right=0.99, top=0.99, bottom=bottom)
    return fig


def show_feature_maps(maps: dict[str, Any], channels: int = 8, *, size: float = 0.9) -> Figure:
    """The first ``channels`` feature maps of each layer (lesson 06): one row per layer, signed colours.

    Each row has its own symmetric colour scale (white is zero, red positive,
    blue negative), since deeper layers have larger values.

    Parameters
    ----------
    maps : dict
        ``{layer name: (C, H, W)}`` arrays or tensors (any device), as
        ``helpers.activations.feature_maps`` gives.
    channels : int
        How many channels of each layer to show.
    size : float
        Inches per map.
    """
    if not maps:
        raise ValueError("show_feature_maps expects a non-empty {layer: (C, H, W)} dict, as feature_maps gives.")
    fig, axes = plt.subplots(
        len(maps), channels, figsize=(size * channels + 0.8, size * len(maps) + 0.3), squeeze=False
    )
    for r, (row, (name, fmap)) in enumerate(zip(axes, maps.items(), strict=True)):
        values = _as_numpy(fmap)
        limit = float(np.abs(values[:channels]).max()) or 1.0
        for c, ax in enumerate(row):
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(values):
                ax.imshow(values[c], cmap=SIGNED_CMAP, vmin=-limit, vmax=limit)
                if r == 0:  # channel numbers over the first row
                    ax.set_title(f"ch {c}", fontsize=8)
            else:
                ax.set_axis_off()
        row[0].set_ylabel(
            f"{name}\n{values.shape[-2]}x{values.shape[-1]}", rotation=0, ha="right", va="center", fontsize=8
        )
    fig.subplots_adjust(wspace=0.05, hspace=0.1, left=0.13, right=0.99, top=0.92, bottom=0.01)
    return fig


def slider_explorer(
    draw: Callable[..., None],
    static: Sequence[dict[str, Any]],
    *,
    figsize: tuple[float, float] = (3.0, 3.0),
    limits: dict[str, tuple[str, Mapping[Any, int]]] | None = None,
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
    limits : dict, optional
        Sliders whose largest value follows another control, e.g.
        ``{"channel": ("layer", {"conv1": 15, "conv2": 31, "conv3": 63})}``:
        while ``layer`` is ``"conv1"`` the ``channel`` slider runs to 15, and
        a channel beyond the new end moves down to it. ``draw`` never sees a
        value past the limit.
    **controls
        ipywidgets ``interact`` abbreviations, e.g. ``size=(2, 28, 1)`` (a
        slider) or ``layer=["conv1", "conv2"]`` (a drop-down).

    Returns
    -------
    The ipywidgets ``interactive`` object (its ``children`` are the controls,
    each with the ``description`` of its name, then the output), or None
    without ipywidgets. Its controls start at the first static picture's
    values (those it leaves out at ``draw``'s defaults).
    """
    limits = dict(limits or {})
    for name, (other, maxima) in limits.items():
        if name not in controls or other not in controls:
            raise ValueError(
                f"limits names controls that do not exist: {name!r} follows {other!r}; "
                f"the controls are {sorted(controls)}."
            )
        missing = [choice for choice in _choices(controls[other]) or [] if choice not in maxima]
        if missing:
            raise ValueError(f"limits[{name!r}] gives no maximum for {other}={missing[0]!r}.")

    def within_limits(values: dict[str, Any]) -> dict[str, Any]:
        for name, (other, maxima) in limits.items():
            if name in values and other in values:
                values[name] = min(values[name], maxima[values[other]])
        return values

    fig, axes = plt.subplots(1, len(static), figsize=(figsize[0] * len(static), figsize[1]), squeeze=False)
    for ax, values in zip(axes.flat, static, strict=True):
        draw(ax, **within_limits(dict(values)))
    fig.tight_layout()
    plt.show()
    try:
        import ipywidgets
    except ImportError:
        return None

    def redraw(**values: Any) -> None:
        _, ax = plt.subplots(figsize=figsize)
        draw(ax, **within_limits(values))
        plt.show()

    widget = ipywidgets.interactive(redraw, **controls)
    by_name = {getattr(child, "description", None): child for child in widget.children}
    for name, (other, maxima) in limits.items():
        slider, leader = by_name[name], by_name[other]

        def follow(change: Any = None, slider: Any = slider, leader: Any = leader, maxima: Any = maxima) -> None:
            slider.max = maxima[leader.value]  # a value past the new end moves down to it

        leader.observe(follow, names="value")
        follow()
    # Start where the first static picture is (and, for what it leaves out, at draw's own defaults),
    # not in the middle of each slider's range.
    start = {
        name: parameter.default
        for name, parameter in inspect.signature(draw).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }
    start.update(static[0] if static else {})
    for name in controls:  # in the controls' order, so that a leader moves before its follower
        if name in start and name in by_name:
            by_name[name].value = start[name]
    return widget


def _choices(abbreviation: Any) -> list[Any] | None:
    """The values a drop-down abbreviation offers (a list of values or of (label, value) pairs, or a dict).

    None for anything else (a slider's ``(min, max, step)``, a widget), whose values are not listed.
    """
    if isinstance(abbreviation, Mapping):
        return list(abbreviation.values())
    if not isinstance(abbreviation, list):
        return None
    return [option[1] if isinstance(option, tuple) and len(option) == 2 else option for option in abbreviation]
