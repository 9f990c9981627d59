"""Driving the course in a real browser: headless Chromium, a throwaway JupyterLab, lesson 08's service.

Used by the ``browser`` suite (``tests/test_browser.py``, ``tests/test_export_html.py``,
``tests/test_animation.py``). The browser is the system's Chromium (Debian's
``chromium`` package; ``COURSE_CHROMIUM`` names another executable), driven by
the ``playwright`` Python package; playwright's own browser downloads are never
used. Without a browser (or without playwright) the suite is skipped, saying
why, except under ``CI=true``, where that is a failure: CI must run it.

JupyterLab runs from a temporary folder holding a copy of ``notebooks/`` (so
running lessons never touches the committed notebooks), with its own settings,
workspaces and runtime folders, no token, on a free localhost port, offline
like the tests (``MNIST_OFFLINE=1`` and the CPU pins are in this process's
environment, which the server and its kernels inherit).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.nbtools import ROOT, notebook_paths

#: Where screenshots of failures go (ignored by git).
ARTIFACTS = ROOT / "tests" / "browser-artifacts"

#: Chromium's switches: headless, no sandbox (CI runs as root), nothing that phones home.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

_CANDIDATES = ("chromium", "chromium-browser", "/usr/bin/chromium", "/usr/lib/chromium/chromium")


def lessons() -> list[Path]:
    """The notebooks the browser suite checks: every lesson, or those in ``COURSE_BROWSER_NOTEBOOKS``.

    Pointing ``COURSE_BROWSER_NOTEBOOKS`` at a folder runs the suite on other copies
    (e.g. notebooks re-executed in a scratch folder, before they are committed).
    """
    folder = os.environ.get("COURSE_BROWSER_NOTEBOOKS")
    if folder:
        return sorted(Path(folder).resolve().glob("[0-9][0-9]_*.ipynb"))
    return notebook_paths()


def in_ci() -> bool:
    """True under CI (``CI=true``), where a missing browser fails instead of skipping."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def chromium_path() -> str | None:
    """The Chromium executable to drive: ``COURSE_CHROMIUM``, else Debian's ``chromium``; None if absent."""
    named = os.environ.get("COURSE_CHROMIUM")
    if named:
        return named if Path(named).is_file() else None
    for candidate in _CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def skip_or_fail(reason: str) -> None:
    """Skip with ``reason``, or fail under CI, where the browser suite must run."""
    if in_ci():
        pytest.fail(f"browser suite cannot run under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (playwright ``Browser``) for the duration of the block; skips without one."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("the playwright package is not installed (pip install -r requirements-dev.txt)")
    path = chromium_path()
    if path is None:
        skip_or_fail("no Chromium found (Debian: apt-get install chromium; or set COURSE_CHROMIUM)")
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, timeout=60_000)
        except Exception as error:  # noqa: BLE001 - any launch failure is reported the same way
            skip_or_fail(f"Chromium at {path} does not start: {str(error).splitlines()[0]}")
        try:
            yield browser
        finally:
            browser.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, seconds: float, log: Path | None = None) -> None:
    """Wait until ``url`` answers (any HTTP status), or raise with the process's log."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.25)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    state = f"exited with {process.returncode}" if process.poll() is not None else f"no answer in {seconds:.0f} s"
    raise RuntimeError(f"{url}: {state}\n{tail}")


def stop(process: subprocess.Popen, seconds: float = 10) -> None:
    """End a process started with its own session (and everything it started): TERM, then KILL."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(seconds)


