"""helpers.data: the bundled sample, md5 checks, the offline fallback and the full-set path."""

from __future__ import annotations

import gzip
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import data
from helpers.data import SAMPLE_FILES, MnistFileError, load_mnist, md5sum


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    """A private copy of data/ holding only the bundled sample."""
    shutil.copytree(data.DATA_DIR / data.SAMPLE_FOLDER, tmp_path / data.SAMPLE_FOLDER)
    return tmp_path


def test_sample_shapes_dtypes_and_source(capsys):
    mnist = load_mnist()
    assert mnist.source == "sample"
    assert mnist.train_images.shape == (10_000, 28, 28)
    assert mnist.test_images.shape == (10_000, 28, 28)
    assert mnist.train_images.dtype == np.uint8 and mnist.test_images.dtype == np.uint8
    assert mnist.train_labels.shape == (10_000,) and mnist.test_labels.shape == (10_000,)
    assert mnist.train_labels.dtype == np.int64 and mnist.test_labels.dtype == np.int64
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and "sample" in printed[0] and "MNIST_OFFLINE" in printed[0]


def test_sample_is_real_mnist():
    mnist = load_mnist()
    # The per-digit counts of the first 10,000 official training labels (data/README.md).
    expected = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
    assert np.bincount(mnist.train_labels).tolist() == expected
    assert np.bincount(mnist.test_labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert mnist.train_labels[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]
    assert mnist.test_labels[:8].tolist() == [7, 2, 1, 0, 4, 1, 4, 9]
    assert mnist.train_images.max() == 255 and mnist.train_images.min() == 0
    assert abs(mnist.train_images.mean() / 255 - 0.1307) < 0.005  # the well-known pixel mean


def test_repr_is_short():
    text = repr(load_mnist())
    assert text == "MnistData(source='sample', train=10,000 images, test=10,000 images)"


def test_cache_is_made_once_and_verified(data_root):
    load_mnist(data_root)
    cached = sorted(p.name for p in (data_root / "cache" / "sample").iterdir())
    assert cached == sorted(
        [name.removesuffix(".gz") for name, _, _ in SAMPLE_FILES]
        + [name.removesuffix(".gz") + ".md5" for name, _, _ in SAMPLE_FILES]
    )
    raw = data_root / "cache" / "sample" / "t10k-labels-idx1-ubyte"
    stamp_before = raw.stat().st_mtime_ns
    load_mnist(data_root)
    assert raw.stat().st_mtime_ns == stamp_before  # not decompressed again


def test_damaged_cache_is_rebuilt_from_the_verified_gz(data_root):
    first = load_mnist(data_root)
    raw = data_root / "cache" / "sample" / "t10k-images-idx3-ubyte"
    content = bytearray(raw.read_bytes())
    content[5000] ^= 0xFF
    raw.write_bytes(bytes(content))
    again = load_mnist(data_root)
    np.testing.assert_array_equal(first.test_images, again.test_images)


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "delete"])
def test_corrupted_sample_is_reported_not_used(data_root, damage):
    path = data_root / data.SAMPLE_FOLDER / "train-images-first10k-idx3-ubyte.gz"
    if damage == "flip a byte":
        content = bytearray(path.read_bytes())
        content[1234] ^= 0x01
        path.write_bytes(bytes(content))
        message = "corrupted or truncated: md5"
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:100_000])
        message = "corrupted or truncated: md5"
    else:
        path.unlink()
        message = "MNIST file missing: expected .*train-images-first10k"
    with pytest.raises(MnistFileError, match=message):
        load_mnist(data_root)


def test_missing_sample_folder_says_where_it_was_expected(tmp_path):
    with pytest.raises(MnistFileError, match="bundled MNIST sample was not found: expected the folder"):
        load_mnist(tmp_path)


