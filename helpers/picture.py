"""Reading a picture of a digit and preparing it MNIST-style, or saying why it cannot be read.

Introduced in lesson 08. The service (``helpers.serve``), the terminal command
(``helpers.predict``) and the lesson all read pictures through this module;
``helpers.demo`` re-exports its names.

* ``read_image(data)``: image file bytes to a PIL image, with the service's limits
  (bytes, pixels: a decompression bomb is refused from its header, before it is
  decoded), shrunk while decoding where the format allows (JPEG's ``draft``,
  then ``reduce``), turned upright by its EXIF orientation, with errors that say
  what was wrong (``DigitImageError`` and its kinds, each with the HTTP status
  the service answers with). Error messages never quote the file's bytes.
* ``read_digit(image) -> (prepared, readable, reason)``: the preparation, and
  whether the picture looks like one digit (``reason`` says why not).
  ``read_picture(image)`` gives every stage (``Reading``), ``preparation_steps``
  its pictures, ``show_preparation`` draws them.
* ``prepare_digit(image)``: only the prepared uint8 (28, 28) image.
* ``judge(readable, reason, predictions)``: adds the model's own doubt (a best
  guess under ``MIN_CONFIDENCE``) to the picture's verdict.
* ``raw_resize(image)``: the naive alternative (the whole picture squeezed to 28x28).

The preparation, step by step (``read_picture``):

1. **grayscale**: brightness 0 (black) to 1 (white); a transparent picture is
   laid on black when its visible strokes are light, on white when they are dark;
2. **background**: a smooth surface (a quadratic in x and y) fitted to the
   picture while leaving out the pixels that stand out from it, so a gradient,
   a shadow or uneven light is background, not ink;
3. **ink**: how far each pixel stands out from that surface, on the side the
   marks are on (dark marks on light paper, or light on dark), lightly smoothed,
   the strongest ink scaled to 1;
4. **threshold** chosen from the picture (Otsu's method: the level that best
   splits its pixels into two groups), giving a mask of marks;
5. **lines removed**: straight marks across most of the picture (ruled lines,
   a margin, a frame) are taken out of the mask, and the ink they crossed is
   filled in from above and below;
6. **the digit**: the marks are split into connected blobs; the most
   digit-like one (the most ink, not touching two opposite edges) is kept,
   with small pieces right next to it (the bar of a 5 drawn apart); text and
   specks elsewhere are dropped. A digit small in a large frame is read again
   from a close crop at the picture's own resolution;
7. **cropped, fitted, centred** as MNIST: the digit's box scaled so its longer
   side is 20 pixels, pasted into 28x28 with its centre of mass at (14, 14).

The picture is *unreadable* (``readable`` false, with a sentence why) when no
blob looks like one digit: only a few pixels tall, a solid block, much wider
than tall, or several marks of the same size.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError, features
from scipy import ndimage

LESSON = 8

__all__ = [
    "ACCEPTED_FORMATS",
    "MAX_BYTES",
    "MAX_PIXELS",
    "MIN_CONFIDENCE",
    "DigitImageError",
    "ImageTooLargeError",
    "NoInkError",
    "NotAnImageError",
    "Reading",
    "UnreadableImageError",
    "grayscale",
    "judge",
    "preparation_steps",
    "prepare_digit",
    "raw_resize",
    "read_digit",
    "read_image",
    "read_picture",
    "show_preparation",
]

#: The largest image file accepted, in bytes (10 MB: a phone photo fits).
MAX_BYTES = 10_000_000
#: The most pixels an image may have (width x height: a 25-megapixel phone photo), checked before decoding.
MAX_PIXELS = 25_000_000
#: Pictures are decoded (JPEG) or reduced (other formats) to about this many pixels on the longer side ...
SOURCE_SIZE = 2048
#: ... and looked at this size to find the digit (a digit small in the frame is read again from SOURCE_SIZE).
WORKING_SIZE = 512
#: MNIST's digits fit in a 20x20 box inside the 28x28 image ...
BOX = 20
SIZE = 28
#: ... with their centre of mass (row, column) at pixel 14, to the nearest pixel (measured on MNIST).
CENTRE = 14.0
#: A picture whose marks differ from its background by less than this (0-1 scale) has nothing on it.
MIN_CONTRAST = 0.1
#: A best guess less likely than this is an unsure answer (chosen on generated scenes that are not the test set).
MIN_CONFIDENCE = 0.6
#: A digit whose box is smaller than this many pixels (longer side, in the picture as sent) is too small to read.
MIN_DIGIT_PIXELS = 10

# The formats that are read (as Pillow names them): WebP when this Pillow was built with it.
_WEBP = features.check("webp")
ACCEPTED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP") if _WEBP else ("PNG", "JPEG", "GIF", "BMP")
_FORMATS_SAID = "PNG, JPEG, GIF, BMP or WebP" if _WEBP else "PNG, JPEG, GIF or BMP (this Pillow cannot read WebP)"


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
_SIGNATURES = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF87a": "GIF", b"GIF89a": "GIF", b"BM": "BMP"}
# Other kinds of file, named in the message (never their bytes).
_OTHER_KINDS = {
    b"II*\x00": "a TIFF image",
    b"MM\x00*": "a TIFF image",
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a ZIP archive (or an Office document)",
    b"\x00\x00\x01\x00": "an icon (ICO)",
    b"<svg": "an SVG drawing",
    b"<?xml": "an XML file (an SVG drawing?)",
}


def _kind_of(data: bytes) -> str | None:
    """The image format an accepted file says it is, from its first bytes; None for any other file."""
    for signature, name in _SIGNATURES.items():
        if data.startswith(signature):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _describe_other(data: bytes) -> str:
    """What a file that is not an accepted image seems to be, in words."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "a WebP image, which this computer's Pillow cannot read"
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        return "a HEIC/AVIF photo (convert it to JPEG or PNG)"
    for signature, name in _OTHER_KINDS.items():
        if data.startswith(signature):
            return name
    head = data[:512]
    try:
        head.decode("utf-8")
        return "text"
    except UnicodeDecodeError:
        return "a file of another kind"


