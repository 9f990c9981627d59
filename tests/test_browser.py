"""The ``browser`` suite: every lesson as a learner sees it, in JupyterLab in headless Chromium.

One JupyterLab (on a copy of ``notebooks/``, fresh settings, no token, a free
localhost port) and one Chromium serve the whole module. For each lesson:

* opened before running (the committed notebook, untrusted as a fresh clone is):
  every figure and the animation's first frame show, no widget appears as its
  Python repr (``IntSlider(value=3, ...)``), no progress bar reads 0%;
* after Run > Run All Cells on a fresh kernel: every cell ran, no error output,
  every widget is live, every figure is visible with a non-zero size, the
  animation shows its first frame before any click, and dragging the first
  slider of the lesson's explorer changes its figure.

Lesson 08's web service (``python -m helpers.serve``), once it exists: click a
gallery digit and see bars; draw a stroke and see a prediction; upload a file.

Screenshots of failures go to ``tests/browser-artifacts/``. Without Chromium
or playwright the suite is skipped, saying why (a failure under ``CI=true``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser import (
    JupyterLab,
    cell_element,
    chromium,
    free_port,
    inspect_cells,
    lessons,
    move_a_slider,
    open_notebook,
    problems_after_run_all,
    problems_before_running,
    run_all,
    screenshot,
    stop,
    wait_for_http,
)
from tests.nbtools import ROOT

pytestmark = pytest.mark.browser

LESSONS = lessons()
#: Run All of one lesson, kernel start included; the budget is 120 s on 2 cores, this leaves room.
RUN_SECONDS = 600


@pytest.fixture(scope="module")
def browser():
    with chromium() as started:
        yield started


@pytest.fixture(scope="module")
def lab(browser):
    server = JupyterLab(LESSONS).start()
    yield server
    server.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    yield opened
    context.close()


def _report(page, lab, name: str, problems: list[tuple[int, str]], stage: str) -> None:
    """Fail with every problem, after a screenshot of each cell concerned (and of the page)."""
    if not problems:
        return
    stem = f"{Path(name).stem}-{stage}"
    shots = [screenshot(page, stem)]
    for index in sorted({index for index, _ in problems})[:10]:
        shots.append(screenshot(page, f"{stem}-cell{index}", cell_element(page, index)))
    lines = "\n".join(f"  cell {index}: {message}" for index, message in problems)
    saved = ", ".join(str(shot.relative_to(ROOT)) for shot in shots if shot)
    pytest.fail(f"{name} {stage.replace('-', ' ')}:\n{lines}\nscreenshots: {saved or 'none'}", pytrace=False)


@pytest.mark.parametrize("notebook", LESSONS, ids=lambda path: path.name[:2])
def test_lesson_opened_before_running(page, lab, notebook):
    open_notebook(page, lab, notebook.name, kernel=False)
    cells = inspect_cells(page)
    lab.shutdown_kernels()
    _report(page, lab, notebook.name, problems_before_running(cells), "opened-before-running")


@pytest.mark.parametrize("notebook", LESSONS, ids=lambda path: path.name[:2])
def test_lesson_after_run_all(page, lab, notebook):
    open_notebook(page, lab, notebook.name)
    try:
        seconds = run_all(page, RUN_SECONDS)
        cells = inspect_cells(page)
        problems = problems_after_run_all(cells)
        if not problems:
            moved = move_a_slider(page, cells)
            problems = [moved] if moved else []
        print(f"{notebook.name}: Run All took {seconds:.0f} s in JupyterLab")
        _report(page, lab, notebook.name, problems, "after-run-all")
    finally:
        lab.shutdown_kernels()


# ---------------------------------------------------------------------------
# Lesson 08: the model as a web service.

SERVICE = ROOT / "helpers" / "serve.py"


@pytest.fixture(scope="module")
def service(browser, tmp_path_factory):
    if not SERVICE.exists():
        pytest.skip("lesson 08's service (helpers/serve.py) does not exist yet")
    port = free_port()
    log = tmp_path_factory.mktemp("service") / "serve.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "helpers.serve", "--port", str(port)],
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        # The first start may train the lesson's model when no saved weights exist.
        wait_for_http(f"http://127.0.0.1:{port}/", process, 300, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


def _bars(page) -> list[tuple[int, float]]:
    return page.eval_on_selector_all(
        "#bars .bar[data-digit][data-probability]",
        "bars => bars.map(b => [Number(b.dataset.digit), Number(b.dataset.probability)])",
    )


def _wait_for_bars(page, seconds: float = 30) -> list[tuple[int, float]]:
    page.wait_for_selector("#bars .bar[data-digit][data-probability]", timeout=seconds * 1000)
    bars = _bars(page)
    assert bars, "no bars"
    assert all(0 <= digit <= 9 and 0 <= p <= 1 for digit, p in bars), bars
    assert sum(p for _, p in bars) <= 1 + 1e-6, bars
    assert [p for _, p in bars] == sorted((p for _, p in bars), reverse=True), f"bars not best first: {bars}"
    return bars


def _service_page(browser, url):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    return context, page, errors


def test_service_click_a_gallery_digit(browser, service):
    context, page, errors = _service_page(browser, service)
    try:
        digits = page.locator("#gallery .digit")
        digits.first.wait_for(timeout=30_000)
        assert digits.count() >= 3, "the gallery shows a few test digits"
        digits.nth(1).click()
        _wait_for_bars(page)
        assert not errors, errors
    except BaseException:
        screenshot(page, "service-gallery")
        raise
    finally:
        context.close()


def test_service_draw_a_digit(browser, service):
    context, page, errors = _service_page(browser, service)
    try:
        canvas = page.locator("canvas#canvas")
        canvas.wait_for(timeout=30_000)
        box = canvas.bounding_box()
        assert box and box["width"] > 20 and box["height"] > 20, f"canvas size {box}"
        # A "1": one vertical stroke down the middle.
        x = box["x"] + box["width"] / 2
        page.mouse.move(x, box["y"] + box["height"] * 0.2)
        page.mouse.down()
        page.mouse.move(x, box["y"] + box["height"] * 0.8, steps=12)
        page.mouse.up()
        button = page.locator("#predict")
        if button.count():
            button.click()
        bars = _wait_for_bars(page)
        assert not errors, errors
        print(f"drawn stroke read as {bars[0][0]} ({bars[0][1]:.0%})")
    except BaseException:
        screenshot(page, "service-draw")
        raise
    finally:
        context.close()


def test_service_upload_a_file(browser, service, tmp_path):
    from PIL import Image

    from helpers.data import load_mnist

    digit = load_mnist(download=False).test_images[0]
    path = tmp_path / "digit.png"
    Image.fromarray(255 - digit).resize((112, 112)).save(path)  # dark ink on white paper, as photographed
    context, page, errors = _service_page(browser, service)
    try:
        page.locator("input#upload").set_input_files(str(path))
        bars = _wait_for_bars(page)
        assert not errors, errors
        assert bars[0][0] == int(load_mnist(download=False).test_labels[0]), f"uploaded a 7, read {bars}"
    except BaseException:
        screenshot(page, "service-upload")
        raise
    finally:
        context.close()
