"""Loading MNIST: the full set when the network allows, the bundled real sample otherwise.

Introduced in lesson 00 and used by every lesson.

Two copies of MNIST can be in play, and they never share a folder:

* ``data/mnist_full/``: the full set (60,000 training and 10,000 test images),
  downloaded with torchvision's mirrors and checked against torchvision's
  published md5 sums (or, for a data folder outside the repository, such as a
  test's, the sums passed as ``checksums=`` or written in its ``mnist_full.md5``).
* ``data/mnist_sample/``: the bundled real sample (the first 10,000 training
  images and the official 10,000-image test set), checked against the md5 sums
  in ``data/README.md``.

Every ``.gz`` file is md5-verified on every load; it is then decompressed once
into ``data/cache/<copy>/`` (written atomically, with its own md5 beside it,
also checked on every load) and read with torchvision's IDX readers.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LESSON = 0

__all__ = [
    "DATA_DIR",
    "MnistData",
    "MnistFileError",
    "SAMPLE_FILES",
    "default_mirrors",
    "full_files",
    "load_mnist",
    "md5sum",
    "read_sums_file",
    "verify_files",
]

#: The repository's ``data/`` folder, found relative to this package; the environment
#: variable ``COURSE_DATA_DIR`` points it elsewhere (``tests.any_machine`` uses a fresh one,
#: so that saved weights and caches of one run are not reused by the next).
DATA_DIR = Path(os.environ.get("COURSE_DATA_DIR") or Path(__file__).resolve().parent.parent / "data")

#: The bundled sample: (file name, md5, role). The sums are the ones in data/README.md.
SAMPLE_FILES: tuple[tuple[str, str, str], ...] = (
    ("train-images-first10k-idx3-ubyte.gz", "30b5b8b5440a2fea2949e41cc88c060d", "train_images"),
    ("train-labels-first10k-idx1-ubyte.gz", "f024a245fcf7c5ee92731df3f4bbe39a", "train_labels"),
    ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3", "test_images"),
    ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c", "test_labels"),
)

#: The repository's own ``data/`` folder (whatever ``COURSE_DATA_DIR`` says): a sums file
#: there is never read, so no learner's copy can trust other sums than torchvision's.
REPOSITORY_DATA_DIR = Path(__file__).resolve().parent.parent / "data"
#: In a data folder outside the repository: md5 sums (``md5sum``'s format) that stand in for
#: torchvision's published ones, e.g. for a test's own 60,000-image set.
FULL_SUMS_FILE = "mnist_full.md5"

SAMPLE_FOLDER = "mnist_sample"
FULL_FOLDER = "mnist_full"
CACHE_FOLDER = "cache"

#: Seconds a single network operation (connect, one read) may wait before giving up.
DOWNLOAD_TIMEOUT = 10.0
#: Seconds one file may take in all, from the first byte asked to the last received: a
#: server that trickles a byte every few seconds never trips the socket timeout, but this.
FILE_TIME_LIMIT = 120.0
#: Bytes read per chunk while downloading.
CHUNK = 1 << 16

_ROLES = ("train_images", "train_labels", "test_images", "test_labels")
# Why the full set could not be had, per list of mirrors, remembered so that a second
# call in the same session does not wait on the network again.
_download_failed: dict[tuple[str, ...], str] = {}


class MnistFileError(RuntimeError):
    """A data file is missing, corrupted or truncated."""


@dataclass(frozen=True, repr=False)
class MnistData:
    """MNIST as numpy arrays.

    Attributes
    ----------
    train_images, test_images : np.ndarray
        uint8 arrays of shape (N, 28, 28), pixel values 0-255.
    train_labels, test_labels : np.ndarray
        int64 arrays of shape (N,), digits 0-9.
    source : str
        ``"full"`` (60,000/10,000) or ``"sample"`` (the bundled real sample:
        the first 10,000 training images and the official 10,000 test images).
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str

    def __repr__(self) -> str:
        return (
            f"MnistData(source={self.source!r}, train={len(self.train_images):,} images, "
            f"test={len(self.test_images):,} images)"
        )

    def describe(self) -> str:
        """One line saying which copy of MNIST this is."""
        n_train, n_test = len(self.train_images), len(self.test_images)
        what = "full set" if self.source == "full" else "bundled real sample"
        return f"MNIST {what}: {n_train:,} training + {n_test:,} test images, md5-verified"


