"""helpers.data: the bundled sample, md5 checks, the offline fallback and the full-set path."""

from __future__ import annotations

import gzip
import http.server
import shutil
import socket
import threading
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
    monkeypatch.setattr(data, "_fetch", no_network)
    assert load_mnist(data_root).source == "sample"
    assert load_mnist(data_root, download=True).source == "sample"


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


def test_the_default_mirrors_are_torchvisions():
    from torchvision.datasets import MNIST

    assert data.default_mirrors() == tuple(MNIST.mirrors)
    assert all(mirror.endswith("/") for mirror in data.default_mirrors())


# --- Downloads from a real HTTP server on localhost ------------------------------------------
#
# The server serves the bundled sample's files under the full set's names (the real full set
# is not in the repository) and ``full_files`` is pointed at their md5 sums, so the whole path
# runs for real: HTTP, chunked reading, md5, the temporary folder, the move into place.
# Each mirror prefix picks a behaviour: good files, wrong bytes, a truncated body, a 404, or a
# server that trickles one byte at a time.


class _Mirror(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    served: list[str] = []

    def log_message(self, *args):  # keep the test output quiet
        pass

    def do_GET(self):
        _, behaviour, name = self.path.split("/", 2)
        self.served.append(f"{behaviour}/{name}")
        body = self.files.get(name)
        if behaviour == "missing" or body is None:
            self.send_error(404, "Not Found")
            return
        if behaviour == "wrong":
            body = gzip.compress(b"not mnist at all" * 100)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if behaviour == "truncated":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if behaviour == "trickle":
            try:
                for i in range(len(body)):
                    self.wfile.write(body[i : i + 1])
                    self.wfile.flush()
                    time.sleep(0.3)
            except OSError:  # the client gave up, as it should
                return
            return
        self.wfile.write(body)


@pytest.fixture
def local_mirror(data_root, monkeypatch):
    """A local HTTP server holding the stand-in full set; yields its base URL and ``{name: md5}``."""
    sample = data_root / data.SAMPLE_FOLDER
    source_of = {full[0]: sample / part[0] for full, part in zip(data.full_files(), SAMPLE_FILES, strict=True)}
    monkeypatch.delenv("MNIST_OFFLINE", raising=False)
    monkeypatch.setattr(data, "_download_failed", {})
    _Mirror.files = {name: path.read_bytes() for name, path in source_of.items()}
    _Mirror.served = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Mirror)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", {name: md5sum(path) for name, path in source_of.items()}
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def mirror_server(local_mirror, monkeypatch):
    """The local mirror, with ``full_files`` pointed at its sums; yields its base URL."""
    url, sums = local_mirror
    files = tuple((name, sums[name], role) for name, _, role in data.full_files())
    monkeypatch.setattr(data, "full_files", lambda: files)
    return url


def test_checksums_stand_in_for_the_published_sums(data_root, local_mirror):
    url, sums = local_mirror
    without = load_mnist(data_root, mirrors=[f"{url}/good/"])  # torchvision's sums: every file "wrong"
    assert without.source == "sample"
    data._download_failed.clear()
    mnist = load_mnist(data_root, mirrors=[f"{url}/good/"], checksums=sums)
    assert mnist.source == "full"
    with pytest.raises(ValueError, match="missing: t10k-labels"):
        load_mnist(data_root, checksums={name: md5 for name, md5 in sums.items() if "t10k-labels" not in name})


def test_a_sums_file_counts_only_in_a_data_folder_outside_the_repository(data_root, local_mirror, monkeypatch):
    url, sums = local_mirror
    load_mnist(data_root, mirrors=[f"{url}/good/"], checksums=sums)  # downloaded and verified
    assert load_mnist(data_root, download=False).source == "sample", "published sums: not the real full set"
    lines = [f"{md5}  {name}" for name, md5 in sums.items()]
    (data_root / data.FULL_SUMS_FILE).write_text("# made by the test\n" + "\n".join(lines) + "\n")
    assert data.read_sums_file(data_root / data.FULL_SUMS_FILE) == sums
    assert load_mnist(data_root, download=False).source == "full"
    # The same folder taken for the repository's own data/: its sums file is ignored.
    monkeypatch.setattr(data, "REPOSITORY_DATA_DIR", data_root)
    assert load_mnist(data_root, download=False).source == "sample"


