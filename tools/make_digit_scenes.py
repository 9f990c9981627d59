"""Make lesson 08's picture set: digits placed into photos, ruled pages, screenshots and other scenes.

    python -m tools.make_digit_scenes                 # rebuild data/digit_scenes/ (seed 0)
    python -m tools.make_digit_scenes --out /tmp/val --seed 1   # another set, e.g. to choose settings on
    python -m tools.make_digit_scenes --score         # read every scene with both course models

A test set for ``helpers.picture.read_digit`` and the service: how often a
picture of one digit that is *not* MNIST-style is read right, and how often it
is declined. It is never used for training. Each scene holds one real digit:
an MNIST *test* digit (from the bundled sample's test images) or a page of
the font-digit test set (``data/font_digits/``), scaled up, drawn as ink into
one of eight kinds of scene, ``SCENES_PER_KIND`` of each:

* ``photo``: paper lit unevenly (a strong grey gradient and a vignette), a
  little noise and blur, JPEG;
* ``ruled``: ruled paper (blue-grey lines, sometimes a red margin) with the
  digit written across the lines;
* ``screenshot``: a light page with lines of text above, below and beside a
  bigger digit, PNG;
* ``transparent``: an RGBA PNG, light (mostly) or dark strokes on a fully
  transparent background;
* ``white_on_black``: chalk on a dark board, noise, JPEG;
* ``rotated``: the digit tilted 8 to 20 degrees either way; half the files are
  stored turned by 90 degrees with an EXIF orientation tag that turns them back
  (as a phone stores a photo taken sideways);
* ``small``: a 25 to 50 pixel digit in a 900x675 photo of paper;
* ``shadow``: paper with a soft-edged shadow across part of it.

Writes ``data/digit_scenes/NNN_kind.(png|jpg)`` and ``scenes.csv`` (file, label,
kind, source, index: ``mnist`` test index or ``fonts`` page index). The
default seed gives the committed set; the files are small (JPEG quality 60-80,
modest sizes), about 1.2 MB in all.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "data" / "digit_scenes"
KINDS = ("photo", "ruled", "screenshot", "transparent", "white_on_black", "rotated", "small", "shadow")
SCENES_PER_KIND = 30
_WORDS = (
    "the model reads one digit at a time and answers with its three best guesses lorem ipsum "
    "upload a picture draw a digit click a test digit results accuracy validation epoch batch "
    "figure table page settings account notes homework question answer total sum"
).split()


def _font_path() -> Path | None:
    try:
        import matplotlib
    except ImportError:
        return None
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    return path if path.is_file() else None


def digit_ink(
    source: np.ndarray, height: int, angle: float, rng: np.random.Generator, white_on_black: bool
) -> np.ndarray:
    """A digit image as ink 0-1 (float32), cropped to its strokes, scaled to ``height`` pixels, turned by ``angle``."""
    ink = source.astype(np.float32) / 255
    if not white_on_black:
        ink = 1 - ink
    ink = np.clip((ink - np.percentile(ink, 50)) / max(1e-6, ink.max() - np.percentile(ink, 50)), 0, 1)
    rows = np.flatnonzero((ink > 0.2).any(axis=1))
    cols = np.flatnonzero((ink > 0.2).any(axis=0))
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    scale = height / ink.shape[0]
    size = (max(1, round(ink.shape[1] * scale)), max(1, height))
    big = np.asarray(Image.fromarray(ink).resize(size, Image.Resampling.BICUBIC), dtype=np.float32)
    big = np.clip((big - 0.25) / 0.5, 0, 1)  # pen strokes: a firm edge, not a blurry upscale
    if angle:
        big = np.asarray(Image.fromarray(big).rotate(angle, Image.Resampling.BICUBIC, expand=True), dtype=np.float32)
    return np.clip(big, 0, 1)


def _paste(canvas: np.ndarray, ink: np.ndarray, top: int, left: int, colour: float, strength: float = 1.0) -> None:
    h, w = ink.shape
    region = canvas[top : top + h, left : left + w]
    alpha = ink[: region.shape[0], : region.shape[1]] * strength
    canvas[top : top + h, left : left + w] = region * (1 - alpha) + colour * alpha


def _gradient(h: int, w: int, rng: np.random.Generator, low: float, high: float) -> np.ndarray:
    angle = rng.uniform(0, 2 * np.pi)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    t = np.cos(angle) * x / w + np.sin(angle) * y / h
    t = (t - t.min()) / max(1e-6, t.max() - t.min())
    return (high + (low - high) * t).astype(np.float32)


def _vignette(h: int, w: int, amount: float) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = ((x / w - 0.5) ** 2 + (y / h - 0.5) ** 2) * 2
    return (1 - amount * r).astype(np.float32)


def _blur(canvas: np.ndarray, sigma: float) -> np.ndarray:
    from scipy import ndimage

    return ndimage.gaussian_filter(canvas, sigma) if sigma > 0 else canvas


def _encode(
    gray: np.ndarray, fmt: str, quality: int = 75, rgb_tint: tuple | None = None, exif_turn: int = 0, palette: int = 0
) -> bytes:
    array = np.clip(gray * 255, 0, 255).round().astype(np.uint8)
    image = Image.fromarray(array)
    if rgb_tint is not None:
        image = Image.merge("RGB", [image.point(lambda v, f=f: min(255, round(v * f))) for f in rgb_tint])
    buffer = io.BytesIO()
    if exif_turn:
        # Stored turned; the EXIF orientation tag says how to turn it back upright.
        image = image.rotate(90 if exif_turn == 6 else -90, expand=True)
        exif = Image.Exif()
        exif[0x0112] = exif_turn
        image.save(buffer, format="JPEG", quality=quality, exif=exif.tobytes())
    elif fmt == "jpg":
        image.save(buffer, format="JPEG", quality=quality)
    else:
        if palette:  # a screenshot's few greys: a small palette keeps the file small
            image = image.quantize(palette)
        image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _place(rng: np.random.Generator, h: int, w: int, ink: np.ndarray, margin: int = 4) -> tuple[int, int]:
    top = int(rng.integers(margin, max(margin + 1, h - ink.shape[0] - margin)))
    left = int(rng.integers(margin, max(margin + 1, w - ink.shape[1] - margin)))
    return top, left


def make_scene(kind: str, source: np.ndarray, white_on_black: bool, rng: np.random.Generator) -> tuple[bytes, str]:
    """One scene of ``kind`` with the digit ``source`` in it: (file bytes, extension)."""
    if kind == "photo":
        w = int(rng.integers(320, 400))
        h = int(w * 0.75)
        canvas = _gradient(h, w, rng, rng.uniform(0.35, 0.55), rng.uniform(0.8, 0.95)) * _vignette(h, w, 0.25)
        ink = digit_ink(source, int(h * rng.uniform(0.35, 0.65)), rng.uniform(-6, 6), rng, white_on_black)
        _paste(canvas, ink, *_place(rng, h, w, ink), colour=rng.uniform(0.05, 0.2), strength=rng.uniform(0.75, 0.95))
        canvas = _blur(canvas, rng.uniform(0.5, 1.2)) + rng.normal(0, 0.02, (h, w)).astype(np.float32)
        return _encode(canvas, "jpg", int(rng.integers(55, 70)), rgb_tint=(1.0, 0.97, 0.9)), "jpg"
    if kind == "ruled":
        w, h = 360, 280
        canvas = _gradient(h, w, rng, 0.85, 0.95)
        digit_h = int(h * rng.uniform(0.4, 0.6))
        spacing = int(digit_h / rng.uniform(2.0, 3.0))
        offset = int(rng.integers(0, spacing))
        shade = rng.uniform(0.55, 0.75)
        for y in range(offset, h, spacing):
            canvas[y : y + int(rng.integers(1, 3))] = shade
        if rng.random() < 0.5:
            x = int(w * rng.uniform(0.08, 0.15))
            canvas[:, x : x + 2] = 0.6
        ink = digit_ink(source, digit_h, rng.uniform(-5, 5), rng, white_on_black)
        top, left = _place(rng, h, w, ink)
        left = max(left, int(w * 0.2))
        left = min(left, w - ink.shape[1] - 2)
        _paste(canvas, ink, top, left, colour=rng.uniform(0.1, 0.3), strength=0.9)
        canvas = _blur(canvas, 0.5) + rng.normal(0, 0.01, (h, w)).astype(np.float32)
        return _encode(canvas, "jpg", 65, rgb_tint=(0.92, 0.95, 1.0)), "jpg"
    if kind == "screenshot":
        w, h = 360, 270
        background = rng.choice([1.0, 0.96, 0.93])
        picture = Image.fromarray(np.full((h, w), int(background * 255), np.uint8))
        draw = ImageDraw.Draw(picture)
        font_path = _font_path()
        text_size = int(rng.integers(11, 15))
        font = ImageFont.truetype(str(font_path), text_size) if font_path else ImageFont.load_default()
        digit_h = int(rng.integers(60, 100))
        ink = digit_ink(source, digit_h, 0.0, rng, white_on_black)
        top = int(rng.integers(50, h - digit_h - 40))
        left = int(rng.integers(110, w - ink.shape[1] - 20))
        for y in range(6, h - text_size, text_size + 6):
            if top - 14 <= y + text_size and y <= top + digit_h + 14:
                words = " ".join(rng.choice(_WORDS, 3))  # a short caption left of the digit's area
                draw.text((6, y), words[:14], fill=40, font=font)
                continue
            draw.text((6, y), " ".join(rng.choice(_WORDS, 9)), fill=int(rng.integers(20, 90)), font=font)
        canvas = np.asarray(picture, np.float32) / 255
        _paste(canvas, ink, top, left, colour=0.05, strength=1.0)
        return _encode(canvas, "png", palette=8), "png"
    if kind == "transparent":
        size = int(rng.integers(160, 240))
        ink = digit_ink(source, int(size * rng.uniform(0.5, 0.8)), 0.0, rng, white_on_black)
        alpha = np.zeros((size, size), np.float32)
        top, left = _place(rng, size, size, ink)
        alpha[top : top + ink.shape[0], left : left + ink.shape[1]] = ink[: size - top, : size - left]
        light = rng.random() < 0.7
        colour = np.array([255, 255, 255] if light else [20, 20, 60], np.float32)
        if light and rng.random() < 0.4:
            colour = np.array([255, 230, 120], np.float32)  # a yellow highlighter
        rgba = np.zeros((size, size, 4), np.uint8)
        rgba[..., :3] = colour
        rgba[..., 3] = np.round(alpha * 255)
        buffer = io.BytesIO()
        Image.fromarray(rgba, "RGBA").save(buffer, format="PNG", optimize=True)
        return buffer.getvalue(), "png"
    if kind == "white_on_black":
        w, h = 320, 240
        canvas = _gradient(h, w, rng, 0.08, rng.uniform(0.2, 0.3))
        ink = digit_ink(source, int(h * rng.uniform(0.45, 0.7)), rng.uniform(-5, 5), rng, white_on_black)
        _paste(canvas, ink, *_place(rng, h, w, ink), colour=rng.uniform(0.8, 0.95), strength=0.9)
        canvas = _blur(canvas, 0.7) + rng.normal(0, 0.02, (h, w)).astype(np.float32)
        return _encode(canvas, "jpg", 60, rgb_tint=(0.9, 1.0, 0.92)), "jpg"
    if kind == "rotated":
        w, h = 320, 240
        canvas = _gradient(h, w, rng, 0.7, 0.9)
        angle = float(rng.choice([-1, 1]) * rng.uniform(8, 20))
        ink = digit_ink(source, int(h * rng.uniform(0.45, 0.6)), angle, rng, white_on_black)
        _paste(canvas, ink, *_place(rng, h, w, ink), colour=0.15, strength=0.9)
        canvas = _blur(canvas, 0.6) + rng.normal(0, 0.015, (h, w)).astype(np.float32)
        turn = int(rng.choice([6, 8])) if rng.random() < 0.5 else 0
        return _encode(canvas, "jpg", 65, exif_turn=turn), "jpg"
    if kind == "small":
        w, h = 900, 675  # a 25-50 pixel digit in it: 4-7% of the height
        canvas = _gradient(h, w, rng, 0.6, 0.9) * _vignette(h, w, 0.2)
        ink = digit_ink(source, int(rng.integers(25, 50)), rng.uniform(-5, 5), rng, white_on_black)
        top = int(rng.integers(80, h - 140))
        left = int(rng.integers(80, w - 140))
        _paste(canvas, ink, top, left, colour=0.12, strength=0.9)
        canvas = _blur(canvas, 0.7)
        return _encode(canvas, "jpg", 45), "jpg"
    if kind == "shadow":
        w, h = 360, 270
        canvas = _gradient(h, w, rng, 0.8, 0.93)
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        angle = rng.uniform(0, np.pi)
        edge = (np.cos(angle) * (x - w / 2) + np.sin(angle) * (y - h / 2)) / rng.uniform(8, 25)
        canvas *= 1 - rng.uniform(0.25, 0.45) / (1 + np.exp(-edge))
        ink = digit_ink(source, int(h * rng.uniform(0.4, 0.65)), rng.uniform(-5, 5), rng, white_on_black)
        _paste(canvas, ink, *_place(rng, h, w, ink), colour=0.1, strength=0.85)
        canvas = _blur(canvas, 0.6) + rng.normal(0, 0.015, (h, w)).astype(np.float32)
        return _encode(canvas, "jpg", 65), "jpg"
    raise ValueError(f"unknown kind of scene {kind!r}; expected one of {KINDS}.")


def make_scenes(out: Path, seed: int = 0, per_kind: int = SCENES_PER_KIND) -> list[dict]:
    """Write the scenes and ``scenes.csv`` into ``out``; return the rows."""
    from helpers.data import load_mnist
    from helpers.demo import load_font_digits

    mnist = load_mnist(download=False)
    fonts = load_font_digits()
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    for old in list(out.glob("*.png")) + list(out.glob("*.jpg")):
        old.unlink()
    rows = []
    number = 0
    for kind in KINDS:
        for n in range(per_kind):
            label = n % 10
            if n % 2 == 0:
                choices = np.flatnonzero(mnist.test_labels == label)
                index = int(rng.choice(choices))
                source, white_on_black, origin = mnist.test_images[index], True, "mnist"
            else:
                choices = np.flatnonzero(fonts.labels == label)
                index = int(rng.choice(choices))
                source, white_on_black, origin = fonts.paper[index], False, "fonts"
            data, extension = make_scene(kind, source, white_on_black, rng)
            name = f"{number:03d}_{kind}.{extension}"
            (out / name).write_bytes(data)
            rows.append({"file": name, "label": label, "kind": kind, "source": origin, "index": index})
            number += 1
    with open(out / "scenes.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file", "label", "kind", "source", "index"])
        writer.writeheader()
        writer.writerows(rows)
    return rows


def load_scenes(folder: Path | str = FOLDER) -> list[dict]:
    """The rows of ``scenes.csv`` (``helpers.demo.load_digit_scenes``)."""
    from helpers.demo import load_digit_scenes

    return load_digit_scenes(folder)


def score_scenes(model, folder: Path | str = FOLDER, *, min_confidence: float | None = None) -> dict:
    """Score ``model`` on the scenes as the service reads them (``helpers.demo.score_digit_scenes``)."""
    from helpers.demo import score_digit_scenes

    return score_digit_scenes(model, folder, min_confidence=min_confidence)


def _print_score(name: str, score: dict) -> None:
    print(
        f"{name}: {score['scenes']} scenes, {score['answered']} answered, {score['right']} of them right "
        f"({score['accuracy_answered']:.1%}); {score['declined']} declined ({score['share_declined']:.1%}); "
        f"top-1 on every scene {score['accuracy_all']:.1%}"
    )
    for kind, (answered, right, declined) in score["by_kind"].items():
        print(f"    {kind:15} answered {answered:3}, right {right:3}, declined {declined:3}")
    reasons = Counter(
        (r["reason"] or "").split(":")[0].split(" (")[0][:60] for r in score["results"] if not r["readable"]
    )
    for reason, count in reasons.most_common(6):
        print(f"    declined {count:3}: {reason}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Make (or score) lesson 08's picture set of digit scenes.")
    parser.add_argument("--out", type=Path, default=FOLDER, help="folder to write (default data/digit_scenes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-kind", type=int, default=SCENES_PER_KIND)
    parser.add_argument("--score", action="store_true", help="score both course models on the set in --out")
    parser.add_argument("--min-confidence", type=float, help="score with another MIN_CONFIDENCE")
    args = parser.parse_args(argv)
    if args.score:
        import torch

        from helpers.augment import trained_robust_cnn
        from helpers.data import load_mnist
        from helpers.training import trained_mnist_cnn

        torch.set_num_threads(1)
        mnist = load_mnist(download=False)
        for name, model in [
            ("lesson-05 model", trained_mnist_cnn(data=mnist)),
            ("augmented model", trained_robust_cnn(data=mnist)),
        ]:
            _print_score(name, score_scenes(model.eval(), args.out, min_confidence=args.min_confidence))
        return 0
    rows = make_scenes(args.out, args.seed, args.per_kind)
    total = sum(path.stat().st_size for path in args.out.iterdir() if path.is_file())
    print(f"{len(rows)} scenes written to {args.out} ({total / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