def md5sum(path: Path | str, chunk_size: int = 1 << 20) -> str:
    """Return the hex md5 digest of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def full_files() -> tuple[tuple[str, str, str], ...]:
    """The full set's files as (file name, md5, role), from torchvision's published list."""
    from torchvision.datasets import MNIST

    return tuple((name, md5, role) for (name, md5), role in zip(MNIST.resources, _ROLES, strict=True))


def read_sums_file(path: Path | str) -> dict[str, str]:
    """``{file name: md5}`` from a file in ``md5sum``'s format (``<md5>  <name>`` per line).

    Raises
    ------
    MnistFileError
        When a line is not an md5 sum and a file name.
    """
    sums = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or len(parts[0]) != 32 or any(c not in "0123456789abcdef" for c in parts[0].lower()):
            raise MnistFileError(f"{_show(Path(path))}, line {number}: expected '<md5>  <file name>', got {line!r}.")
        sums[parts[1].lstrip("*")] = parts[0].lower()
    return sums


def _full_files_with(checksums: dict[str, str] | None) -> tuple[tuple[str, str, str], ...]:
    """The full set's files, with ``checksums`` (``{name: md5}``) in place of the published sums."""
    files = full_files()
    if checksums is None:
        return files
    missing = [name for name, _, _ in files if name not in checksums]
    if missing:
        raise ValueError(
            f"checksums= must give an md5 for each of the full set's files; missing: {', '.join(missing)}."
        )
    return tuple((name, checksums[name], role) for name, _, role in files)


def _sums_for(root: Path, checksums: dict[str, str] | None) -> dict[str, str] | None:
    """The sums to check the full set in ``root`` against: ``checksums``, else the data folder's
    own sums file when (and only when) that folder is outside the repository's ``data/``."""
    if checksums is not None:
        return dict(checksums)
    sums = root / FULL_SUMS_FILE
    outside = root.resolve() != REPOSITORY_DATA_DIR.resolve()
    return read_sums_file(sums) if outside and sums.is_file() else None


def verify_files(folder: Path, files: tuple[tuple[str, str, str], ...]) -> None:
    """Check that every file exists and has its expected md5.

    Raises
    ------
    MnistFileError
        Naming the first file that is missing, or whose md5 differs (corrupted
        or truncated), with the expected and the actual sum.
    """
    for name, expected, _ in files:
        path = folder / name
        if not path.is_file():
            raise MnistFileError(f"MNIST file missing: expected {_show(path)}.")
        actual = md5sum(path)
        if actual != expected:
            raise MnistFileError(
                f"MNIST file {_show(path)} is corrupted or truncated: md5 {actual}, expected "
                f"{expected} ({path.stat().st_size:,} bytes). Delete it and restore it "
                "(`git checkout data/` for the bundled sample; a new download for the full set)."
            )


def default_mirrors() -> tuple[str, ...]:
    """torchvision's list of MNIST mirrors (each a URL prefix ending in ``/``), tried in order."""
    from torchvision.datasets import MNIST

    return tuple(MNIST.mirrors)