def test_offline_never_touches_the_network(data_root, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the network was touched")

    monkeypatch.setattr(data, "_download_full_set", no_network)
    monkeypatch.setattr(data.socket, "create_connection", no_network)
    assert load_mnist(data_root).source == "sample"
    assert load_mnist(data_root, download=True).source == "sample"


def test_failed_download_falls_back_within_seconds_and_says_why(data_root, monkeypatch, capsys):
    monkeypatch.delenv("MNIST_OFFLINE", raising=False)
    monkeypatch.setattr(data, "_download_failed", None)

    def unreachable(address, timeout=None):
        raise OSError("network is unreachable")

    monkeypatch.setattr(data.socket, "create_connection", unreachable)
    start = time.perf_counter()
    mnist = load_mnist(data_root)
    assert time.perf_counter() - start < 5
    assert mnist.source == "sample"
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and "download failed" in line and "no MNIST mirror could be reached" in line
    assert not (data_root / data.FULL_FOLDER).exists()  # nothing half-written
    assert [p.name for p in data_root.iterdir() if p.name.startswith(".download")] == []


def test_hanging_name_lookup_is_abandoned(data_root, monkeypatch):
    monkeypatch.delenv("MNIST_OFFLINE", raising=False)
    monkeypatch.setattr(data, "_download_failed", None)
    monkeypatch.setattr(data, "CONNECT_TIMEOUT", 0.2)

    def hang(*args, **kwargs):
        time.sleep(3)  # far longer than CONNECT_TIMEOUT; the probe thread is abandoned
        raise OSError("name lookup timed out")

    monkeypatch.setattr(data.socket, "create_connection", hang)
    start = time.perf_counter()
    assert load_mnist(data_root).source == "sample"
    assert time.perf_counter() - start < 3


def _fake_full_set(folder: Path, sample: Path) -> tuple[tuple[str, str, str], ...]:
    """Write a small stand-in for the full set (sample files under the full names) and its sums."""
    folder.mkdir()
    files = []
    for (name, _, role), (sample_name, _, _) in zip(data.full_files(), SAMPLE_FILES, strict=True):
        shutil.copy(sample / sample_name, folder / name)
        files.append((name, md5sum(folder / name), role))
    return tuple(files)


def test_verified_full_set_is_used_and_kept_apart(data_root, monkeypatch, capsys):
    files = _fake_full_set(data_root / data.FULL_FOLDER, data_root / data.SAMPLE_FOLDER)
    monkeypatch.setattr(data, "full_files", lambda: files)
    mnist = load_mnist(data_root, download=False)
    assert mnist.source == "full"
    assert "full set" in capsys.readouterr().out
    assert (data_root / "cache" / "full").is_dir()
    assert sorted(p.name for p in (data_root / data.SAMPLE_FOLDER).iterdir()) == sorted(
        name for name, _, _ in SAMPLE_FILES
    )


def test_corrupted_full_set_falls_back_to_the_sample_and_says_so(data_root, monkeypatch, capsys):
    files = _fake_full_set(data_root / data.FULL_FOLDER, data_root / data.SAMPLE_FOLDER)
    monkeypatch.setattr(data, "full_files", lambda: files)
    target = data_root / data.FULL_FOLDER / files[0][0]
    target.write_bytes(target.read_bytes()[:-10])
    mnist = load_mnist(data_root, download=False)
    assert mnist.source == "sample"
    assert "corrupted or truncated" in capsys.readouterr().out


def test_download_is_verified_before_it_is_moved_into_place(data_root, monkeypatch):
    """A download whose md5 does not match never reaches data/mnist_full/."""
    monkeypatch.delenv("MNIST_OFFLINE", raising=False)
    monkeypatch.setattr(data, "_download_failed", None)
    monkeypatch.setattr(data, "_first_reachable", lambda mirrors: mirrors[0])
    import torchvision.datasets.utils as tv_utils

    def fake_download(url, root, filename, md5):
        path = Path(root) / filename
        with gzip.open(path, "wb") as handle:
            handle.write(b"not mnist")
        if md5sum(path) != md5:
            raise RuntimeError("File not found or corrupted.")

    monkeypatch.setattr(tv_utils, "download_url", fake_download)
    mnist = load_mnist(data_root)
    assert mnist.source == "sample"
    assert not (data_root / data.FULL_FOLDER).exists()
    assert [p.name for p in data_root.iterdir() if p.name.startswith(".download")] == []


def test_successful_download_lands_verified_in_its_own_folder(data_root, monkeypatch, capsys):
    monkeypatch.delenv("MNIST_OFFLINE", raising=False)
    monkeypatch.setattr(data, "_download_failed", None)
    monkeypatch.setattr(data, "_first_reachable", lambda mirrors: mirrors[0])
    sample = data_root / data.SAMPLE_FOLDER
    source_of = {full[0]: sample / part[0] for full, part in zip(data.full_files(), SAMPLE_FILES, strict=True)}
    files = tuple((name, md5sum(source_of[name]), role) for name, _, role in data.full_files())
    monkeypatch.setattr(data, "full_files", lambda: files)
    import torchvision.datasets.utils as tv_utils

    def fake_download(url, root, filename, md5):
        shutil.copy(source_of[filename], Path(root) / filename)

    monkeypatch.setattr(tv_utils, "download_url", fake_download)
    mnist = load_mnist(data_root)
    assert mnist.source == "full"
    assert sorted(p.name for p in (data_root / data.FULL_FOLDER).iterdir()) == sorted(n for n, _, _ in files)
    assert "full set" in capsys.readouterr().out