class JupyterLab:
    """A JupyterLab server in a temporary folder, serving a copy of the lessons.

    Attributes
    ----------
    url : str
        The server's base URL, e.g. ``http://127.0.0.1:8765``.
    folder : Path
        The served folder (the copies of the notebooks).
    """

    def __init__(self, notebooks: list[Path] | None = None) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="course-lab-"))
        self.folder = self.home / "notebooks"
        self.folder.mkdir()
        for path in notebooks if notebooks is not None else lessons():
            shutil.copy2(path, self.folder / path.name)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = self.home / "jupyterlab.log"
        self.process: subprocess.Popen | None = None

    def start(self, seconds: float = 120) -> JupyterLab:
        env = dict(os.environ)
        for name in ("config", "data", "runtime"):
            (self.home / name).mkdir()
        # No "get notified about Jupyter news?" toast over the cells, no update checks.
        notification = (
            self.home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
        )
        notification.parent.mkdir(parents=True)
        notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        env.update(
            JUPYTER_CONFIG_DIR=str(self.home / "config"),
            JUPYTER_DATA_DIR=str(self.home / "data"),
            JUPYTER_RUNTIME_DIR=str(self.home / "runtime"),
            JUPYTER_PLATFORM_DIRS="1",
            IPYTHONDIR=str(self.home / "ipython"),
            PYTHONDONTWRITEBYTECODE="1",
        )
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",  # CI runs as root
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={self.folder}",
            "--IdentityProvider.token=",
            "--ServerApp.password=",
            "--ServerApp.disable_check_xsrf=True",
            "--ServerApp.terminals_enabled=False",
            f"--LabApp.workspaces_dir={self.home / 'workspaces'}",
            f"--LabApp.user_settings_dir={self.home / 'settings'}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.expose_app_in_browser=True",  # lets the tests read the notebook model
        ]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                command, cwd=self.home, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_for_http(f"{self.url}/api/status", self.process, seconds, self.log)
        return self

    def api(self, path: str, method: str = "GET") -> Any:
        """Call the server's REST API; the JSON answer (None for an empty one)."""
        request = urllib.request.Request(f"{self.url}{path}", method=method)
        with urllib.request.urlopen(request, timeout=30) as answer:
            body = answer.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """Shut down every kernel this server runs (between notebooks, so they do not pile up)."""
        for session in self.api("/api/sessions"):
            with contextlib.suppress(urllib.error.URLError):
                self.api(f"/api/sessions/{session['id']}", method="DELETE")
        for kernel in self.api("/api/kernels"):
            with contextlib.suppress(urllib.error.URLError):
                self.api(f"/api/kernels/{kernel['id']}", method="DELETE")

    def close(self) -> None:
        if self.process is not None:
            with contextlib.suppress(OSError):
                self.shutdown_kernels()
            stop(self.process)
        shutil.rmtree(self.home, ignore_errors=True)


def screenshot(page: Any, name: str, element: Any = None) -> Path | None:
    """Save a screenshot (of ``element``, or the page) to ``tests/browser-artifacts/NAME.png``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    with contextlib.suppress(Exception):
        (element or page).screenshot(path=str(path), timeout=10_000)
        return path
    return None


# ---------------------------------------------------------------------------
# A lesson in JupyterLab. The server runs with expose_app_in_browser, so the page's
# ``window.jupyterapp`` gives the notebook's model: the tests read what each cell holds
# from it and compare with what the page shows.

_PANEL = "window.jupyterapp && window.jupyterapp.shell.currentWidget"

_KERNEL_IDLE = """() => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!panel || !panel.sessionContext || !panel.context.isReady) { return false; }
  const session = panel.sessionContext.session;
  return !!(session && session.kernel && session.kernel.status === "idle");
}"""

_RUN_ALL = """() => {
  window.__courseRunAll = "running";
  window.jupyterapp.commands.execute("notebook:run-all-cells").then(
    (ok) => { window.__courseRunAll = "done"; },
    (error) => { window.__courseRunAll = "failed: " + error; });
}"""

_RUN_ALL_FINISHED = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const busy = panel.content.widgets.some((c) => c.model.type === "code" && c.model.executionState === "running");
  return window.__courseRunAll !== "running" && !busy && kernel && kernel.status === "idle";
}"""

# Every code cell: what its model holds, and what the page shows for each output once
# the cell has been scrolled into view (JupyterLab renders cells lazily).
_INSPECT = """async () => {
  const panel = window.jupyterapp.shell.currentWidget;
  const notebook = panel.content;
  const frame = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const text = (t) => (Array.isArray(t) ? t.join("") : t || "");
  const cells = [];
  for (let index = 0; index < notebook.widgets.length; index++) {
    const cell = notebook.widgets[index];
    if (cell.model.type !== "code") { continue; }
    const outputs = cell.model.outputs.toJSON();
    const entry = {
      index, count: cell.model.executionCount, source: cell.model.sharedModel.getSource(),
      outputs: outputs.map((o) => ({
        type: o.output_type, name: o.name || null, mimes: Object.keys(o.data || {}),
        text: o.output_type === "error" ? o.ename + ": " + o.evalue : text(o.text).slice(0, 2000),
      })),
      shown: [],
    };
    if (outputs.length) {
      await notebook.scrollToItem(index, "start");
      await frame();
      const area = cell.node.querySelector(".jp-OutputArea.jp-Cell-outputArea");
      const items = area ? [...area.children].map((child) => child.querySelector(".jp-OutputArea-output")) : [];
      for (const output of items.filter(Boolean)) {
        const images = [...output.querySelectorAll("img")];
        await Promise.all(images.map((image) => image.decode().catch(() => null)));
        entry.shown.push({
          mime: output.getAttribute("data-mime-type"),
          text: output.innerText.slice(0, 3000),
          widget: !!output.querySelector(".jupyter-widgets"),
          images: images.map((image) => {
            const box = image.getBoundingClientRect();
            return {
              natural: [image.naturalWidth, image.naturalHeight], box: [box.width, box.height],
              visible: image.checkVisibility({opacityProperty: true, visibilityProperty: true}),
              animation: !!image.closest(".course-animation, .animation"),
              src: (image.getAttribute("src") || "").slice(0, 60),
            };
          }),
        });
      }
    }
    cells.push(entry);
  }
  return cells;
}"""


