"""The ``full`` suite: every lesson as Colab runs it, on a 60,000-image MNIST (``pytest -m full``).

Not run by default (``tests/conftest.py`` skips it unless ``-m full`` or ``COURSE_FULL=1``):
it takes many minutes on a 2-core CPU (the README gives the measured time). It builds a
60,000-image training set from real digits (``tests.full_data``), serves it from an HTTP
server on 127.0.0.1, downloads it into a fresh data folder through ``load_mnist``'s real
download and md5 code, then executes every notebook top to bottom on a fresh kernel with
``MNIST_OFFLINE=0`` and that folder (``COURSE_DATA_DIR``), without the CPU pins. For each
lesson it checks: no error, no printed verdict that failed (❌, FAIL, "NOT as expected"), no
printed line that mentions the sample; and at the end that the saved models record the full set.
"""

from __future__ import annotations

import functools
import http.server
import re
import threading
import time

import nbformat
import pytest

from helpers.data import load_mnist
from helpers.training import read_record
from tests.any_machine import fresh_data_dir
from tests.full_data import make_full_set, write_sums_file
from tests.nbtools import NOTEBOOKS, notebook_paths
from tests.run_notebooks import ENVIRONMENT, run

pytestmark = pytest.mark.full

FAILED_VERDICT = re.compile(r"❌|\bFAIL(ED)?\b|NOT as expected")
MENTIONS_SAMPLE = re.compile(r"\bsample\b", re.IGNORECASE)
TIMES: dict[str, float] = {}


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output quiet
        pass


@pytest.fixture(scope="module")
def full_data_dir(tmp_path_factory):
    """A fresh data folder into which the 60,000-image set was downloaded from a local mirror."""
    parent = tmp_path_factory.mktemp("full")
    served = parent / "mirror"
    start = time.perf_counter()
    data_dir = fresh_data_dir(parent)
    sums = make_full_set(served, load_mnist(data_dir, download=False))
    write_sums_file(data_dir, sums)
    handler = functools.partial(_QuietFiles, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    patch = pytest.MonkeyPatch()
    try:
        patch.setenv("MNIST_OFFLINE", "0")
        mnist = load_mnist(data_dir, mirrors=[f"http://127.0.0.1:{server.server_address[1]}/"])
    finally:
        server.shutdown()
        server.server_close()
        patch.undo()
    assert mnist.source == "full" and mnist.train_images.shape == (60_000, 28, 28)
    print(f"full suite: 60,000-image set made and downloaded in {time.perf_counter() - start:.0f} s")
    yield data_dir
    if TIMES:
        print("full suite, seconds per lesson: " + ", ".join(f"{k} {v:.0f}" for k, v in TIMES.items()))


def _printed_lines(book) -> list[str]:
    lines = []
    for cell in book.cells:
        for output in cell.get("outputs", []):
            text = output.get("text") or output.get("data", {}).get("text/plain", "")
            lines.extend(("".join(text) if isinstance(text, list) else text).splitlines())
    return lines


@pytest.mark.parametrize("notebook", [path.name for path in notebook_paths()], ids=lambda name: name[:2])
def test_lesson_runs_clean_and_truthful_on_full_mnist(full_data_dir, notebook, monkeypatch):
    for key in ENVIRONMENT:  # as a learner's machine: no CPU pins
        if key != "MNIST_OFFLINE":
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("COURSE_PINS", "0")
    monkeypatch.setenv("MNIST_OFFLINE", "0")  # nothing to download: the set is there, verified
    monkeypatch.setenv("COURSE_DATA_DIR", str(full_data_dir))
    book = nbformat.read(NOTEBOOKS / notebook, as_version=4)
    TIMES[notebook[:2]] = run(book, NOTEBOOKS, timeout=2400)  # lesson 08 trains its augmented model on 54,000 images
    lines = _printed_lines(book)
    failed = [line for line in lines if FAILED_VERDICT.search(line)]
    assert not failed, f"{notebook}: printed verdicts that failed on full MNIST: {failed}"
    sample = [line for line in lines if MENTIONS_SAMPLE.search(line)]
    assert not sample, f"{notebook}: printed lines that mention the sample on a full-MNIST run: {sample}"


def test_saved_models_record_the_full_set(full_data_dir):
    for name in ("mnist_cnn.pt", "mnist_cnn_robust.pt"):
        record = read_record(full_data_dir / name)
        assert record is not None and record["source"] == "full", (name, record)
        assert record["train_images"] == 54_000, (name, record)
