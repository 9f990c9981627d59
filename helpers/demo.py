"""The trained model as a demo: any picture of a digit made MNIST-style, its top-k answers, a gallery.

Introduced in lesson 08.

* ``read_image(data)``: image file bytes to a PIL image, with the service's limits
  (bytes, pixels: a decompression bomb is refused from its header, before it is
  decoded) and errors that say what was wrong (``DigitImageError`` and its kinds,
  each with the HTTP status the service answers with).
* ``prepare_digit(image)``: a photo, drawing or scan of one digit made MNIST-style:
  grayscale (transparency composited onto white paper), a light background
  inverted, cropped to the ink, scaled to fit 20x20 keeping the aspect ratio,
  pasted into 28x28 with its centre of mass in the middle.
  ``preparation_steps`` keeps every stage, ``show_preparation`` draws them.
* ``raw_resize(image)``: the naive alternative (the whole picture squeezed to 28x28).
* ``top_k(model, image, k=3)``: the ``k`` likeliest digits with their probabilities.
* ``uploaded_files(value)``: the files of an ipywidgets ``FileUpload``, for
  ipywidgets 7 (Colab) and 8 (JupyterLab 4), whose ``value`` formats differ.
* ``digit_gallery(...)`` / ``show_gallery(...)``: click a test digit, see its
  top-3 as bars (live with ipywidgets; a static figure everywhere).
* ``load_font_digits()``: the lesson's test set of digits that are not from
  MNIST (rendered from the fonts matplotlib ships; see ``data/font_digits/``).
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import nn

from helpers.core import to_input

LESSON = 8

__all__ = [
    "ACCEPTED_FORMATS",
    "FONT_DIGITS_MD5",
    "FONT_DIGITS_PATH",
    "MAX_BYTES",
    "MAX_PIXELS",
    "PAGE_PICTURE",
    "DigitImageError",
    "FontDigits",
    "ImageTooLargeError",
    "NoInkError",
    "NotAnImageError",
    "UnreadableImageError",
    "digit_gallery",
    "load_font_digits",
    "plot_top_k",
    "prepare_digit",
    "preparation_steps",
    "raw_resize",
    "read_image",
    "show_gallery",
    "show_preparation",
    "to_png",
    "top_k",
    "uploaded_files",
]

#: The largest image file accepted, in bytes (10 MB: a phone photo fits).
MAX_BYTES = 10_000_000
#: The most pixels an image may have (width x height), checked before it is decoded.
MAX_PIXELS = 40_000_000
#: The image formats that are read (as Pillow names them).
ACCEPTED_FORMATS = ("PNG", "JPEG", "GIF", "BMP")
#: Big pictures are shrunk to at most this many pixels on their longer side before the ink is found.
WORKING_SIZE = 512
#: MNIST's digits fit in a 20x20 box inside the 28x28 image ...
BOX = 20
SIZE = 28
#: ... with their centre of mass (row, column) at pixel 14, to the nearest pixel (measured on MNIST).
CENTRE = 14.0
#: Ink weaker than this share of the strongest ink is paper (texture, noise, JPEG ripples).
PAPER_LEVEL = 0.1
#: Ink stronger than this share of the strongest ink decides where the digit's box is.
BOX_LEVEL = 0.2
#: An image whose ink differs from its background by less than this (0-1 scale) has no digit on it.
MIN_CONTRAST = 0.1


# ---------------------------------------------------------------------------
# Errors: each kind carries the HTTP status the service answers with.


class DigitImageError(ValueError):
    """An image that cannot be made into a digit; ``status`` is the matching HTTP status."""

    status = 400


class UnreadableImageError(DigitImageError):
    """An empty, corrupted or truncated image file, or an array of the wrong shape."""

    status = 400


class NoInkError(DigitImageError):
    """An image with nothing on it that stands out from the background."""

    status = 400


class ImageTooLargeError(DigitImageError):
    """A file over ``MAX_BYTES`` or an image over ``MAX_PIXELS``."""

    status = 413


class NotAnImageError(DigitImageError):
    """A file that is not an image in one of the ``ACCEPTED_FORMATS``."""

    status = 415


# Signatures of the accepted formats: a file that starts like one of them but cannot be
# decoded is a damaged image (400), anything else is not an image we read (415).
_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")
_FORMATS_SAID = "PNG, JPEG, GIF or BMP"


def read_image(data: bytes | bytearray | memoryview, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS):
    """Open image file bytes as a PIL image, within limits, with clear errors.

    The size in pixels is read from the file's header and checked before any
    pixel is decoded, so a small file that would expand to a huge image (a
    "decompression bomb") is refused cheaply. An animated GIF gives its first
    frame.

    Parameters
    ----------
    data : bytes-like
        The whole file.
    max_bytes, max_pixels : int
        The limits (default ``MAX_BYTES``, ``MAX_PIXELS``).

    Returns
    -------
    PIL.Image.Image
        Decoded (loaded), in whatever mode the file has.

    Raises
    ------
    UnreadableImageError
        Empty, or an accepted format that is damaged or cut short (status 400).
    ImageTooLargeError
        Over ``max_bytes`` or ``max_pixels`` (status 413).
    NotAnImageError
        Not a PNG, JPEG, GIF or BMP file (status 415).
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"read_image expects the file's bytes; got {type(data).__name__}.")
    data = bytes(data)
    if not data:
        raise UnreadableImageError(f"the file is empty; expected an image file ({_FORMATS_SAID}).")
    if len(data) > max_bytes:
        raise ImageTooLargeError(
            f"the file has {len(data):,} bytes; the limit is {max_bytes:,} bytes. Send a smaller image."
        )
    looks_like_an_image = data.startswith(_SIGNATURES)
    try:
        with warnings.catch_warnings():  # Pillow warns about big images; we refuse them below instead
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError:
        raise ImageTooLargeError(
            f"the image is far too large: over {2 * Image.MAX_IMAGE_PIXELS:,} pixels by its header; the limit is "
            f"{max_pixels:,} pixels (checked before decoding). Send a smaller image."
        ) from None
    except UnidentifiedImageError:
        if looks_like_an_image:
            raise UnreadableImageError(
                f"the file starts like a {_format_of(data)} image but cannot be read (damaged or cut short?)."
            ) from None
        raise NotAnImageError(
            f"this file is not an image that can be read here: expected {_FORMATS_SAID} (it starts with {data[:8]!r})."
        ) from None
    except Exception as error:  # a malformed header can raise almost anything inside Pillow
        raise UnreadableImageError(f"the image header cannot be read ({type(error).__name__}: {error}).") from None
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"the image is {width:,} x {height:,} = {width * height:,} pixels; the limit is {max_pixels:,} pixels "
            f"(checked before decoding). Send a smaller image."
        )
    if width < 1 or height < 1:
        raise UnreadableImageError(f"the image is {width} x {height} pixels; it has no pixels to read.")
    try:
        image.seek(0)  # the first frame of an animation
        if image.format == "JPEG":
            image.draft("RGB", (WORKING_SIZE, WORKING_SIZE))  # decode big JPEGs at 1/2, 1/4 or 1/8 size
        image.load()
    except Exception as error:
        raise UnreadableImageError(
            f"the {image.format} image cannot be decoded (damaged or cut short?): {type(error).__name__}: {error}"
        ) from None
    return image


