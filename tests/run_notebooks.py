"""Execute lesson notebooks in place, the way the tests check them; commit what this writes.

Run from the repository root::

    python -m tests.run_notebooks                                  # every lesson
    python -m tests.run_notebooks notebooks/06_visualizing_filters.ipynb
    python -m tests.run_notebooks --device cuda                    # every lesson on the GPU

Each notebook runs top to bottom on a fresh kernel, offline, with the same
``ENVIRONMENT`` the test configuration (``conftest.py``) gives nbval's kernels,
so the stored outputs are the ones CI reproduces. The notebook is replaced only
after a run without errors (written to a temporary file, then renamed). Each
cell may run at most ``--timeout`` seconds, and the kernel is shut down
whatever happens. Widgets keep their final state in the notebook's metadata,
and each widget output a plain-text stand-in (see ``finish_widgets``), so a
notebook opened before it runs shows finished progress bars, not
``IntSlider(value=3, ...)`` or a bar frozen at 0%.

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
import html
import json
import os
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

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

    Must run before PyTorch is imported in this process to affect it here too. An
    ``MNIST_OFFLINE`` already set is kept (the ``full`` suite sets it to 0).
    """
    keep = {"MNIST_OFFLINE"} & set(os.environ)
    os.environ.update({key: value for key, value in ENVIRONMENT.items() if key not in keep})


def run(book: Any, folder: Path, timeout: int = 600) -> float:
    """Execute ``book`` (an nbformat notebook) in place on a fresh kernel started in ``folder``.

    Every cell gets at most ``timeout`` seconds; the kernel is shut down whatever
    happens (a failing or hanging cell raises, nothing is left running). The
    widgets' final state is kept in the notebook (see ``finish_widgets``).
    Returns the seconds taken.
    """
    from nbclient import NotebookClient

    client = NotebookClient(
        book,
        timeout=timeout,
        startup_timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},
        store_widget_state=True,
        shutdown_kernel="immediate",
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    for cell in book.cells:
        cell.metadata.pop("execution", None)  # timestamps would change on every run
    finish_widgets(book)
    return seconds


def execute(notebook: Path, timeout: int = 600) -> float:
    """Run ``notebook`` on a fresh kernel and save it with its outputs; return the seconds taken."""
    import nbformat

    book = nbformat.read(notebook, as_version=4)
    seconds = run(book, notebook.parent, timeout)
    text = nbformat.writes(book)  # serialised first: a failure here leaves no file behind
    with tempfile.NamedTemporaryFile("w", dir=notebook.parent, suffix=".ipynb", delete=False, encoding="utf-8") as tmp:
        tmp.write(text)
    os.chmod(tmp.name, notebook.stat().st_mode & 0o777)  # keep the notebook's permissions
    os.replace(tmp.name, notebook)
    return seconds


# ---------------------------------------------------------------------------
# Widgets in a committed notebook. A live notebook shows widgets from the kernel; a notebook
# opened before it runs has no kernel to ask. Two things make it show something sensible:
# the widgets' final state, saved in the notebook's metadata (JupyterLab for a trusted
# notebook, nbviewer, Voila and the HTML widget manager draw the widgets from it: finished
# progress bars, sliders where they were left), and a plain-text stand-in in each widget
# output (what an untrusted notebook, as a fresh clone is, GitHub and exported HTML show):
# the finished progress bar as tqdm prints it, or the controls and their values, instead
# of Python's repr ``IntSlider(value=3, ...)``.

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_MODEL_REFERENCE = re.compile(r"IPY_MODEL_([0-9a-f]{32})")


def finish_widgets(book: Any) -> None:
    """Keep only the state of the widgets the outputs show, under stable ids, and give each a text stand-in.

    Model ids are random on every run; they are renamed in order of appearance
    (``uuid5`` of the position), so re-executing a notebook does not change them.
    """
    states = book.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    shown = [
        output["data"][WIDGET_VIEW]["model_id"]
        for cell in book.cells
        for output in cell.get("outputs", [])
        if WIDGET_VIEW in output.get("data", {})
    ]
    kept: list[str] = []
    waiting = list(shown)
    while waiting:  # the displayed widgets and every model they refer to (children, layouts, styles)
        model_id = waiting.pop(0)
        if model_id in kept or model_id not in states:
            continue
        kept.append(model_id)
        waiting.extend(_MODEL_REFERENCE.findall(json.dumps(states[model_id])))
    for cell in book.cells:
        for output in cell.get("outputs", []):
            if WIDGET_VIEW in output.get("data", {}):
                output["data"]["text/plain"] = describe_widget(output["data"][WIDGET_VIEW]["model_id"], states)
    book.metadata.pop("widgets", None)
    if not kept:
        return
    book.metadata["widgets"] = {
        WIDGET_STATE: {"state": {key: states[key] for key in kept}, "version_major": 2, "version_minor": 0}
    }
    renamed = {old: uuid.uuid5(uuid.NAMESPACE_OID, f"course-widget-{n}").hex for n, old in enumerate(kept)}
    text = json.dumps(book)
    for old, new in renamed.items():
        text = text.replace(old, new)
    fresh = json.loads(text)
    book.cells = nbformat_node(fresh["cells"])
    book.metadata = nbformat_node(fresh["metadata"])


