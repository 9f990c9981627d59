"""The course's widget code paths on ipywidgets 7.7 (what Colab ships) as well as 8 (JupyterLab 4).

A second, small virtual environment (no system site-packages, no torch) gets
``ipywidgets==7.7.*`` with only what it needs to run in a kernel (ipykernel,
ipython_genutils, traitlets) plus numpy, matplotlib and tqdm. A notebook then
runs there, on a real kernel driven by nbclient, through what the lessons use:

* ``helpers.plots.slider_explorer``: ``interactive`` with an ``IntSlider`` and a
  drop-down from abbreviations, a ``FloatLogSlider``, its ``Output``, and
  ``limits`` (a slider's end following the drop-down, as lesson 06's channel
  slider follows the layer); moving a control redraws with the new values;
* ``tqdm.auto`` picking the notebook bar (an HBox with a progress widget) and
  finishing it;
* a ``FileUpload`` filled as ipywidgets 7's front end fills it, whose ``value``
  lesson 08's ``helpers.demo.uploaded_files`` must read (checked here, in the
  course's own environment, on the value ipywidgets 7.7 made; and on an
  ipywidgets 8 value made the same way).

It needs the package index: without it the test is skipped, saying why. CI
reaches the index, so it runs there (about a minute, mostly downloads).
"""

from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from tests.nbtools import ROOT
from tests.run_notebooks import describe_widget

#: What the ipywidgets 7.7 environment gets: ipywidgets without its dependencies (they pull in
#: the classic notebook server), then what it imports at run time, then what the course's code needs.
IPYWIDGETS_7 = "ipywidgets==7.7.*"
RUNTIME = ["ipykernel>=6,<7", "ipython_genutils", "traitlets", "numpy", "matplotlib", "tqdm"]


