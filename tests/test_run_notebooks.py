"""The pinned test environment reaches PyTorch, and tests.run_notebooks writes clean notebooks."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import nbformat
import pytest
import torch
from nbclient.exceptions import CellExecutionError

from tests.run_notebooks import ENVIRONMENT, describe_widget, execute

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


WIDGET_CELLS = (
    "from ipywidgets import IntSlider, interactive\nfrom tqdm.auto import tqdm",
    "for _ in tqdm(range(5), desc='training'):\n    pass",
    "IntSlider(value=3, min=0, max=9, description='try me')",
    "never_shown = IntSlider()\ninteractive(lambda size: print(size), size=(3, 28, 1))",
)


def test_widgets_keep_their_final_state_under_stable_ids(tmp_path):
    books = []
    for run in ("first", "second"):
        path = _notebook(tmp_path / f"{run}.ipynb", *WIDGET_CELLS)
        execute(path)
        books.append(json.loads(path.read_text()))
    book = books[0]
    state = book["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    shown = [
        output["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
        for cell in book["cells"]
        for output in cell["outputs"]
        if "application/vnd.jupyter.widget-view+json" in output.get("data", {})
    ]
    assert len(shown) == 3 and all(model_id in state for model_id in shown)
    for model in state.values():  # every reference points at a saved model
        for reference in re.findall(r"IPY_MODEL_([0-9a-f]{32})", json.dumps(model)):
            assert reference in state
    # Only what is shown (and what it refers to) is kept: the undisplayed slider is gone.
    assert sum(model["model_name"] == "IntSliderModel" for model in state.values()) == 2
    bars = [model["state"] for model in state.values() if model["model_name"] == "FloatProgressModel"]
    assert bars and bars[0]["value"] == bars[0]["max"] == 5, "the bar is saved finished"
    ids = [sorted(b["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]) for b in books]
    assert ids[0] == ids[1], "re-executing must not rename the widgets"


def test_widget_outputs_read_sensibly_before_the_notebook_runs(tmp_path):
    path = _notebook(tmp_path / "widgets.ipynb", *WIDGET_CELLS)
    execute(path)
    texts = [
        "".join(output["data"]["text/plain"])
        for cell in json.loads(path.read_text())["cells"]
        for output in cell["outputs"]
        if "application/vnd.jupyter.widget-view+json" in output.get("data", {})
    ]
    assert re.match(r"training: 100%\|█{10}\| 5/5 ", texts[0]), texts[0]
    assert texts[1] == "Live control (run the cell to use it): try me = 3 (0 to 9)"
    assert texts[2] == "Live controls (run the cell to use them): size = 15 (3 to 28)"
    assert not any(re.search(r"\w\((value|children)=", text) for text in texts)


def _model(name: str, **state) -> dict:
    return {"model_name": name, "state": {"_model_name": name, **state}}


def test_describe_widget_reads_each_kind_of_control():
    states = {
        "a" * 32: _model("FloatLogSliderModel", description="lr", value=0.01, min=-3, max=0, base=10),
        "b" * 32: _model("DropdownModel", description="layer", _options_labels=["conv1", "conv2"], index=1),
        "c" * 32: _model("OutputModel"),
        "d" * 32: _model(
            "VBoxModel", children=[f"IPY_MODEL_{'a' * 32}", f"IPY_MODEL_{'b' * 32}", f"IPY_MODEL_{'c' * 32}"]
        ),
        "e" * 32: _model("HTMLModel", value="fit:\u2007\u200750%"),
        "f" * 32: _model("FloatProgressModel", value=2.0, min=0, max=4),
        "0" * 32: _model("HTMLModel", value=" 2/4 [00:01&lt;00:01]"),
        "1" * 32: _model("HBoxModel", children=[f"IPY_MODEL_{c * 32}" for c in "ef0"]),
        "2" * 32: _model("ButtonModel", description="#7"),
    }
    assert describe_widget("d" * 32, states) == (
        "Live controls (run the cell to use them): lr = 0.01 (0.001 to 1); layer = conv2 (one of conv1, conv2)"
    )
    assert describe_widget("1" * 32, states) == "fit:  50%|█████     | 2/4 [00:01<00:01]"
    assert describe_widget("2" * 32, states) == "Live control (run the cell to use it): button #7"
    assert describe_widget("c" * 32, states) == "Live widget (run the cell to see it)"
    assert describe_widget("9" * 32, states) == "Live widget (run the cell to see it)", "a model not saved"