def nbformat_node(value: Any) -> Any:
    """Plain JSON data as nbformat's attribute-access nodes."""
    from nbformat import from_dict

    return from_dict(value)


def _state(model_id: str, states: dict) -> dict:
    return states.get(model_id, {}).get("state", {})


def _children(state: dict, states: dict) -> list[dict]:
    return [_state(ref.removeprefix("IPY_MODEL_"), states) for ref in state.get("children", [])]


def _html_text(value: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", value)).replace("\u2007", " ").strip()


def _progress_text(state: dict, states: dict) -> str | None:
    """tqdm's bar in a notebook (an HBox of HTML, progress, HTML) as tqdm prints it in a terminal."""
    parts = _children(state, states)
    names = [part.get("_model_name") for part in parts]
    if len(parts) != 3 or names[0] != "HTMLModel" or names[2] != "HTMLModel" or "Progress" not in str(names[1]):
        return None
    bar = parts[1]
    span = (bar.get("max", 1) or 1) - bar.get("min", 0)
    filled = round(10 * min(1.0, max(0.0, (bar.get("value", 0) - bar.get("min", 0)) / span)))
    left, right = _html_text(parts[0].get("value", "")), _html_text(parts[2].get("value", ""))
    return f"{left}|{'█' * filled}{' ' * (10 - filled)}| {right}".strip()


def _control_text(state: dict) -> str | None:
    """One control as ``description = value (range)``; None for what is not a control."""
    name = state.get("_model_name", "")
    label = state.get("description") or name.removesuffix("Model")
    if name == "ButtonModel":
        return f"button {label}"
    if "Slider" in name and "value" in state:
        low, high, value = state.get("min"), state.get("max"), state["value"]
        if name.startswith("FloatLog"):
            base = state.get("base", 10)
            low, high = base**low, base**high
        if isinstance(value, list):
            value = " to ".join(f"{v:g}" for v in value)
        elif isinstance(value, float):
            value = f"{value:g}"
        return f"{label} = {value} ({low:g} to {high:g})"
    if "_options_labels" in state:
        options = state["_options_labels"]
        index = state.get("index")
        chosen = options[index] if isinstance(index, int) and 0 <= index < len(options) else ""
        return f"{label} = {chosen} (one of {', '.join(options[:8])}{', ...' if len(options) > 8 else ''})"
    if name in ("CheckboxModel", "ToggleButtonModel", "TextModel", "IntTextModel", "FloatTextModel"):
        return f"{label} = {state.get('value')}"
    if name == "FileUploadModel":
        return f"upload ({state.get('accept') or 'any file'})"
    return None


def describe_widget(model_id: str, states: dict) -> str:
    """A short plain-text stand-in for a widget output: what it is and what it shows."""
    state = _state(model_id, states)
    bar = _progress_text(state, states)
    if bar:
        return bar
    own = _control_text(state)
    if own:
        return f"Live control (run the cell to use it): {own}"
    controls: list[str] = []
    waiting = _children(state, states)
    while waiting:
        part = waiting.pop(0)
        text = _control_text(part)
        if text:
            controls.append(text)
        waiting[:0] = _children(part, states)
    if controls:
        shown = "; ".join(controls[:8]) + ("; ..." if len(controls) > 8 else "")
        return f"Live controls (run the cell to use them): {shown}"
    return "Live widget (run the cell to see it)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every lesson in notebooks/")
    parser.add_argument("--timeout", type=int, default=600, help="seconds one cell may run (default: 600)")
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
        seconds = execute(path, args.timeout)
        size = path.stat().st_size / 1e6
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        print(f"{shown}: ran in {seconds:.0f} s, {size:.2f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