def _format_of(data: bytes) -> str:
    for signature, name in zip(_SIGNATURES, ("PNG", "JPEG", "GIF", "GIF", "BMP"), strict=True):
        if data.startswith(signature):
            return name
    return "image"


# ---------------------------------------------------------------------------
# Preparation, MNIST-style.


def _shrink(image: Image.Image) -> Image.Image:
    """Shrink a big picture to ``WORKING_SIZE`` on its longer side (the digit needs 20 pixels in the end)."""
    width, height = image.size
    if max(width, height) <= WORKING_SIZE:
        return image
    scale = WORKING_SIZE / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(size, Image.Resampling.BOX)


def _gray_from_pil(image: Image.Image) -> np.ndarray:
    """A PIL image as float32 brightness 0 (black) to 1 (white), transparency composited onto white."""
    mode = image.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        if mode.startswith("I;16"):
            top = 65535.0
        elif mode == "F":
            top = 1.0 if values.max(initial=0) <= 1.0 else 255.0
        else:
            top = 65535.0 if values.max(initial=0) > 255 else 255.0
        return _shrink_array(np.clip(values / top, 0, 1).astype(np.float32))
    if mode in ("1", "L"):
        return _shrink_array(np.asarray(image.convert("L"), dtype=np.float32) / 255)
    has_alpha = "A" in mode or "a" in mode or "transparency" in image.info
    if mode == "CMYK" or not has_alpha:
        return _shrink_array(np.asarray(image.convert("L"), dtype=np.float32) / 255)
    rgba = image.convert("RGBA")
    paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return _shrink_array(np.asarray(Image.alpha_composite(paper, rgba).convert("L"), dtype=np.float32) / 255)