def load_mnist(
    root: Path | str | None = None,
    *,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    checksums: dict[str, str] | None = None,
) -> MnistData:
    """Load MNIST, preferring the full set and falling back to the bundled sample.

    Prints one line saying which copy is in use (and, for the sample, why).

    Parameters
    ----------
    root : path, optional
        The data folder; defaults to the repository's ``data/``.
    download : bool
        Try to download the full set when it is not there yet. Ignored when the
        environment variable ``MNIST_OFFLINE=1`` is set (as the tests do): then
        only files already on disk are used and nothing touches the network.
    mirrors : sequence of str, optional
        URL prefixes to download the full set's files from, tried in turn for
        each file (default: torchvision's, ``default_mirrors()``). A mirror
        that refuses, answers with an error, sends a wrong or truncated file or
        trickles too slowly (``DOWNLOAD_TIMEOUT`` per read, ``FILE_TIME_LIMIT``
        per file) is skipped for the next; only when every mirror has failed a
        file does this fall back to the sample, saying what failed.
    checksums : dict, optional
        ``{file name: md5}`` for the full set's four files, in place of
        torchvision's published sums (tests serve their own 60,000-image set
        this way). Without it, a data folder outside the repository's own
        ``data/`` may hold them in ``mnist_full.md5`` (``md5sum``'s format);
        in the repository's ``data/`` only the published sums count.

    Returns
    -------
    MnistData
        uint8 images (N, 28, 28) and int64 labels (N,), with ``source`` set to
        ``"full"`` or ``"sample"``.

    Raises
    ------
    MnistFileError
        If the bundled sample is missing or fails its md5 check (a bad full set
        is reported and replaced by the sample instead).
    """
    root = DATA_DIR if root is None else Path(root)
    offline = os.environ.get("MNIST_OFFLINE", "") not in ("", "0")
    mirrors = tuple(default_mirrors() if mirrors is None else mirrors)
    files = _full_files_with(_sums_for(root, checksums))
    reason = _get_full_set(root, files, download=download and not offline, mirrors=mirrors)
    if reason is None:
        data = _read_copy(root / FULL_FOLDER, files, root / CACHE_FOLDER / "full", "full")
        print(f"{data.describe()}.")
        return data
    sample_folder = root / SAMPLE_FOLDER
    if not sample_folder.is_dir():
        raise MnistFileError(
            f"The bundled MNIST sample was not found: expected the folder {_show(sample_folder)} "
            "(it comes with the course repository; run from a clone of it)."
        )
    data = _read_copy(sample_folder, SAMPLE_FILES, root / CACHE_FOLDER / "sample", "sample")
    print(f"{data.describe()} (full set not used: {reason}).")
    return data


def _get_full_set(
    root: Path, files: tuple[tuple[str, str, str], ...], *, download: bool, mirrors: tuple[str, ...]
) -> str | None:
    """Make sure the full set, verified against ``files``' sums, is in ``root/mnist_full``; else say why not."""
    folder = root / FULL_FOLDER
    if folder.is_dir():
        try:
            verify_files(folder, files)
            return None
        except MnistFileError as error:
            problem = str(error)
        if not download:
            return problem
    elif not download:
        if os.environ.get("MNIST_OFFLINE", "") not in ("", "0"):
            return "MNIST_OFFLINE=1 is set"
        return "not downloaded, and download=False"
    if mirrors in _download_failed:
        return _download_failed[mirrors]
    try:
        _download_full_set(folder, files, mirrors)
        return None
    except Exception as error:  # any network or checksum problem means: use the sample
        _download_failed[mirrors] = f"download failed ({error})"
        return _download_failed[mirrors]


def _download_full_set(folder: Path, files: tuple[tuple[str, str, str], ...], mirrors: tuple[str, ...]) -> None:
    """Download every file into a temporary folder, verify it, then move them all into place.

    Each file is tried from each mirror in turn until one copy verifies. The
    temporary folder lies beside ``folder`` and is removed whatever happens, so
    nothing half-written is ever left in ``data/``.
    """
    if not mirrors:
        raise ConnectionError("no mirrors to download from")
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".download-") as tmp:
        for name, md5, _ in files:
            failures = []
            for mirror in mirrors:
                try:
                    _fetch_in_time(mirror + name, Path(tmp) / name, md5)
                    break
                except Exception as error:
                    failures.append(f"{mirror + name}: {error}")
            else:
                raise ConnectionError("; ".join(failures))
        verify_files(Path(tmp), files)
        folder.mkdir(exist_ok=True)
        for name, _, _ in files:
            os.replace(Path(tmp) / name, folder / name)


def _fetch_in_time(url: str, path: Path, md5: str) -> None:
    """``_fetch`` in a background thread, abandoned when it overruns ``FILE_TIME_LIMIT``.

    The socket timeout and the time check inside ``_fetch`` bound reads; the
    thread also bounds what they cannot, such as a name lookup that hangs.
    """
    outcome: list[BaseException | None] = []

    def work() -> None:
        try:
            _fetch(url, path, md5, time.monotonic() + FILE_TIME_LIMIT)
            outcome.append(None)
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(FILE_TIME_LIMIT + 2 * DOWNLOAD_TIMEOUT)
    if not outcome:
        raise TimeoutError(f"no answer within {FILE_TIME_LIMIT:.0f} s")
    if outcome[0] is not None:
        raise outcome[0]