def test_a_malformed_sums_file_is_reported(data_root):
    (data_root / data.FULL_SUMS_FILE).write_text("not-an-md5 train-images-idx3-ubyte.gz\n")
    with pytest.raises(MnistFileError, match="line 1: expected '<md5>  <file name>'"):
        load_mnist(data_root, download=False)


def _nothing_half_written(root: Path) -> None:
    assert not (root / data.FULL_FOLDER).exists()
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []


def test_download_from_a_good_mirror_lands_verified_in_its_own_folder(data_root, mirror_server, capsys):
    mnist = load_mnist(data_root, mirrors=[f"{mirror_server}/good/"])
    assert mnist.source == "full"
    assert mnist.train_images.shape == (10_000, 28, 28)
    names = sorted(name for name, _, _ in data.full_files())
    assert sorted(p.name for p in (data_root / data.FULL_FOLDER).iterdir()) == names
    assert [p.name for p in data_root.iterdir() if p.name.startswith(".download")] == []
    assert "full set" in capsys.readouterr().out


@pytest.mark.parametrize("behaviour", ["wrong", "truncated", "missing"])
def test_a_bad_mirror_is_skipped_for_the_next(data_root, mirror_server, behaviour):
    mnist = load_mnist(data_root, mirrors=[f"{mirror_server}/{behaviour}/", f"{mirror_server}/good/"])
    assert mnist.source == "full"
    tried = [entry.split("/")[0] for entry in _Mirror.served]
    assert tried.count(behaviour) == 4 and tried.count("good") == 4, "each file: the bad mirror, then the good"


@pytest.mark.parametrize(
    ("behaviour", "said"),
    [("wrong", "md5"), ("truncated", "truncated"), ("missing", "HTTP 404")],
)
def test_when_every_mirror_fails_the_sample_is_used_and_the_reason_printed(
    data_root, mirror_server, behaviour, said, capsys
):
    start = time.perf_counter()
    mnist = load_mnist(data_root, mirrors=[f"{mirror_server}/{behaviour}/", f"{mirror_server}/missing/"])
    assert time.perf_counter() - start < 10
    assert mnist.source == "sample"
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "full set not used: download failed" in line and said in line and "HTTP 404" in line
    _nothing_half_written(data_root)


def test_a_trickling_server_is_abandoned_in_bounded_time(data_root, mirror_server, monkeypatch, capsys):
    """One byte every 0.3 s never trips the socket timeout; the per-file time limit stops it."""
    monkeypatch.setattr(data, "FILE_TIME_LIMIT", 2.0)
    start = time.perf_counter()
    mnist = load_mnist(data_root, mirrors=[f"{mirror_server}/trickle/"])
    seconds = time.perf_counter() - start
    assert mnist.source == "sample"
    assert seconds < 2.0 + 2 * data.DOWNLOAD_TIMEOUT, f"took {seconds:.1f} s"
    assert "slower than 2 s" in capsys.readouterr().out
    _nothing_half_written(data_root)


def test_an_unreachable_mirror_falls_back_within_seconds(data_root, mirror_server, capsys):
    # A port on this machine where nothing listens: the connection is refused at once.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.perf_counter()
    mnist = load_mnist(data_root, mirrors=[f"http://127.0.0.1:{port}/"])
    assert time.perf_counter() - start < 5
    assert mnist.source == "sample"
    assert "refused" in capsys.readouterr().out.lower()
    _nothing_half_written(data_root)


def test_a_hanging_name_lookup_is_abandoned(data_root, mirror_server, monkeypatch):
    monkeypatch.setattr(data, "FILE_TIME_LIMIT", 0.5)
    monkeypatch.setattr(data, "DOWNLOAD_TIMEOUT", 0.2)

    def hang(*args, **kwargs):
        time.sleep(4)  # far longer than the limits; the download thread is abandoned
        raise OSError("name lookup timed out")

    monkeypatch.setattr(socket, "getaddrinfo", hang)
    start = time.perf_counter()
    assert load_mnist(data_root, mirrors=["http://mnist.invalid/"]).source == "sample"
    assert time.perf_counter() - start < 3


def test_a_failed_download_is_not_retried_in_the_same_session(data_root, mirror_server):
    mirrors = [f"{mirror_server}/missing/"]
    assert load_mnist(data_root, mirrors=mirrors).source == "sample"
    asked = len(_Mirror.served)
    assert load_mnist(data_root, mirrors=mirrors).source == "sample"
    assert len(_Mirror.served) == asked