def open_notebook(page: Any, lab: JupyterLab, name: str, *, kernel: bool = True, seconds: float = 120) -> None:
    """Open ``name`` in JupyterLab (a fresh workspace) and wait for it (and, by default, its idle kernel)."""
    page.goto(f"{lab.url}/lab/tree/{name}?reset", wait_until="domcontentloaded")
    ready = f"() => !!({_PANEL} && {_PANEL}.context && {_PANEL}.context.isReady)"
    page.wait_for_function(ready, timeout=seconds * 1000)
    page.wait_for_function("() => !!document.querySelector('.jp-Notebook .jp-Cell')", timeout=seconds * 1000)
    if kernel:
        page.wait_for_function(_KERNEL_IDLE, timeout=seconds * 1000, polling=250)


def run_all(page: Any, seconds: float) -> float:
    """Run > Run All Cells, and wait until every cell has finished and the kernel is idle; the seconds taken."""
    start = time.perf_counter()
    page.evaluate(_RUN_ALL)
    page.wait_for_function(_RUN_ALL_FINISHED, timeout=seconds * 1000, polling=500)
    page.wait_for_timeout(500)  # let the last outputs and widgets render
    return time.perf_counter() - start


def inspect_cells(page: Any) -> list[dict]:
    """Every code cell: ``index``, ``count``, ``source``, ``outputs`` (the model) and ``shown`` (the page)."""
    return page.evaluate(_INSPECT)


def scroll_to_cell(page: Any, index: int) -> None:
    """Scroll the notebook so that cell ``index`` is at the top of the view."""
    page.evaluate(
        "async (i) => { await window.jupyterapp.shell.currentWidget.content.scrollToItem(i, 'start'); }", index
    )


def cell_element(page: Any, index: int) -> Any:
    """The element of cell ``index`` (for screenshots)."""
    scroll_to_cell(page, index)
    node = page.evaluate_handle("(i) => window.jupyterapp.shell.currentWidget.content.widgets[i].node", index)
    return node.as_element()


# ---------------------------------------------------------------------------
# What a learner must see. Each check returns problems as (cell index, message).

#: A widget shown as its Python repr instead of a live control: ``IntSlider(value=3, ...)``.
WIDGET_REPR = re.compile(
    r"\b(?:[A-Z]\w*|interactive)\((?:value|children|layout|description|outputs|options|max|min|_dom_classes)="
)
#: A progress bar that never moved: ``training:   0%|          | 0/1200``.
FROZEN_BAR = re.compile(r"(?<![\d.])0%\s*\|")
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def _shown_problems(cell: dict) -> list[tuple[int, str]]:
    problems = []
    for shown in cell["shown"]:
        repr_text = WIDGET_REPR.search(shown["text"])
        if repr_text:
            problems.append((cell["index"], f"a widget shown as text, not live: {shown['text'][:100]!r}"))
        if FROZEN_BAR.search(shown["text"]):
            problems.append((cell["index"], f"a progress bar stuck at 0%: {shown['text'][:100]!r}"))
        if "Error displaying widget" in shown["text"]:
            problems.append((cell["index"], f"a widget failed to display: {shown['text'][:100]!r}"))
        for image in shown["images"]:
            what = "the animation's first frame" if image["animation"] else "a figure"
            if min(image["natural"]) <= 0:
                problems.append((cell["index"], f"{what} has no picture (src {image['src']!r})"))
            elif min(image["box"]) <= 0 or not image["visible"]:
                size, visible = image["box"], image["visible"]
                problems.append((cell["index"], f"{what} is not visible (size {size}, visible {visible})"))
    return problems