def read_image(
    data: bytes | bytearray | memoryview,
    *,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
    shrink: bool = True,
) -> Image.Image:
    """Open image file bytes as a PIL image, within limits, upright, with clear errors.

    The size in pixels is read from the file's header and checked before any
    pixel is decoded, so a small file that would expand to a huge image (a
    "decompression bomb") is refused cheaply. A JPEG is decoded at 1/2, 1/4 or
    1/8 of its size when that still leaves ``SOURCE_SIZE`` pixels on its longer
    side; other formats are reduced to about that size right after decoding, so
    memory per picture stays bounded. The EXIF orientation (a phone held
    sideways) is applied. An animated GIF gives its first frame.

    Parameters
    ----------
    data : bytes-like
        The whole file.
    max_bytes, max_pixels : int
        The limits (default ``MAX_BYTES``, ``MAX_PIXELS``).
    shrink : bool
        Shrink big pictures to about ``SOURCE_SIZE`` on the longer side (default).

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
        Not one of the ``ACCEPTED_FORMATS`` (status 415).
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
    kind = _kind_of(data)
    if kind is None or kind not in ACCEPTED_FORMATS:
        raise NotAnImageError(
            f"this file is not an image that can be read here: expected {_FORMATS_SAID}; "
            f"it looks like {_describe_other(data)}."
        )
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
        raise UnreadableImageError(
            f"the file starts like a {kind} image but cannot be read (damaged or cut short?)."
        ) from None
    except Exception as error:  # a malformed header can raise almost anything inside Pillow
        raise UnreadableImageError(
            f"the {kind} image's header cannot be read ({type(error).__name__}); is the file damaged?"
        ) from None
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
        orientation = image.getexif().get(0x0112, 1) if image.format in ("JPEG", "PNG", "WEBP") else 1
        if shrink and image.format == "JPEG" and max(width, height) > SOURCE_SIZE:
            scale = SOURCE_SIZE / max(width, height)
            image.draft(
                image.mode if image.mode in ("L", "RGB") else "RGB",
                (max(1, int(width * scale)), max(1, int(height * scale))),
            )
        image.load()
        if shrink and max(image.size) >= 2 * SOURCE_SIZE:
            factor = max(image.size) // SOURCE_SIZE
            try:
                image = image.reduce(factor)
            except (ValueError, NotImplementedError):  # a mode reduce() does not take: resize instead
                size = (max(1, image.width // factor), max(1, image.height // factor))
                image = image.resize(size, Image.Resampling.BOX)
        if orientation != 1:
            image.info.pop("transparency", None) if image.mode not in ("P", "L", "RGB") else None
            if "exif" not in image.info:
                image.info["exif"] = image.getexif().tobytes()
            transposed = ImageOps.exif_transpose(image)
            if transposed is not None:
                image = transposed
    except (ImageTooLargeError, UnreadableImageError):
        raise
    except Exception as error:
        raise UnreadableImageError(
            f"the {kind} image cannot be decoded (damaged or cut short?): {type(error).__name__}."
        ) from None
    return image


# ---------------------------------------------------------------------------
# Grayscale: any accepted input to brightness 0 (black) to 1 (white).


def _resize_gray(gray: np.ndarray, longest: int) -> np.ndarray:
    """Shrink a float32 brightness array so its longer side is at most ``longest`` (area averaging)."""
    height, width = gray.shape
    if max(height, width) <= longest:
        return gray
    scale = longest / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(gray).resize(size, Image.Resampling.BOX), dtype=np.float32)


def _composite(luminance: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Lay a transparent picture on the background that keeps its digit visible.

    When the visible pixels are all of one colour, the shape is in the
    transparency (strokes on nothing): they are laid on the opposite (light
    strokes on black, dark strokes on white). When the visible pixels hold
    their own contrast (a drawing whose paper is partly transparent), the
    transparent pixels become that paper: the colour most of the visible
    pixels have.
    """
    if float(alpha.min()) >= 1.0 or float(alpha.max()) <= 0.0:
        return luminance
    visible = luminance[alpha > 0.5]
    if visible.size == 0:
        visible = luminance[alpha > 0]
    low, middle, high = np.percentile(visible, [10, 50, 90])
    if high - low > 0.3:
        paper = 1.0 if middle > 0.5 else 0.0
    else:
        paper = 0.0 if middle > 0.5 else 1.0
    return luminance * alpha + paper * (1.0 - alpha)


