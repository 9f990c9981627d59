"""A 60,000-image MNIST training set made from real digits, for the ``full`` suite.

The real full set cannot be downloaded here, so the suite builds a stand-in of the same
size and format from the bundled sample: its 10,000 real training images, then five
distorted copies of them (``helpers.augment.distort``, seeds 1-5: turned, slanted, zoomed,
thickened or thinned, blurred), labels kept; and the official 10,000 test images. The four
files carry torchvision's names and are gzipped IDX files, as the real mirrors serve them,
so ``load_mnist`` downloads and md5-checks them through its real code.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from helpers.augment import distort
from helpers.data import FULL_SUMS_FILE, MnistData, full_files, md5sum

#: Distorted copies of the sample's 10,000 training images added to make 60,000.
COPIES = 5


def _idx_bytes(array: np.ndarray) -> bytes:
    """An array as an IDX file: uint8 images (N, 28, 28) -> magic 2051, labels (N,) -> 2049."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    magic = 2051 if array.ndim == 3 else 2049
    return struct.pack(f">{1 + array.ndim}I", magic, *array.shape) + array.tobytes()


def make_full_set(folder: Path, sample: MnistData) -> dict[str, str]:
    """Write the four gzipped IDX files of the stand-in full set, made from ``sample`` (the bundled
    sample as ``load_mnist`` reads it), into ``folder``; return ``{name: md5}``."""
    if sample.source != "sample":
        raise ValueError(f"make the stand-in from the bundled sample, not the {sample.source} set")
    copies = [distort(sample.train_images, seed=seed).numpy() for seed in range(1, 1 + COPIES)]
    train_images = [sample.train_images, *copies]
    arrays = {
        "train_images": np.concatenate(train_images),
        "train_labels": np.tile(sample.train_labels, 1 + COPIES),
        "test_images": sample.test_images,
        "test_labels": sample.test_labels,
    }
    folder.mkdir(parents=True, exist_ok=True)
    sums = {}
    for name, _, role in full_files():
        path = folder / name
        path.write_bytes(gzip.compress(_idx_bytes(arrays[role]), compresslevel=1, mtime=0))
        sums[name] = md5sum(path)
    return sums


def write_sums_file(data_dir: Path, sums: dict[str, str]) -> Path:
    """Write ``sums`` as the data folder's ``mnist_full.md5`` (``md5sum``'s format)."""
    path = data_dir / FULL_SUMS_FILE
    path.write_text("".join(f"{md5}  {name}\n" for name, md5 in sums.items()), encoding="utf-8")
    return path