def problems_after_run_all(cells: list[dict]) -> list[tuple[int, str]]:
    """What is wrong with a notebook after Run All: errors, cells not run, dead widgets, missing figures."""
    problems = []
    counts = [cell["count"] for cell in cells]
    if counts != list(range(1, len(cells) + 1)):
        first = next(i for i, count in enumerate(counts) if count != i + 1)
        problems.append((cells[first]["index"], f"cells did not all run in order on a fresh kernel: counts {counts}"))
    for cell in cells:
        for output in cell["outputs"]:
            if output["type"] == "error":
                problems.append((cell["index"], f"error output: {output['text'][:300]}"))
            elif output["name"] == "stderr" and re.search(r"Warning|Error|Traceback", output["text"]):
                problems.append((cell["index"], f"warning or error on stderr: {output['text'][:300]}"))
        widgets = sum(WIDGET_MIME in output["mimes"] for output in cell["outputs"])
        live = sum(shown["widget"] for shown in cell["shown"])
        if live < widgets:
            problems.append((cell["index"], f"{widgets - live} of {widgets} widget outputs are not live widgets"))
        pictures = sum("image/png" in output["mimes"] for output in cell["outputs"])
        shown_pictures = sum(len(shown["images"]) for shown in cell["shown"])
        if shown_pictures < pictures:
            problems.append((cell["index"], f"{pictures} figures in the notebook, {shown_pictures} on the page"))
        if "animate(" in cell["source"]:
            frames = [image for shown in cell["shown"] for image in shown["images"] if image["animation"]]
            if not frames:
                problems.append((cell["index"], "the animation shows no frame"))
        problems.extend(_shown_problems(cell))
    return problems


def problems_before_running(cells: list[dict]) -> list[tuple[int, str]]:
    """What is wrong with a committed notebook opened before running: dead text widgets, stuck bars, no figures."""
    problems = []
    for cell in cells:
        problems.extend(_shown_problems(cell))
        pictures = sum("image/png" in output["mimes"] for output in cell["outputs"])
        shown_pictures = sum(len(shown["images"]) for shown in cell["shown"])
        if shown_pictures < pictures:
            problems.append((cell["index"], f"{pictures} figures in the notebook, {shown_pictures} on the page"))
    return problems


_EXPLORER_PICTURE = """(index) => {
  const cell = window.jupyterapp.shell.currentWidget.content.widgets[index].node;
  const interact = cell.querySelector(".widget-interact");
  const image = interact && interact.querySelector(".widget-output img");
  return image ? image.getAttribute("src") : null;
}"""

_PICTURE_CHANGED = (
    "([index, before]) => { const picture = (" + _EXPLORER_PICTURE + ")(index); return picture && picture !== before; }"
)


def move_a_slider(page: Any, cells: list[dict], seconds: float = 60) -> tuple[int, str] | None:
    """Move the first slider of the notebook's first explorer with the keyboard; its figure must follow.

    The slider goes to its start (Home), to its end (End), then one step back
    (ArrowLeft), and the explorer's figure must change at each move: a slider
    whose last steps change nothing runs past what it can show (lesson 06's
    channel slider once ran to 63 for a layer of 16 channels). A lone slider
    (no explorer figure) must show its new value. Returns None when all is
    well or the notebook has no slider, else a problem ``(cell index, message)``.
    """
    with_widgets = [cell for cell in cells if any(WIDGET_MIME in output["mimes"] for output in cell["outputs"])]
    for cell in with_widgets:
        index = cell["index"]
        node = cell_element(page, index)
        handle = node.query_selector(".widget-slider .noUi-handle")
        if handle is None:
            continue
        explorer = node.query_selector(".widget-interact") is not None
        readout = node.query_selector(".widget-slider .widget-readout")
        handle.scroll_into_view_if_needed()
        handle.focus()
        seen = [readout.inner_text() if readout else None]
        for key in ("Home", "End", "ArrowLeft"):
            before = page.evaluate(_EXPLORER_PICTURE, index) if explorer else None
            value = readout.inner_text() if readout else None
            page.keyboard.press(key)
            page.wait_for_timeout(100)
            moved = readout.inner_text() if readout else None
            seen.append(moved)
            if moved == value:
                if key == "Home":  # it already stood at its start
                    continue
                return index, f"pressing {key} on the slider did not move it (values {seen})"
            if not explorer:
                return None
            try:
                page.wait_for_function(_PICTURE_CHANGED, arg=[index, before], timeout=seconds * 1000, polling=250)
            except Exception:  # noqa: BLE001 - playwright's TimeoutError
                return index, f"moving the slider from {value} to {moved} (key {key}) did not change the figure"
        return None
    return None


def offline_context(browser: Any, **options: Any) -> tuple[Any, list[str]]:
    """A browser context in which every request outside ``file:`` and ``data:`` is blocked.

    Returns the context and the list that collects the blocked URLs (a page that asks
    for anything from the network is not self-contained, even if it looks right).
    """
    context = browser.new_context(**options)
    blocked: list[str] = []

    def handle(route: Any) -> None:
        if route.request.url.startswith(("file:", "data:")):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", handle)
    return context, blocked