def _gray_from_pil(image: Image.Image) -> np.ndarray:
    """A PIL image as float32 brightness 0 (black) to 1 (white), transparency composited (``_composite``)."""
    mode = image.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        if mode.startswith("I;16"):
            top = 65535.0
        elif mode == "F":
            top = 1.0 if values.max(initial=0) <= 1.0 else 255.0
        else:
            top = 65535.0 if values.max(initial=0) > 255 else 255.0
        return np.clip(values / top, 0, 1).astype(np.float32)
    if mode in ("1", "L"):
        return np.asarray(image.convert("L"), dtype=np.float32) / 255
    has_alpha = "A" in mode or "a" in mode or "transparency" in image.info
    if mode == "CMYK" or not has_alpha:
        return np.asarray(image.convert("L"), dtype=np.float32) / 255
    rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255
    luminance = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return _composite(luminance, rgba[..., 3]).astype(np.float32)


def _gray_from_array(array: Any) -> np.ndarray:
    """An array (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) as float32 brightness 0-1 (alpha composited)."""
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
        luminance = values[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        if values.shape[-1] == 4:
            luminance = _composite(luminance, values[..., 3])
        values = luminance
    return values.astype(np.float32)


def _source_gray(image: Any) -> np.ndarray:
    """Any accepted input as float32 brightness 0-1, at most ``SOURCE_SIZE`` on the longer side."""
    if isinstance(image, bytes | bytearray | memoryview):
        image = read_image(image)
    elif isinstance(image, str | os.PathLike):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"no image file at {path}.")
        image = read_image(path.read_bytes())
    if isinstance(image, Image.Image):
        gray = _gray_from_pil(image)
    elif isinstance(image, np.ndarray | torch.Tensor):
        gray = _gray_from_array(image)
    else:
        raise TypeError(
            f"expected a PIL image, a numpy array, image file bytes or a file path; got {type(image).__name__}."
        )
    return _resize_gray(gray, SOURCE_SIZE)


