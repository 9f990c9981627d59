"""Build lesson 08's test set of digits that are not from MNIST: ``data/font_digits/font_digits.npz``.

Run from the repository root::

    python -m tools.make_font_digits            # writes the file, prints its md5
    python -m tools.make_font_digits --check    # rebuilds in memory, compares with the committed file

The digits 0-9 are rendered with Pillow (FreeType) from the DejaVu fonts that
matplotlib ships (Sans, Serif and Sans Mono; regular, bold and oblique/italic),
at three font sizes and two stroke widths, each turned by a random angle up to
10 degrees either way, in dark ink of a random grey on light paper of a random
grey lit unevenly (a gentle slope of brightness across the page), at a random place on a 64x64 page. The file holds the
pages as drawn; ``helpers.demo.load_font_digits`` makes each one MNIST-style
with ``prepare_digit`` when it loads them. The random draws come
from one seeded generator, so a rebuild with the same Pillow and FreeType gives
the same arrays. The set was built, and committed, before anything in lesson
08 (the preparation, the augmentation) was tuned, and must not be changed to
suit a model.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import zipfile
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from helpers.demo import FONT_DIGITS_PATH

#: (family, style, file in matplotlib's mpl-data/fonts/ttf).
FONTS = (
    ("DejaVu Sans", "regular", "DejaVuSans.ttf"),
    ("DejaVu Sans", "bold", "DejaVuSans-Bold.ttf"),
    ("DejaVu Sans", "oblique", "DejaVuSans-Oblique.ttf"),
    ("DejaVu Serif", "regular", "DejaVuSerif.ttf"),
    ("DejaVu Serif", "bold", "DejaVuSerif-Bold.ttf"),
    ("DejaVu Serif", "oblique", "DejaVuSerif-Italic.ttf"),
    ("DejaVu Sans Mono", "regular", "DejaVuSansMono.ttf"),
    ("DejaVu Sans Mono", "bold", "DejaVuSansMono-Bold.ttf"),
    ("DejaVu Sans Mono", "oblique", "DejaVuSansMono-Oblique.ttf"),
)
SIZES = (32, 40, 48)  # font size in pixels (a digit is about 0.73 of it tall: 23 to 35 pixels)
STROKES = (0, 1)  # extra outline width in pixels: 1 makes every stroke 2 pixels thicker
MAX_ROTATION = 10.0  # degrees, either way
PAGE = 64
SEED = 2024


def font_folder() -> Path:
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def render(digit: int, font: ImageFont.FreeTypeFont, stroke: int, rotation: float, rng: np.random.Generator):
    """One digit on a 64x64 page: uint8, dark ink on light paper."""
    coverage = Image.new("L", (2 * PAGE, 2 * PAGE), 0)
    ImageDraw.Draw(coverage).text(
        (PAGE, PAGE), str(digit), font=font, fill=255, anchor="mm", stroke_width=stroke, stroke_fill=255
    )
    coverage = coverage.rotate(rotation, resample=Image.Resampling.BICUBIC, center=(PAGE, PAGE))
    left, top, right, bottom = coverage.getbbox()
    glyph = np.asarray(coverage.crop((left, top, right, bottom)), dtype=np.float32) / 255
    height, width = glyph.shape
    if height > PAGE - 4 or width > PAGE - 4:
        raise ValueError(f"digit {digit} at this size does not fit the page: {width}x{height}")
    row = int(rng.integers(2, PAGE - height - 1))
    col = int(rng.integers(2, PAGE - width - 1))
    ink = rng.uniform(0, 70)
    paper = rng.uniform(190, 250)
    page = np.zeros((PAGE, PAGE), dtype=np.float32)
    page[row : row + height, col : col + width] = glyph
    # Uneven light, as on a photographed page: the paper brightens or darkens across it.
    slope_row, slope_col = rng.uniform(-0.3, 0.3, size=2)
    grid_row, grid_col = np.mgrid[0:PAGE, 0:PAGE] - (PAGE - 1) / 2
    paper = paper + slope_row * grid_row + slope_col * grid_col
    page = paper + (ink - paper) * page
    return np.clip(np.round(page), 0, 255).astype(np.uint8)


def build() -> dict[str, np.ndarray]:
    """Every page and its description, in a fixed order (font, digit, size, stroke)."""
    rng = np.random.default_rng(SEED)
    rows: dict[str, list] = {key: [] for key in ("paper", "labels", "font", "style", "size", "rotation", "stroke")}
    for family, style, file_name in FONTS:
        for size in SIZES:
            font = ImageFont.truetype(str(font_folder() / file_name), size)
            for digit in range(10):
                for stroke in STROKES:
                    rotation = round(float(rng.uniform(-MAX_ROTATION, MAX_ROTATION)), 1)
                    page = render(digit, font, stroke, rotation, rng)
                    rows["paper"].append(page)
                    rows["labels"].append(digit)
                    rows["font"].append(family)
                    rows["style"].append(style)
                    rows["size"].append(size)
                    rows["rotation"].append(rotation)
                    rows["stroke"].append(stroke)
    return {
        "paper": np.stack(rows["paper"]),
        "labels": np.array(rows["labels"], dtype=np.int64),
        "font": np.array(rows["font"]),
        "style": np.array(rows["style"]),
        "size": np.array(rows["size"], dtype=np.int64),
        "rotation": np.array(rows["rotation"], dtype=np.float32),
        "stroke": np.array(rows["stroke"], dtype=np.int64),
    }


def to_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An ``.npz`` file (readable by ``np.load``) with fixed timestamps, so equal arrays give equal bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, member.getvalue())
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare a rebuild with the committed file")
    parser.add_argument("--out", type=Path, default=FONT_DIGITS_PATH)
    args = parser.parse_args(argv)
    arrays = build()
    data = to_bytes(arrays)
    digest = hashlib.md5(data).hexdigest()
    if args.check:
        committed = args.out.read_bytes() if args.out.is_file() else b""
        same = committed == data
        print(f"rebuilt: {len(arrays['labels'])} digits, md5 {digest}; the same as {args.out.name}: {same}")
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.out.with_suffix(".tmp")
    temporary.write_bytes(data)
    temporary.replace(args.out)
    print(f"wrote {args.out.name}: {len(arrays['labels'])} digits, {len(data):,} bytes, md5 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