def _fetch(url: str, path: Path, md5: str, deadline: float) -> None:
    """Download ``url`` to ``path`` and check its md5; raise on any error, slowness or mismatch."""
    import http.client
    import urllib.error
    import urllib.request

    from tqdm.auto import tqdm

    digest = hashlib.md5()
    request = urllib.request.Request(url, headers={"User-Agent": "dl-course-helpers"})
    try:
        with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT) as response, open(path, "wb") as out:
            size = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=size, unit="B", unit_scale=True, desc=path.name, leave=False) as bar:
                while chunk := response.read1(CHUNK):
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"slower than {FILE_TIME_LIMIT:.0f} s for the whole file")
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
            received = out.tell()
    except http.client.IncompleteRead as error:
        raise ConnectionError(f"truncated: the connection closed after {len(error.partial):,} bytes") from None
    except urllib.error.HTTPError as error:
        raise ConnectionError(f"HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        raise ConnectionError(str(error.reason)) from None
    if size is not None and received != size:
        raise ConnectionError(f"truncated: {received:,} of {size:,} bytes")
    if digest.hexdigest() != md5:
        raise ConnectionError(f"md5 {digest.hexdigest()}, expected {md5} ({received:,} bytes)")


def _read_copy(folder: Path, files: tuple[tuple[str, str, str], ...], cache: Path, source: str) -> MnistData:
    """Verify the ``.gz`` files, decompress them once into ``cache``, read them."""
    from torchvision.datasets.mnist import read_image_file, read_label_file

    verify_files(folder, files)
    arrays = {}
    for name, md5, role in files:
        raw = _decompressed(folder / name, md5, cache)
        reader = read_image_file if role.endswith("images") else read_label_file
        arrays[role] = reader(str(raw)).numpy()
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.shape[1:] != (28, 28) or len(images) != len(labels):
            raise MnistFileError(
                f"MNIST {split} files in {_show(folder)} do not match: images {images.shape}, "
                f"labels {labels.shape}; expected (N, 28, 28) images and N labels."
            )
    return MnistData(
        train_images=arrays["train_images"].astype(np.uint8, copy=False),
        train_labels=arrays["train_labels"].astype(np.int64, copy=False),
        test_images=arrays["test_images"].astype(np.uint8, copy=False),
        test_labels=arrays["test_labels"].astype(np.int64, copy=False),
        source=source,
    )


def _decompressed(gz_path: Path, gz_md5: str, cache: Path) -> Path:
    """Return the decompressed copy of a verified ``.gz`` file, making it if needed.

    Beside each decompressed file lies ``<name>.md5`` holding its own md5 and the
    md5 of the ``.gz`` it came from; both are checked, and a stale or damaged
    copy is made again from the verified ``.gz``.
    """
    raw = cache / gz_path.name.removesuffix(".gz")
    stamp = raw.with_name(raw.name + ".md5")
    if raw.is_file() and stamp.is_file():
        recorded = stamp.read_text().split()
        if len(recorded) == 2 and recorded[1] == gz_md5 and md5sum(raw) == recorded[0]:
            return raw
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=cache, prefix=".tmp-", delete=False) as tmp:
        try:
            with gzip.open(gz_path, "rb") as source:
                shutil.copyfileobj(source, tmp)
        except (OSError, EOFError) as error:
            tmp.close()
            os.unlink(tmp.name)
            raise MnistFileError(f"Could not decompress {_show(gz_path)}: {error}") from error
    os.replace(tmp.name, raw)
    _write_atomically(stamp, f"{md5sum(raw)} {gz_md5}\n")
    return raw


def _write_atomically(path: Path, text: str) -> None:
    """Write text to a temporary file beside ``path`` and rename it into place."""
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".tmp-", delete=False) as tmp:
        tmp.write(text)
    os.replace(tmp.name, path)


def _show(path: Path) -> str:
    """A path as a learner should see it: relative to the repository when inside it."""
    try:
        return str(path.resolve().relative_to(DATA_DIR.parent))
    except ValueError:
        return str(path)