def grayscale(image: Any) -> np.ndarray:
    """Any accepted image as float32 brightness from 0 (black) to 1 (white), shrunk to ``WORKING_SIZE``.

    ``image`` is a PIL image, a numpy array or tensor (uint8 0-255, uint16,
    bool, or float 0-1), image file bytes, or a path to an image file. A
    transparent picture is laid on black when its visible strokes are light and
    on white when they are dark, so its strokes stay visible.
    """
    return _resize_gray(_source_gray(image), WORKING_SIZE)


# ---------------------------------------------------------------------------
# The reading: background, ink, threshold, lines, the digit's blob.


def fit_background(gray: np.ndarray, *, grid: int = 32, rounds: int = 5) -> np.ndarray:
    """A smooth background for ``gray``: a quadratic surface in x and y fitted while leaving out marks.

    The picture is averaged down to about ``grid`` cells on its longer side;
    the surface is fitted by least squares, the cells far from it (over 2.5
    robust standard deviations either way: ink, or light marks) are left out,
    and it is fitted again, ``rounds`` times. Returns the surface at ``gray``'s size.
    """
    small = _resize_gray(gray, grid)
    rows, cols = small.shape
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float64)
    y = (y + 0.5) / rows * 2 - 1
    x = (x + 0.5) / cols * 2 - 1
    terms = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=-1).reshape(-1, 6)
    values = small.reshape(-1).astype(np.float64)
    keep = np.ones(values.shape, dtype=bool)
    coefficients = np.zeros(6)
    for _ in range(rounds):
        if keep.sum() < 12:
            break
        # Least squares by the normal equations (6x6): einsum, not BLAS, whose threads only cost here.
        chosen = terms[keep]
        normal = np.einsum("ij,ik->jk", chosen, chosen) + 1e-9 * np.eye(6)
        coefficients = np.linalg.solve(normal, np.einsum("ij,i->j", chosen, values[keep]))
        residual = values - terms @ coefficients
        spread = 1.4826 * float(np.median(np.abs(residual[keep] - np.median(residual[keep]))))
        kept = np.abs(residual) <= 2.5 * max(spread, 0.01)
        if np.array_equal(kept, keep):
            break
        keep = kept
    height, width = gray.shape
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    y = (y + 0.5) / height * 2 - 1
    x = (x + 0.5) / width * 2 - 1
    c = coefficients.astype(np.float32)
    return c[0] + c[1] * x + c[2] * y + c[3] * x * x + c[4] * x * y + c[5] * y * y


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold for values in [0, 1]: the level that maximises the variance between the two groups."""
    counts, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    counts = counts.astype(np.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    weight_low = np.cumsum(counts)
    weight_high = weight_low[-1] - weight_low
    mass_low = np.cumsum(counts * centres)
    mean_low = mass_low / np.maximum(weight_low, 1e-12)
    mean_high = (mass_low[-1] - mass_low) / np.maximum(weight_high, 1e-12)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return float(edges[int(np.argmax(between)) + 1])


def _runs(mask: np.ndarray, length: int, axis: int) -> np.ndarray:
    """The pixels of ``mask`` that belong to a straight run of at least ``length`` along ``axis``."""
    if length <= 1:
        return mask.copy()
    share = ndimage.uniform_filter1d(mask.astype(np.float32), length, axis=axis, mode="constant")
    eroded = share >= 1 - 1e-4
    grown = ndimage.uniform_filter1d(eroded.astype(np.float32), length, axis=axis, mode="constant") > 1e-4
    return grown & mask


def remove_lines(mask: np.ndarray, ink: np.ndarray, *, span: float = 0.6, thickness: float = 0.03):
    """Take ruled lines, margins and frames out of ``mask``; fill the ink they crossed from either side.

    A line is a straight horizontal (or vertical) run of marks over ``span`` of
    the picture's width (height), reaching to within 8% of both its edges,
    whose thickness is at most ``thickness`` of its height (width); a digit's
    own strokes are thicker than that whenever they are that long. Pictures
    under 64 pixels (MNIST's own, a small drawing) have no lines to remove.
    Returns ``(mask, ink, lines)``.
    """
    height, width = mask.shape
    lines = np.zeros_like(mask)
    if max(height, width) < 64:
        return mask, ink, lines
    for axis, length, across in ((1, width, height), (0, height, width)):
        runs = _runs(mask, max(2, int(span * length)), axis)
        if not runs.any():
            continue
        labels, count = ndimage.label(runs)
        for index, box in enumerate(ndimage.find_objects(labels), start=1):
            part = labels[box] == index
            extent = part.shape[1] if axis == 1 else part.shape[0]
            start, stop = box[axis].start, box[axis].stop
            near_edges = start <= 0.08 * length and stop >= 0.92 * length
            thick = part.sum() / max(extent, 1)
            if near_edges and thick <= max(2.0, thickness * across):
                lines[box] |= part
    if not lines.any():
        return mask, ink, lines
    wide = ndimage.binary_dilation(lines, iterations=1)
    kept = mask & ~wide
    # Ink where a line crossed a stroke: closed over from the ink on either side of it.
    filled = ink.copy()
    filled[wide] = 0.0
    reach = int(thickness * max(height, width)) + 3
    closed = np.maximum(ndimage.grey_closing(filled, size=(reach, 1)), ndimage.grey_closing(filled, size=(1, reach)))
    filled[wide] = closed[wide]
    level = float(ink[mask].min()) if mask.any() else 0.5
    kept |= wide & (filled >= level)
    return kept, filled, lines


@dataclass
class Blob:
    """One connected mark: its slice of the picture, its pixels and its ink."""

    label: int
    box: tuple[slice, slice]
    pixels: int
    ink: float

    @property
    def height(self) -> int:
        return self.box[0].stop - self.box[0].start

    @property
    def width(self) -> int:
        return self.box[1].stop - self.box[1].start


def _blobs(mask: np.ndarray, ink: np.ndarray) -> tuple[np.ndarray, list[Blob]]:
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return labels, []
    boxes = ndimage.find_objects(labels)
    pixels = np.bincount(labels.ravel(), minlength=count + 1)
    sums = np.bincount(labels.ravel(), weights=ink.ravel().astype(np.float64), minlength=count + 1)
    blobs = [Blob(i, boxes[i - 1], int(pixels[i]), float(sums[i])) for i in range(1, count + 1)]
    return labels, blobs


def _touches(blob: Blob, shape: tuple[int, int]) -> tuple[bool, bool, bool, bool]:
    rows, cols = blob.box
    return rows.start == 0, rows.stop == shape[0], cols.start == 0, cols.stop == shape[1]


def _near(a: tuple[slice, slice], b: tuple[slice, slice], gap: float) -> bool:
    """Whether two boxes are within ``gap`` pixels of each other."""
    dy = max(a[0].start - b[0].stop, b[0].start - a[0].stop, 0)
    dx = max(a[1].start - b[1].stop, b[1].start - a[1].stop, 0)
    return max(dy, dx) <= gap


def _union(a: tuple[slice, slice], b: tuple[slice, slice]) -> tuple[slice, slice]:
    return (
        slice(min(a[0].start, b[0].start), max(a[0].stop, b[0].stop)),
        slice(min(a[1].start, b[1].start), max(a[1].stop, b[1].stop)),
    )


@dataclass
class Reading:
    """What ``read_picture`` found, stage by stage.

    Attributes
    ----------
    prepared : np.ndarray
        uint8 (28, 28), MNIST-style: white ink on black.
    readable : bool
        Whether one digit-like mark was found.
    reason : str or None
        Why not, in a sentence (None when readable).
    steps : dict of str to np.ndarray
        Every stage, in order (see ``preparation_steps``).
    marks : str
        ``"dark"`` (dark marks on a light background) or ``"light"``.
    threshold : float
        The ink level chosen by Otsu's method (0-1, on the ink scale).
    blobs : int
        How many marks (connected blobs) the mask held after the lines were removed.
    lines : int
        How many pixels of straight lines were removed (at the working size).
    zoomed : bool
        Whether the digit was read again from a close crop at a higher resolution.
    """

    prepared: np.ndarray
    readable: bool
    reason: str | None
    steps: dict[str, np.ndarray] = field(repr=False)
    marks: str = "dark"
    threshold: float = 0.5
    blobs: int = 0
    lines: int = 0
    zoomed: bool = False


def _centred(fitted: np.ndarray) -> np.ndarray:
    total = float(fitted.sum())
    centre_row = float(fitted.sum(axis=1) @ np.arange(fitted.shape[0])) / total
    centre_col = float(fitted.sum(axis=0) @ np.arange(fitted.shape[1])) / total
    top = int(np.clip(np.round(CENTRE - centre_row), 0, SIZE - fitted.shape[0]))
    left = int(np.clip(np.round(CENTRE - centre_col), 0, SIZE - fitted.shape[1]))
    prepared = np.zeros((SIZE, SIZE), dtype=np.uint8)
    prepared[top : top + fitted.shape[0], left : left + fitted.shape[1]] = np.round(fitted * 255).astype(np.uint8)
    return prepared


def _fit_box(cropped: np.ndarray) -> np.ndarray:
    height, width = cropped.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))  # PIL: (width, height)
    fitted = np.asarray(Image.fromarray(cropped).resize(size, Image.Resampling.BILINEAR), dtype=np.float32)
    fitted = np.clip(fitted, 0, None)
    return fitted / max(float(fitted.max()), 1e-6)  # the strongest ink is full white, as in MNIST


def _read(source: np.ndarray, *, zoom: bool = True, scale_to_source: float = 1.0) -> Reading:
    gray = _resize_gray(source, WORKING_SIZE)
    to_source = max(source.shape) / max(gray.shape) * scale_to_source  # working pixels -> pixels as sent
    background = fit_background(gray)
    residual = gray - background
    # Which side are the marks on? The side that stands out more, beyond the noise.
    spread = 1.4826 * float(np.median(np.abs(residual - np.median(residual))))
    floor = 3 * max(spread, 0.005)
    dark_mass = float(np.square(np.clip(-residual - floor, 0, None)).sum())  # squared: contrast counts more than area
    light_mass = float(np.square(np.clip(residual - floor, 0, None)).sum())
    marks = "dark" if dark_mass >= light_mass else "light"
    raw_ink = np.clip(-residual if marks == "dark" else residual, 0, None).astype(np.float32)
    smooth = ndimage.gaussian_filter(raw_ink, sigma=max(0.6, max(gray.shape) / 400), truncate=2.5)
    strongest = float(smooth.max())
    if strongest < MIN_CONTRAST:
        level = float(np.median(background))
        raise NoInkError(
            f"no ink found: nothing stands out from the background (brightness {level:.2f} on a 0-1 scale) "
            f"by more than {strongest:.2f}; expected one digit, dark on light paper or light on a dark background, "
            f"that stands out by at least {MIN_CONTRAST}."
        )
    ink = np.clip(smooth / strongest, 0, 1)
    threshold = float(np.clip(otsu_threshold(ink), 0.2, 0.6))
    mask = ink > threshold
    mask, ink, lines = remove_lines(mask, ink)
    labels, blobs = _blobs(mask, ink)
    steps: dict[str, np.ndarray] = {"grayscale": gray, "background": background, "ink": ink}
    steps["mask"] = mask.astype(np.float32) + 0.35 * lines  # the lines removed show in grey
    if not blobs:
        raise NoInkError(
            "no digit found: the only marks are straight lines across the picture (ruled lines or a frame); "
            "expected one digit."
        )
    shape = mask.shape

    def score(blob: Blob) -> float:  # a mark across the whole picture is more likely an edge or a frame
        touches = _touches(blob, shape)
        return blob.ink * (0.3 if (touches[0] and touches[1]) or (touches[2] and touches[3]) else 1.0)

    candidates = blobs
    reason = None
    best = max(candidates, key=score)
    chosen = [best]
    box = best.box
    gap = 0.12 * max(best.height, best.width) + 2
    for blob in sorted(candidates, key=lambda b: -b.ink):
        if blob is best or blob.ink < 0.01 * best.ink:
            continue
        merged = _union(box, blob.box)
        height, width = merged[0].stop - merged[0].start, merged[1].stop - merged[1].start
        if _near(box, blob.box, gap) and width <= 1.25 * height and height <= 1.3 * max(best.height, best.width):
            chosen.append(blob)
            box = merged
    # Marks of about the same size as the digit, left out: several digits, or a word.
    rivals = [b for b in candidates if b not in chosen and b.ink >= 0.35 * best.ink and b.height >= 0.6 * best.height]
    keep = np.isin(labels, [b.label for b in chosen])
    keep = ndimage.binary_dilation(keep, iterations=2) & (ink > 0.5 * threshold)
    sharp = np.clip(raw_ink / strongest, 0, 1)  # the ink itself, not smoothed, for the digit ...
    if lines.any():  # ... except where a line was: there, the ink filled in from either side
        crossed = ndimage.binary_dilation(lines, iterations=1)
        sharp[crossed] = ink[crossed]
    digit = np.where(keep, sharp, 0.0).astype(np.float32)
    steps["digit"] = digit
    box_height, box_width = box[0].stop - box[0].start, box[1].stop - box[1].start
    filled = sum(b.pixels for b in chosen) / max(1, box_height * box_width)
    tall = max(box_height, box_width) * to_source
    # A digit small in a large frame: read it again from a close crop at the picture's own resolution.
    factor = max(source.shape) / max(gray.shape)
    if zoom and factor >= 1.5 and max(box_height, box_width) < 64 and reason is None:
        margin = max(box_height, box_width) * 0.75
        top = int(max(0, (box[0].start - margin) * factor))
        bottom = int(min(source.shape[0], (box[0].stop + margin) * factor))
        left = int(max(0, (box[1].start - margin) * factor))
        right = int(min(source.shape[1], (box[1].stop + margin) * factor))
        try:
            closer = _read(source[top:bottom, left:right], zoom=False, scale_to_source=scale_to_source)
        except NoInkError:
            closer = None
        if closer is not None:
            closer.zoomed = True
            closer.steps = {
                "grayscale": gray,
                "close crop": closer.steps["grayscale"],
                **{k: v for k, v in closer.steps.items() if k != "grayscale"},
            }
            return closer
    cropped = digit[box]
    fitted = _fit_box(cropped)
    prepared = _centred(fitted)
    steps.update({"cropped": cropped, "fitted": fitted, "prepared": prepared})
    if reason is None:
        if tall < MIN_DIGIT_PIXELS:
            reason = (
                f"the mark is only {tall:.0f} pixels tall: too small to read as a digit "
                f"(at least {MIN_DIGIT_PIXELS} pixels)."
            )
        elif box_width > 1.6 * box_height:
            reason = (
                f"the mark is {box_width / box_height:.1f} times as wide as it is tall: a digit is "
                f"taller than it is wide (a word, a dash or several digits?)."
            )
        elif filled > 0.82 and min(box_height, box_width) > 6:
            reason = f"the mark is a solid block ({filled:.0%} of its box filled), not pen strokes."
        elif rivals:
            reason = (
                f"there are {len(rivals) + 1} marks of about the same size: the picture seems to hold "
                f"several digits or characters, not one digit."
            )
    return Reading(prepared, reason is None, reason, steps, marks, threshold, len(blobs), int(lines.sum()))


def read_picture(image: Any) -> Reading:
    """Read one picture: every stage of the preparation and whether it looks like one digit.

    See the module's docstring for the steps. ``image`` is anything
    ``grayscale`` takes (PIL image, array, tensor, file bytes, path).

    Raises
    ------
    NoInkError
        Nothing stands out from the background (a blank picture), or only straight lines do.
    UnreadableImageError, ImageTooLargeError, NotAnImageError
        As ``read_image``, for file bytes; ``UnreadableImageError`` also for an array of the wrong shape.
    """
    return _read(_source_gray(image))


def read_digit(image: Any) -> tuple[np.ndarray, bool, str | None]:
    """A picture of one digit made MNIST-style, and whether it could be read as one digit.

    Returns
    -------
    (prepared, readable, reason)
        ``prepared``: uint8 (28, 28), white ink on black, ready for ``top_k``;
        ``readable``: False when no mark looks like one digit (too small, a
        solid block, much wider than tall, several marks of the same size);
        ``reason``: a sentence saying why when not readable, else None.

    Raises
    ------
    NoInkError
        A blank picture (nothing stands out), or one with only straight lines.
    UnreadableImageError, ImageTooLargeError, NotAnImageError
        Bad file bytes (see ``read_image``) or an array of the wrong shape.
    """
    reading = read_picture(image)
    return reading.prepared, reading.readable, reading.reason


def judge(
    readable: bool, reason: str | None, predictions: Sequence[Sequence], *, min_confidence: float = MIN_CONFIDENCE
) -> tuple[bool, str | None]:
    """The final verdict: the picture's (``read_digit``), then the model's own doubt.

    ``predictions`` are ``[(digit, probability), ...]``, best first. A readable
    picture whose best guess has less than ``min_confidence`` is unreadable too.
    """
    if not readable:
        return False, reason
    digit, probability = predictions[0]
    if probability < min_confidence:
        return False, (
            f"the model is unsure: its best guess, {int(digit)}, has only {float(probability):.0%} "
            f"(an answer needs {min_confidence:.0%})."
        )
    return True, None


def preparation_steps(image: Any) -> dict[str, np.ndarray]:
    """Every stage of ``prepare_digit``, in order, for pictures and for checking.

    Returns
    -------
    dict of str to np.ndarray
        ``"grayscale"``: brightness 0-1 at the working size (white paper is 1);
        ``"background"``: the smooth surface fitted to it;
        ``"ink"``: how far each pixel stands out from the background, on the
        side the marks are on, smoothed, the strongest scaled to 1 (so a dark
        digit on light paper and a light digit on a dark board both become
        light ink on black);
        ``"mask"``: the pixels over Otsu's threshold (1), the straight lines
        removed from it (grey);
        ``"close crop"`` (only for a digit small in a large frame): the crop
        read again at a higher resolution;
        ``"digit"``: the ink of the chosen blob(s) only;
        ``"cropped"``: the digit's box; ``"fitted"``: scaled so that its longer
        side is 20 pixels; ``"prepared"``: uint8 (28, 28), pasted with its
        centre of mass at pixel (14, 14), as in MNIST.
    """
    return read_picture(image).steps


def prepare_digit(image: Any) -> np.ndarray:
    """Make a picture of one digit look like an MNIST digit: uint8 ``(28, 28)``, white ink on black.

    The preparation of ``read_digit`` (background removed, Otsu's threshold,
    lines dropped, the most digit-like blob kept, cropped, fitted in 20x20,
    centred by mass), without its verdict.

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
    return read_picture(image).prepared


def raw_resize(image: Any) -> np.ndarray:
    """The naive way: the whole picture squeezed to 28x28 as it is (no inversion, no crop), uint8."""
    gray = grayscale(image)
    small = Image.fromarray(gray).resize((SIZE, SIZE), Image.Resampling.BILINEAR)
    return np.round(np.clip(np.asarray(small), 0, 1) * 255).astype(np.uint8)


_TITLES = {
    "grayscale": "as given",
    "background": "background",
    "ink": "ink (background removed)",
    "mask": "Otsu's threshold",
    "close crop": "read closer",
    "digit": "the digit's blob",
    "cropped": "cropped",
    "fitted": "fitted in 20x20",
    "prepared": "28x28, centred",
}


def show_preparation(image: Any, size: float = 1.5, predictions: Sequence[Sequence] | None = None):
    """Draw every stage of ``read_picture`` for one image, in a row, with its verdict; return the figure."""
    import matplotlib.pyplot as plt

    reading = read_picture(image)
    steps = reading.steps
    fig, axes = plt.subplots(1, len(steps), figsize=(size * len(steps), size * 1.35))
    for ax, (name, picture) in zip(axes, steps.items(), strict=True):
        if picture.dtype == np.uint8:
            ax.imshow(picture, cmap="gray", vmin=0, vmax=255)
        else:
            ax.imshow(picture, cmap="gray", vmin=0, vmax=1)
        height, width = picture.shape
        ax.set_title(f"{_TITLES.get(name, name)}\n{width}x{height}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    verdict = "readable as one digit" if reading.readable else f"not readable: {reading.reason}"
    fig.suptitle(verdict, fontsize=8, y=0.02, va="bottom", wrap=True)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig
