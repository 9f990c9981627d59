"""The pinned test environment reaches PyTorch, and tests.run_notebooks writes clean notebooks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
import torch
from nbclient.exceptions import CellExecutionError

from tests.run_notebooks import ENVIRONMENT, execute

pinned = pytest.mark.skipif(os.environ.get("COURSE_PINS") == "0", reason="run without the CPU pins (COURSE_PINS=0)")


@pinned
def test_the_pins_are_set_before_torch_starts():
    for name, value in ENVIRONMENT.items():
        assert os.environ[name] == value
    assert torch.get_num_threads() <= 2, "OMP_NUM_THREADS was set after torch had started its thread pool"
    cpu_flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    if " avx2" in cpu_flags:
        assert torch.backends.cpu.get_cpu_capability() == "AVX2"


def _notebook(path: Path, *sources: str) -> Path:
    book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(book, path)
    return path


@pinned
def test_execute_stores_outputs_in_order_without_run_metadata(tmp_path):
    path = _notebook(tmp_path / "ok.ipynb", "import os\nprint(os.environ['MKL_CBWR'])", "6 * 7")
    execute(path)
    cells = json.loads(path.read_text())["cells"]
    assert [c["execution_count"] for c in cells] == [1, 2]
    assert "".join(cells[0]["outputs"][0]["text"]) == "AVX2\n", "the kernel must inherit the pinned environment"
    assert "".join(cells[1]["outputs"][0]["data"]["text/plain"]) == "42"
    assert all("execution" not in c["metadata"] for c in cells)
    assert list(tmp_path.iterdir()) == [path], "no temporary file is left behind"


def test_a_failing_notebook_is_left_as_it_was(tmp_path):
    path = _notebook(tmp_path / "broken.ipynb", "print('fine')", "1 / 0")
    before = path.read_bytes()
    with pytest.raises(CellExecutionError, match="ZeroDivisionError"):
        execute(path)
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]