def _pip(venv_python: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pip", "--python", str(venv_python), "--disable-pip-version-check", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def ipywidgets7(tmp_path_factory) -> Path:
    """The Python of a fresh virtual environment with ipywidgets 7.7; skips when the index is out of reach."""
    folder = tmp_path_factory.mktemp("ipywidgets7")
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    wheels = folder / "wheels"
    try:
        fetched = _pip(python, "download", "--quiet", "--no-deps", "--dest", str(wheels), IPYWIDGETS_7, timeout=90)
    except subprocess.TimeoutExpired:
        pytest.skip("the package index did not answer within 90 s (offline?): cannot install ipywidgets 7.7")
    if fetched.returncode != 0:
        reason = (fetched.stderr.strip().splitlines() or ["no message"])[-1]
        pytest.skip(f"cannot download {IPYWIDGETS_7} (offline?): {reason}")
    for step in (["--no-deps", *map(str, wheels.glob("*.whl"))], RUNTIME):
        installed = _pip(python, "install", "--quiet", *step)
        assert installed.returncode == 0, installed.stderr[-3000:]
    return python


CELLS = [
    f"""
    import sys
    sys.path.insert(0, {str(ROOT)!r})  # the course's helpers, without installing them (no torch here)
    import ipywidgets, tqdm
    print(ipywidgets.__version__)
    """,
    """
    from ipywidgets import FloatLogSlider
    from helpers.plots import slider_explorer

    calls = []

    def draw(ax, size=3, layer="conv1", channel=0, lr=0.01):
        calls.append((size, layer, channel, lr))
        ax.plot([0, size], [0, channel])

    explorer = slider_explorer(
        draw,
        static=[{"size": 4}, {"size": 8, "layer": "conv2", "channel": 20}],
        figsize=(2, 2),
        limits={"channel": ("layer", {"conv1": 15, "conv2": 31})},
        size=(3, 28, 1),
        layer=["conv1", "conv2"],
        channel=(0, 31, 1),
        lr=FloatLogSlider(value=0.01, base=10, min=-3, max=0, step=0.05, description="lr"),
    )
    explorer
    """,
    """
    controls = {child.description: child for child in explorer.children if hasattr(child, "description")}
    ends = [controls["channel"].max]
    controls["layer"].value = "conv2"
    ends.append(controls["channel"].max)
    controls["channel"].value = 20
    controls["size"].value = 10
    print(ends, calls[-1], type(explorer.children[-1]).__name__)
    """,
    """
    from tqdm.notebook import tqdm_notebook
    from tqdm.auto import tqdm

    bar = tqdm(range(5), desc="training")
    for _ in bar:
        pass
    notebook_bar = isinstance(bar, tqdm_notebook)
    print(notebook_bar, bar.container.children[1].value, bar.container.children[1].bar_style)
    """,
    """
    import pickle
    from ipywidgets import FileUpload

    upload = FileUpload(accept="image/*")
    content = open({png!r}, "rb").read()
    meta = {{"name": "digit.png", "type": "image/png", "size": len(content), "lastModified": 0}}
    # What ipywidgets 7's front end sends when a file is chosen.
    upload.set_state({{"metadata": [meta], "data": [memoryview(content)], "_counter": 1}})
    pickle.dump(upload.value, open({value_file!r}, "wb"))
    print(sorted(upload.value))
    """,
]


def _run(python: Path, tmp_path: Path) -> nbformat.NotebookNode:
    """Execute the CELLS notebook on a kernel of the ipywidgets 7.7 environment; return it."""
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient

    from helpers.data import load_mnist

    digit = load_mnist(download=False).test_images[0]
    png = tmp_path / "digit.png"
    from PIL import Image

    Image.fromarray(255 - digit).save(png)
    spec = tmp_path / "kernels" / "ipywidgets7"
    spec.mkdir(parents=True)
    argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "ipywidgets 7", "language": "python"}))
    sources = [textwrap.dedent(cell).strip() for cell in CELLS]
    sources[-1] = sources[-1].format(png=str(png), value_file=str(tmp_path / "value.pickle"))
    book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    manager = KernelManager(
        kernel_name="ipywidgets7", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec.parent)])
    )
    NotebookClient(
        book, km=manager, timeout=120, store_widget_state=True, resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    return book


def _printed(cell) -> str:
    return "".join(output.get("text", "") for output in cell.outputs if output.output_type == "stream")


def test_course_widgets_work_on_ipywidgets_7(ipywidgets7, tmp_path):
    book = _run(ipywidgets7, tmp_path)
    for cell in book.cells:
        errors = [output for output in cell.outputs if output.output_type == "error"]
        assert not errors, f"{cell.source[:60]}: {errors[0].ename}: {errors[0].evalue}"
    assert _printed(book.cells[0]).startswith("7.7."), _printed(book.cells[0])
    # slider_explorer: the static row, then a live interactive whose channel slider follows the layer.
    outputs = book.cells[1].outputs
    assert outputs[0].output_type == "display_data" and "image/png" in outputs[0].data
    assert "application/vnd.jupyter.widget-view+json" in outputs[1].data
    assert _printed(book.cells[2]).strip() == "[15, 31] (10, 'conv2', 20, 0.01) Output"
    state = book.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"]
    output_models = [m for m in state.values() if m["model_name"] == "OutputModel"]
    assert any("image/png" in item.get("data", {}) for m in output_models for item in m["state"].get("outputs", [])), (
        "the explorer's Output shows the redrawn figure"
    )
    # tqdm.auto: the notebook bar, finished.
    assert _printed(book.cells[3]).split() == ["True", "5.0", "success"]
    bar_view = next(o for o in book.cells[3].outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {}))
    text = describe_widget(bar_view.data["application/vnd.jupyter.widget-view+json"]["model_id"], state)
    assert text.startswith("training: 100%|██████████| 5/5"), text
    # FileUpload: ipywidgets 7's value, read by lesson 08's helper in the course's environment.
    demo = pytest.importorskip("helpers.demo", reason="lesson 08's helpers.demo does not exist yet")
    if not hasattr(demo, "uploaded_files"):
        pytest.skip("helpers.demo has no uploaded_files yet")
    value = pickle.loads((tmp_path / "value.pickle").read_bytes())
    assert isinstance(value, dict), "ipywidgets 7 gives a dict from file name to file"
    files = demo.uploaded_files(value)
    assert files == [("digit.png", (tmp_path / "digit.png").read_bytes())]
    assert demo.read_image(files[0][1]).size == (28, 28)


def test_uploaded_files_reads_an_ipywidgets_8_value(tmp_path):
    ipywidgets = pytest.importorskip("ipywidgets")
    demo = pytest.importorskip("helpers.demo", reason="lesson 08's helpers.demo does not exist yet")
    if not hasattr(demo, "uploaded_files"):
        pytest.skip("helpers.demo has no uploaded_files yet")
    if int(ipywidgets.__version__.split(".")[0]) < 8:
        pytest.skip(f"this environment has ipywidgets {ipywidgets.__version__}, not 8")
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (20, 30), 255).save(buffer, format="PNG")
    content = buffer.getvalue()
    upload = ipywidgets.FileUpload(accept="image/*")
    # What ipywidgets 8's front end sends when a file is chosen.
    upload.set_state(
        {
            "value": [
                {
                    "name": "digit.png",
                    "type": "image/png",
                    "size": len(content),
                    "content": memoryview(content),
                    "last_modified": 0,
                }
            ]
        }
    )
    assert isinstance(upload.value, tuple), "ipywidgets 8 gives a tuple of files"
    assert demo.uploaded_files(upload.value) == [("digit.png", content)]
    assert demo.uploaded_files(ipywidgets.FileUpload().value) == []