def _shrink_array(gray: np.ndarray) -> np.ndarray:
    height, width = gray.shape
    if max(height, width) <= WORKING_SIZE:
        return gray
    return np.asarray(_shrink(Image.fromarray(gray)), dtype=np.float32)


def _gray_from_array(array: Any) -> np.ndarray:
    """An array (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) as float32 brightness 0-1 (alpha onto white)."""
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[0] == 1 and array.shape[-1] != 1:
        array = array[0]  # (1, H, W), one image with a channel axis first
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)) or 0 in array.shape:
        raise UnreadableImageError(
            f"expected one image as an array of shape (H, W), (H, W, 3) or (H, W, 4); got shape {array.shape}."
        )
    if array.dtype == np.bool_:
        values = array.astype(np.float32)
    elif np.issubdtype(array.dtype, np.integer):
        top = 65535.0 if array.dtype.itemsize >= 2 and array.max() > 255 else 255.0
        values = array.astype(np.float32) / top
    elif np.issubdtype(array.dtype, np.floating):
        values = array.astype(np.float32)
        if not np.isfinite(values).all():
            raise UnreadableImageError("the image array holds NaN or infinite values; expected pixel values.")
        if values.max() > 1.0:
            values = values / 255.0
    else:
        raise UnreadableImageError(f"expected an array of pixel values (integers or floats); got dtype {array.dtype}.")
    values = np.clip(values, 0.0, 1.0)
    if values.ndim == 3:
        rgb = values[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        if values.shape[-1] == 4:
            alpha = values[..., 3]
            rgb = rgb * alpha + (1.0 - alpha)  # composited onto white paper
        values = rgb
    return _shrink_array(values)


def grayscale(image: Any) -> np.ndarray:
    """Any accepted image as float32 brightness from 0 (black) to 1 (white), shrunk to ``WORKING_SIZE``.

    ``image`` is a PIL image, a numpy array or tensor (uint8 0-255, uint16,
    bool, or float 0-1), image file bytes, or a path to an image file.
    Transparent pixels count as white paper.
    """
    if isinstance(image, bytes | bytearray | memoryview):
        image = read_image(image)
    elif isinstance(image, str | os.PathLike):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"no image file at {path}.")
        image = read_image(path.read_bytes())
    if isinstance(image, Image.Image):
        return _gray_from_pil(image)
    if isinstance(image, np.ndarray | torch.Tensor):
        return _gray_from_array(image)
    raise TypeError(
        f"expected a PIL image, a numpy array, image file bytes or a file path; got {type(image).__name__}."
    )


