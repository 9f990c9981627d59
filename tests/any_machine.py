"""Run the checks without the CPU pins, under arithmetic settings that change the trained weights.

The committed notebooks were executed with the pins of ``tests.run_notebooks``
(AVX2 kernels, two threads). A learner's laptop, Colab's GPU or an ARM Mac
trains slightly different weights from the same seeds, and the tests must pass
there too. This runs ``pytest`` on the notebooks (and, with ``--unit``, on the
unit tests) in a fresh process per setting, with ``COURSE_PINS=0`` and a fresh
data folder (``COURSE_DATA_DIR``: the bundled sample linked in, no saved weights,
so lessons 06-08 train their own model exactly as a learner's first run does)::

    python -m tests.any_machine                      # every setting, every notebook
    python -m tests.any_machine --setting one-thread notebooks/06_visualizing_filters.ipynb
    python -m tests.any_machine --list

Each setting is known to give other weights than the pinned run on an AVX2
machine (the 2026-11 measurements are in the README). It prints one line per
setting: passed or failed, how many tests, how long. The exit code is 0 only
when every setting passes.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.nbtools import ROOT
from tests.run_notebooks import ENVIRONMENT

#: Settings besides the pinned one; each is added to an environment without the pins.
SETTINGS: dict[str, dict[str, str]] = {
    "default": {},  # the machine's own choice of kernels and threads
    "aten-default": {"ATEN_CPU_CAPABILITY": "default"},  # PyTorch's baseline (non-SIMD) CPU kernels
    "one-thread": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},  # sums split another way
    "onednn-sse41": {"ONEDNN_MAX_CPU_ISA": "SSE41"},  # oneDNN's convolutions on older instructions
}


def unpinned_environment(extra: dict[str, str], data_dir: Path) -> dict[str, str]:
    """This process's environment without the pins, with ``extra`` on top and a fresh data folder."""
    env = {key: value for key, value in os.environ.items() if key not in ENVIRONMENT}
    env.update(COURSE_PINS="0", MNIST_OFFLINE="1", COURSE_DATA_DIR=str(data_dir), PYTHONDONTWRITEBYTECODE="1")
    env.update(extra)
    return env


def fresh_data_dir(parent: Path) -> Path:
    """A data folder holding only a link to the bundled sample (no cache, no saved weights)."""
    folder = Path(tempfile.mkdtemp(prefix="course-data-", dir=parent))
    (folder / "mnist_sample").symlink_to(ROOT / "data" / "mnist_sample", target_is_directory=True)
    return folder


def run_suite(extra: dict[str, str], paths: list[str], parent: Path, pytest_args: list[str] = ()) -> dict:
    """Run pytest on ``paths`` unpinned with ``extra`` set; return what happened."""
    data_dir = fresh_data_dir(parent)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_args, *paths]
    start = time.perf_counter()
    result = subprocess.run(
        command, cwd=ROOT, env=unpinned_environment(extra, data_dir), capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    summary = [line for line in result.stdout.splitlines() if re.search(r"\d+ (passed|failed|error)", line)]
    return {
        "passed": result.returncode == 0,
        "returncode": result.returncode,
        "summary": summary[-1].strip("= ") if summary else "(no summary)",
        "seconds": seconds,
        "output": result.stdout + result.stderr,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", help="notebooks or test files (default: notebooks/)")
    parser.add_argument("--setting", action="append", choices=sorted(SETTINGS), help="default: all of them")
    parser.add_argument("--unit", action="store_true", help="also run the unit tests in tests/")
    parser.add_argument("--list", action="store_true", help="show the settings and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, extra in SETTINGS.items():
            print(f"{name:14} {extra or '(no pins at all)'}")
        return 0
    paths = args.paths or ["notebooks"]
    if args.unit:
        paths = ["tests", *paths]
    failures = 0
    with tempfile.TemporaryDirectory(prefix="any-machine-") as parent:
        for name in args.setting or list(SETTINGS):
            outcome = run_suite(SETTINGS[name], paths, Path(parent), ["-m", "not browser and not gpu"])
            verdict = "passed" if outcome["passed"] else "FAILED"
            print(f"{name:14} {verdict}: {outcome['summary']} in {outcome['seconds']:.0f} s", flush=True)
            if not outcome["passed"]:
                failures += 1
                tail = "\n".join(outcome["output"].splitlines()[-60:])
                print(f"--- last lines of the {name} run ---\n{tail}\n---", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
