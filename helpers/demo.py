"""The trained model as a demo: its top-k answers, a gallery, the font digits, widgets.

Introduced in lesson 08. Reading and preparing a picture live in
``helpers.picture``; their names are re-exported here (``demo.prepare_digit``,
``demo.read_digit``, ``demo.read_image``, the errors, ...), so the lesson can
use one module.

* ``top_k(model, image, k=3)``: the ``k`` likeliest digits with their probabilities.
* ``uploaded_files(value)``: the files of an ipywidgets ``FileUpload``, for
  ipywidgets 7 (Colab) and 8 (JupyterLab 4), whose ``value`` formats differ.
* ``digit_gallery(...)`` / ``show_gallery(...)``: click a test digit, see its
  top-3 as bars (live with ipywidgets; a static figure everywhere).
* ``load_font_digits()``: the lesson's test set of digits that are not from
  MNIST (rendered from the fonts matplotlib ships; see ``data/font_digits/``).
* ``load_digit_scenes()`` / ``score_digit_scenes(model)``: the picture set of
  ``data/digit_scenes/`` (digits in photos, ruled pages, screenshots, ...) and
  how a model does on it when pictures are read as the service reads them.
* From ``helpers.picture``: ``read_image``, ``read_digit``, ``read_picture``,
  ``prepare_digit``, ``preparation_steps``, ``show_preparation``, ``raw_resize``,
  ``judge``, the limits and the errors.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from helpers.core import to_input
from helpers.picture import (
    ACCEPTED_FORMATS,
    BOX,
    CENTRE,
    MAX_BYTES,
    MAX_PIXELS,
    MIN_CONFIDENCE,
    SIZE,
    SOURCE_SIZE,
    WORKING_SIZE,
    DigitImageError,
    ImageTooLargeError,
    NoInkError,
    NotAnImageError,
    Reading,
    UnreadableImageError,
    grayscale,
    judge,
    preparation_steps,
    prepare_digit,
    raw_resize,
    read_digit,
    read_image,
    read_picture,
    show_preparation,
)

LESSON = 8

__all__ = [
    "ACCEPTED_FORMATS",
    "BOX",
    "CENTRE",
    "FONT_DIGITS_MD5",
    "FONT_DIGITS_PATH",
    "MAX_BYTES",
    "MAX_PIXELS",
    "MIN_CONFIDENCE",
    "PAGE_PICTURE",
    "SIZE",
    "SOURCE_SIZE",
    "WORKING_SIZE",
    "DigitImageError",
    "FontDigits",
    "ImageTooLargeError",
    "NoInkError",
    "NotAnImageError",
    "Reading",
    "UnreadableImageError",
    "DIGIT_SCENES_PATH",
    "digit_gallery",
    "grayscale",
    "judge",
    "load_digit_scenes",
    "load_font_digits",
    "plot_top_k",
    "prepare_digit",
    "preparation_steps",
    "raw_resize",
    "read_digit",
    "read_image",
    "read_picture",
    "score_digit_scenes",
    "show_gallery",
    "show_preparation",
    "to_png",
    "top_k",
    "uploaded_files",
]


# ---------------------------------------------------------------------------
# Answers.


def top_k(model: nn.Module, image: Any, k: int = 3) -> list[tuple[int, float]]:
    """The model's ``k`` likeliest digits for one image, best first: ``[(digit, probability), ...]``.

    Parameters
    ----------
    model : torch.nn.Module
        A trained MNIST model (10 logits); it is run on its own device, in
        evaluation mode, without keeping gradients.
    image : array or tensor
        One MNIST-style image: uint8 ``(28, 28)`` (as ``prepare_digit`` or
        ``load_mnist`` give) or a model input ``(1, 1, 28, 28)``.
    k : int
        How many answers, 1 to 10.
    """
    if not (isinstance(k, int | np.integer) and 1 <= k <= 10):
        raise ValueError(f"k must be a whole number from 1 to 10 (there are ten digits); got {k!r}.")
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    tensor = torch.as_tensor(image)
    if tensor.dtype == torch.uint8 and tuple(tensor.shape) != (28, 28):
        raise ValueError(
            f"top_k expects one MNIST-style image, uint8 (28, 28); got shape {tuple(tensor.shape)} "
            f"(use prepare_digit first for any other picture)."
        )
    x = to_input(tensor, device)
    if tuple(x.shape) != (1, 1, 28, 28):
        raise ValueError(f"top_k expects one image: (28, 28) or (1, 1, 28, 28); got {tuple(x.shape)}.")
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            probabilities = torch.softmax(model(x).float(), dim=1)[0]
    finally:
        model.train(was_training)
    values, digits = probabilities.topk(int(k))
    return list(zip(digits.cpu().tolist(), values.cpu().tolist(), strict=True))


def plot_top_k(ax, predictions: Sequence[Sequence], true_label: int | None = None, title: str | None = None) -> None:
    """Horizontal probability bars for ``[(digit, probability), ...]``, best on top; the true digit in green."""
    digits = [int(d) for d, _ in predictions]
    values = [float(p) for _, p in predictions]
    colours = ["tab:green" if d == true_label else "tab:blue" for d in digits]
    positions = np.arange(len(digits))[::-1]
    ax.barh(positions, values, color=colours)
    ax.set_yticks(positions, [str(d) for d in digits])
    ax.set_xlim(0, 1)
    ax.set_xticks([0, 0.5, 1])
    ax.tick_params(labelsize=7)
    for position, value in zip(positions, values, strict=True):
        ax.text(min(value + 0.03, 0.7), position, f"{value:.0%}", va="center", fontsize=7)
    if title is not None:
        ax.set_title(title, fontsize=8)


def to_png(image: np.ndarray, scale: int = 1) -> bytes:
    """A uint8 grayscale image as PNG file bytes (each pixel a ``scale`` x ``scale`` square)."""
    picture = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8))
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


# ---------------------------------------------------------------------------
# Widgets: a gallery to click and a file upload, for ipywidgets 7 and 8.


def uploaded_files(value: Any) -> list[tuple[str, bytes]]:
    """The files in an ipywidgets ``FileUpload``'s ``value``, as ``[(name, content bytes), ...]``.

    ipywidgets 8 (JupyterLab 4) gives a tuple of dicts, each with ``name`` and
    ``content`` (a ``memoryview``); ipywidgets 7 (Colab) gives a dict from file
    name to ``{"metadata": {...}, "content": bytes}``. Both, and an empty
    value (nothing uploaded yet: ``[]``), are handled.
    """
    if value is None:
        return []
    if isinstance(value, dict):  # ipywidgets 7: {name: {"metadata": {...}, "content": bytes}}
        items = [(str(name), entry) for name, entry in value.items()]
    elif isinstance(value, list | tuple):  # ipywidgets 8: ({"name": ..., "content": memoryview}, ...)
        items = [(str(entry.get("name", f"file {i + 1}")), entry) for i, entry in enumerate(value)]
    else:
        raise TypeError(f"expected a FileUpload value (a dict or a tuple of dicts); got {type(value).__name__}.")
    files = []
    for name, entry in items:
        if not isinstance(entry, dict) or "content" not in entry:
            raise TypeError(f"expected each uploaded file as a dict with 'content'; got {type(entry).__name__}.")
        files.append((name, bytes(entry["content"])))
    return files


def show_gallery(
    model: nn.Module,
    images: np.ndarray,
    labels: Sequence[int],
    indices: Sequence[int],
    *,
    ncols: int = 6,
    size: float = 1.3,
):
    """The static gallery: each chosen digit with its top-3 bars and true label; return the figure.

    Titles read "#index, true t"; a red title marks a digit the model gets wrong.
    """
    import matplotlib.pyplot as plt

    count = len(indices)
    nrows = -(-count // ncols)
    fig, axes = plt.subplots(2 * nrows, ncols, figsize=(size * ncols, size * 1.75 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for n, index in enumerate(indices):
        row, col = 2 * (n // ncols), n % ncols
        predictions = top_k(model, images[index])
        wrong = predictions[0][0] != int(labels[index])
        top, bottom = axes[row, col], axes[row + 1, col]
        top.imshow(images[index], cmap="gray", vmin=0, vmax=255)
        top.set_title(f"#{index}, true {labels[index]}", fontsize=8, color="tab:red" if wrong else "black")
        bottom.set_axis_on()
        plot_top_k(bottom, predictions, true_label=int(labels[index]))
    fig.tight_layout(h_pad=0.3)
    return fig


def _bars_widget(ipywidgets: Any, count: int = 3) -> tuple[Any, list[tuple[Any, Any, Any]]]:
    rows = []
    for _ in range(count):
        name = ipywidgets.Label(value="", layout=ipywidgets.Layout(width="5em"))
        bar = ipywidgets.FloatProgress(value=0.0, min=0.0, max=1.0, layout=ipywidgets.Layout(width="14em"))
        share = ipywidgets.Label(value="", layout=ipywidgets.Layout(width="4em"))
        rows.append((name, bar, share))
    box = ipywidgets.VBox([ipywidgets.HBox(list(row)) for row in rows])
    return box, rows


def _show_bars(rows: list[tuple[Any, Any, Any]], predictions: Sequence[Sequence], true_label: int | None) -> None:
    for (name, bar, share), (digit, probability) in zip(rows, predictions, strict=False):
        name.value = f"digit {digit}"
        bar.value = float(probability)
        bar.bar_style = "success" if digit == true_label else "info"
        share.value = f"{probability:.1%}"


def digit_gallery(model: nn.Module, images: np.ndarray, labels: Sequence[int], indices: Sequence[int], ncols: int = 6):
    """A live gallery: click "#index" under a digit to see its top-3 as bars and its true label.

    Works with ipywidgets 7 (Colab) and 8 (JupyterLab). Returns the widget,
    or None when ipywidgets is not installed (``show_gallery`` draws the same
    answers as a static figure).
    """
    try:
        import ipywidgets
    except ImportError:
        return None
    bars, rows = _bars_widget(ipywidgets)
    heading = ipywidgets.HTML(value="<b>Click a digit's button.</b>")
    cells = []

    def on_click(button: Any) -> None:
        index = button.digit_index
        label = int(labels[index])
        predictions = top_k(model, images[index])
        verdict = "right" if predictions[0][0] == label else "wrong"
        heading.value = f"<b>#{index}</b>: true label <b>{label}</b>; the model's best guess is {verdict}."
        _show_bars(rows, predictions, label)

    for index in indices:
        picture = ipywidgets.Image(value=to_png(images[index], scale=3), format="png", width=84, height=84)
        button = ipywidgets.Button(description=f"#{index}", layout=ipywidgets.Layout(width="84px"))
        button.digit_index = int(index)
        button.on_click(on_click)
        cells.append(ipywidgets.VBox([picture, button]))
    grid = ipywidgets.VBox([ipywidgets.HBox(cells[start : start + ncols]) for start in range(0, len(cells), ncols)])
    return ipywidgets.VBox([grid, heading, bars])


# ---------------------------------------------------------------------------
# The lesson's test set of digits that are not from MNIST.

#: A picture of the service's web page (``python -m helpers.serve``), for places without a live service:
#: taken with headless Chromium (playwright) after clicking a test digit and drawing a 7 on the canvas.
PAGE_PICTURE = Path(__file__).resolve().parent / "static" / "page.png"

#: Where the font-digit test set lives (tracked by git, so always in the repository's own data/
#: folder, wherever COURSE_DATA_DIR points), and its md5 (also in its README).
FONT_DIGITS_PATH = Path(__file__).resolve().parent.parent / "data" / "font_digits" / "font_digits.npz"
FONT_DIGITS_MD5 = "88cfb36ea06b45c21b2bf75ae0c5e98e"


@dataclass(frozen=True, repr=False)
class FontDigits:
    """The font-digit test set.

    Attributes
    ----------
    paper : np.ndarray
        uint8 (N, 64, 64): each digit as rendered, dark ink on light paper.
    images : np.ndarray
        uint8 (N, 28, 28): the same digits after ``prepare_digit``.
    labels : np.ndarray
        int64 (N,): the digit drawn.
    font, style : np.ndarray
        str (N,): the font family (``DejaVu Sans``, ...) and style (``regular``, ``bold``, ``oblique``).
    size, rotation, stroke : np.ndarray
        The font size in pixels, the rotation in degrees, the extra stroke width in pixels.
    """

    paper: np.ndarray
    images: np.ndarray
    labels: np.ndarray
    font: np.ndarray
    style: np.ndarray
    size: np.ndarray
    rotation: np.ndarray
    stroke: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return f"FontDigits({len(self)} digits, {len(set(self.font))} fonts x {len(set(self.style))} styles)"


def load_font_digits(path: Path | str | None = None, *, verify: bool = True) -> FontDigits:
    """Load the font-digit test set (``data/font_digits/font_digits.npz``), md5-checked.

    The file holds the pages as drawn (64x64, dark on light); each is made
    MNIST-style with ``prepare_digit`` here (about half a millisecond each).

    Raises
    ------
    FileNotFoundError
        The file is missing (it comes with the repository).
    ValueError
        Its md5 differs from ``FONT_DIGITS_MD5`` (damaged or changed).
    """
    path = FONT_DIGITS_PATH if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"the font-digit test set is missing: expected {path} (it comes with the course repository; "
            f"`python -m tools.make_font_digits` rebuilds it)."
        )
    data = path.read_bytes()
    if verify and path == FONT_DIGITS_PATH and hashlib.md5(data).hexdigest() != FONT_DIGITS_MD5:
        raise ValueError(
            f"{path.name} is damaged or was changed: md5 {hashlib.md5(data).hexdigest()}, expected "
            f"{FONT_DIGITS_MD5}. Restore it with `git checkout data/font_digits`."
        )
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        fields = {name: archive[name] for name in FontDigits.__dataclass_fields__ if name != "images"}
    images = np.stack([prepare_digit(page) for page in fields["paper"]])
    return FontDigits(images=images, **fields)


# ---------------------------------------------------------------------------
# The picture set: digits in photos, ruled pages, screenshots, ... (data/digit_scenes/).

#: The picture set (tracked by git, in the repository's own data/ folder); made by tools/make_digit_scenes.py.
DIGIT_SCENES_PATH = Path(__file__).resolve().parent.parent / "data" / "digit_scenes"


def load_digit_scenes(folder: Path | str | None = None) -> list[dict]:
    """The picture set's index (``scenes.csv``): one dict per scene with ``file`` (a Path),
    ``label``, ``kind`` (photo, ruled, screenshot, ...), ``source`` (mnist or fonts) and ``index``."""
    import csv

    folder = DIGIT_SCENES_PATH if folder is None else Path(folder)
    if not (folder / "scenes.csv").is_file():
        raise FileNotFoundError(
            f"the picture set is missing: expected {folder / 'scenes.csv'} (it comes with the course repository; "
            f"`python -m tools.make_digit_scenes` rebuilds it)."
        )
    with open(folder / "scenes.csv", newline="") as handle:
        return [
            {**row, "file": folder / row["file"], "label": int(row["label"]), "index": int(row["index"])}
            for row in csv.DictReader(handle)
        ]


def score_digit_scenes(model: nn.Module, folder: Path | str | None = None, *, min_confidence: float | None = None):
    """Read every scene of the picture set as the service does (``read_digit``, ``top_k``, ``judge``).

    Returns a dict: ``scenes``, ``answered``, ``right`` (among the answered),
    ``declined``, ``accuracy_answered``, ``share_declined``, ``accuracy_all``
    (top-1 on every scene, declined or not), ``by_kind`` ({kind: (answered,
    right, declined)}) and ``results`` (one dict per scene, with ``guess``,
    ``probability``, ``readable`` and ``reason``).
    """
    threshold = MIN_CONFIDENCE if min_confidence is None else min_confidence
    results = []
    for row in load_digit_scenes(folder):
        try:
            prepared, readable, reason = read_digit(row["file"].read_bytes())
        except DigitImageError as error:
            results.append({**row, "guess": None, "probability": 0.0, "readable": False, "reason": str(error)})
            continue
        predictions = top_k(model, prepared, 3)
        readable, reason = judge(readable, reason, predictions, min_confidence=threshold)
        guess, probability = predictions[0]
        results.append({**row, "guess": guess, "probability": probability, "readable": readable, "reason": reason})
    answered = [r for r in results if r["readable"]]
    right = sum(r["guess"] == r["label"] for r in answered)
    by_kind: dict[str, list[int]] = {}
    for r in results:
        entry = by_kind.setdefault(r["kind"], [0, 0, 0])
        if r["readable"]:
            entry[0] += 1
            entry[1] += int(r["guess"] == r["label"])
        else:
            entry[2] += 1
    count = max(1, len(results))
    return {
        "scenes": len(results),
        "answered": len(answered),
        "right": right,
        "declined": len(results) - len(answered),
        "accuracy_answered": right / max(1, len(answered)),
        "share_declined": 1 - len(answered) / count,
        "accuracy_all": sum(r["guess"] == r["label"] for r in results) / count,
        "by_kind": {kind: tuple(values) for kind, values in by_kind.items()},
        "results": results,
    }