def preparation_steps(image: Any) -> dict[str, np.ndarray]:
    """Every stage of ``prepare_digit``, in order, for pictures and for checking.

    Returns
    -------
    dict of str to np.ndarray
        ``"grayscale"``: brightness 0-1 as given (white paper is 1);
        ``"ink"``: how far each pixel is from the background, 0 (paper) to 1
        (the strongest ink), so a dark digit on light paper and a light digit
        on a dark background both become light ink on black;
        ``"cropped"``: the ink's bounding box;
        ``"fitted"``: scaled so that its longer side is 20 pixels;
        ``"prepared"``: uint8 (28, 28), the fitted digit pasted with its centre
        of mass at pixel (14, 14), as in MNIST.

    Raises
    ------
    NoInkError
        Nothing stands out from the background by at least ``MIN_CONTRAST``.
    UnreadableImageError, ImageTooLargeError, NotAnImageError
        As ``read_image``, for file bytes; ``UnreadableImageError`` also for an
        array of the wrong shape.
    """
    gray = grayscale(image)
    # The background is the typical brightness of the border: light paper or a dark board.
    rim = max(1, round(min(gray.shape) * 0.03))
    border = np.concatenate([gray[:rim].ravel(), gray[-rim:].ravel(), gray[:, :rim].ravel(), gray[:, -rim:].ravel()])
    background = float(np.median(border))
    ink = background - gray if background > 0.5 else gray - background  # light paper: dark is ink
    strongest = float(ink.max())
    if strongest < MIN_CONTRAST:
        raise NoInkError(
            f"no ink found: no pixel differs from the background (brightness {background:.2f} on a 0-1 scale) "
            f"by more than {strongest:.2f}; expected one digit, dark on light paper or light on a dark background, "
            f"that stands out by at least {MIN_CONTRAST}."
        )
    ink = np.clip((ink / strongest - PAPER_LEVEL) / (1 - PAPER_LEVEL), 0, 1).astype(np.float32)
    rows = np.flatnonzero((ink > BOX_LEVEL).any(axis=1))
    cols = np.flatnonzero((ink > BOX_LEVEL).any(axis=0))
    cropped = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    height, width = cropped.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))  # PIL: (width, height)
    fitted = np.asarray(Image.fromarray(cropped).resize(size, Image.Resampling.BILINEAR), dtype=np.float32)
    fitted = np.clip(fitted, 0, None)
    fitted = fitted / max(float(fitted.max()), 1e-6)  # the strongest ink is full white, as in MNIST
    # Centre of mass of the fitted digit, in its own pixel coordinates (row, column).
    total = float(fitted.sum())
    centre_row = float(fitted.sum(axis=1) @ np.arange(fitted.shape[0])) / total
    centre_col = float(fitted.sum(axis=0) @ np.arange(fitted.shape[1])) / total
    top = int(np.clip(np.round(CENTRE - centre_row), 0, SIZE - fitted.shape[0]))
    left = int(np.clip(np.round(CENTRE - centre_col), 0, SIZE - fitted.shape[1]))
    prepared = np.zeros((SIZE, SIZE), dtype=np.uint8)
    prepared[top : top + fitted.shape[0], left : left + fitted.shape[1]] = np.round(fitted * 255).astype(np.uint8)
    return {"grayscale": gray, "ink": ink, "cropped": cropped, "fitted": fitted, "prepared": prepared}


def prepare_digit(image: Any) -> np.ndarray:
    """Make a picture of one digit look like an MNIST digit: uint8 ``(28, 28)``, white ink on black.

    The steps, as the MNIST digits were made:

    1. grayscale; transparent pixels count as white paper;
    2. the background (the typical brightness of the border) becomes black
       and the ink white: a light background is inverted;
    3. cropped to the ink's bounding box;
    4. scaled so that the longer side is 20 pixels, keeping the aspect ratio;
    5. pasted into a 28x28 black image with its centre of mass at (14, 14).

    Parameters
    ----------
    image : PIL image, array, tensor, file bytes or path
        One digit, dark on light or light on dark, any size within the limits.
        Arrays: (H, W) gray, (H, W, 3) RGB or (H, W, 4) RGBA; uint8 0-255,
        uint16, bool or float 0-1.

    Returns
    -------
    np.ndarray
        uint8 (28, 28), as ``load_mnist`` gives, ready for ``top_k``.

    Raises
    ------
    NoInkError
        Nothing on the image stands out from its background.
    UnreadableImageError, ImageTooLargeError, NotAnImageError
        Bad file bytes (see ``read_image``) or an array of the wrong shape.
    """
    return preparation_steps(image)["prepared"]


def raw_resize(image: Any) -> np.ndarray:
    """The naive way: the whole picture squeezed to 28x28 as it is (no inversion, no crop), uint8."""
    gray = grayscale(image)
    small = Image.fromarray(gray).resize((SIZE, SIZE), Image.Resampling.BILINEAR)
    return np.round(np.clip(np.asarray(small), 0, 1) * 255).astype(np.uint8)


def show_preparation(image: Any, size: float = 1.5, predictions: Sequence[Sequence] | None = None):
    """Draw every stage of ``prepare_digit`` for one image, in a row; return the figure."""
    import matplotlib.pyplot as plt

    steps = preparation_steps(image)
    titles = {
        "grayscale": "as given",
        "ink": "ink (paper black)",
        "cropped": "cropped to ink",
        "fitted": "fitted in 20x20",
        "prepared": "28x28, centred",
    }
    fig, axes = plt.subplots(1, len(steps), figsize=(size * len(steps), size * 1.25))
    for ax, (name, picture) in zip(axes, steps.items(), strict=True):
        ax.imshow(picture, cmap="gray", vmin=0, vmax=255 if picture.dtype == np.uint8 else 1)
        height, width = picture.shape
        ax.set_title(f"{titles[name]}\n{width}x{height}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


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
