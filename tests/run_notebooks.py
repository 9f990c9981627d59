"""Execute lesson notebooks in place, the way the tests check them; commit what this writes.

Run from the repository root::

    python -m tests.run_notebooks                                  # every lesson
    python -m tests.run_notebooks notebooks/06_visualizing_filters.ipynb
    python -m tests.run_notebooks --device cuda                    # every lesson on the GPU

Each notebook runs top to bottom on a fresh kernel, offline, with the same
``ENVIRONMENT`` the test configuration (``conftest.py``) gives nbval's kernels,
so the stored outputs are the ones CI reproduces. The notebook is replaced only
after a run without errors (written to a temporary file, then renamed).

Why the environment pins the CPU's arithmetic: lessons 05 and 06 train a CNN,
and training amplifies the last-bit differences between ways of adding up the
same numbers. PyTorch, oneDNN and MKL pick their kernels by the processor
(AVX2, AVX-512, ...) and split work by the number of threads, so without pins
two x86 machines train slightly different weights from the same seed, and
the checked outputs of lesson 06 (cosines, counts, the first mistake) differ.
The pins hold every x86-64 machine with AVX2 to the same kernels on two
threads (MKL's conditional numerical reproducibility, ``MKL_CBWR``, is made
for exactly this). So far this is shown on one kind of machine only (AMD EPYC,
AVX2): there each setting the pins fix does change the trained weights when
moved (oneDNN at SSE4.1, ATen's baseline kernels, one thread, MKL's own choice
of path each gave other weights), and the pinned run repeats exactly. An
AVX-512 or ARM machine has not been tried; if lesson 06's checked cells fail
on one, re-execute lessons 05 and 06 there and compare. Learners do not need
the pins: their numbers differ a little from the stored ones, as the lessons
say.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from tests.nbtools import ROOT, notebook_paths

#: Set for every test run and every notebook execution (see the module docstring).
ENVIRONMENT = {
    "MNIST_OFFLINE": "1",  # the bundled sample, never the network
    "OMP_NUM_THREADS": "2",  # CI's two cores; thread count changes how sums are split
    "MKL_NUM_THREADS": "2",
    "MKL_CBWR": "AVX2",  # MKL: the same AVX2 code path on every x86 processor
    "ATEN_CPU_CAPABILITY": "avx2",  # PyTorch's own CPU kernels: the AVX2 versions
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN (convolutions): at most AVX2
}


def apply_environment() -> None:
    """Put ``ENVIRONMENT`` into this process's environment (inherited by kernels it starts).

    Must run before PyTorch is imported in this process to affect it here too.
    """
    os.environ.update(ENVIRONMENT)


def execute(notebook: Path, timeout: int = 600) -> float:
    """Run ``notebook`` on a fresh kernel and save it with its outputs; return the seconds taken."""
    import nbformat
    from nbclient import NotebookClient

    book = nbformat.read(notebook, as_version=4)
    client = NotebookClient(
        book,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(notebook.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    for cell in book.cells:
        cell.metadata.pop("execution", None)  # timestamps would change on every run
    # Widget state is large and changes on every run; the static figure beside each widget
    # is what a viewer without a live kernel shows.
    book.metadata.pop("widgets", None)
    text = nbformat.writes(book)  # serialised first: a failure here leaves no file behind
    with tempfile.NamedTemporaryFile("w", dir=notebook.parent, suffix=".ipynb", delete=False, encoding="utf-8") as tmp:
        tmp.write(text)
    os.replace(tmp.name, notebook)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every lesson in notebooks/")
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda", "mps"),
        help="force every lesson onto this device (sets COURSE_DEVICE); the CPU pins apply on the CPU only",
    )
    args = parser.parse_args(argv)
    if args.device:
        os.environ["COURSE_DEVICE"] = args.device
    apply_environment()
    paths = [p.resolve() for p in args.notebooks] or notebook_paths()
    for path in paths:
        seconds = execute(path)
        size = path.stat().st_size / 1e6
        print(f"{path.relative_to(ROOT)}: ran in {seconds:.0f} s, {size:.2f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
