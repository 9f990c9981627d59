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


# --- Lesson 08's page: no stale answer, Clear, an empty canvas, the same file again, a phone, a picture not read.


def _answered(page) -> int:
    return int(page.evaluate("() => Number(document.body.dataset.answered || 0)"))


def _result_state(page) -> dict:
    return page.evaluate(
        """() => ({
            bars: document.querySelectorAll('#bars .bar').length,
            figureHidden: document.getElementById('input-figure').hidden,
            src: document.getElementById('prepared').getAttribute('src'),
            chosen: document.querySelectorAll('#gallery img.chosen').length,
            message: document.getElementById('message').textContent,
            reasonHidden: document.getElementById('reason').hidden,
            reason: document.getElementById('reason').textContent,
        })"""
    )


def test_service_page_shows_no_broken_image_before_the_first_answer(browser, service):
    context, page, errors = _service_page(browser, service)
    try:
        page.locator("#gallery .digit").first.wait_for(timeout=30_000)
        state = _result_state(page)
        assert state["figureHidden"] and not state["src"], state
        broken = page.evaluate(
            "() => [...document.images].filter(i => i.offsetParent !== null && i.complete && i.naturalWidth === 0)"
            ".map(i => i.id || i.alt)"
        )
        assert broken == [], f"broken images shown: {broken}"
        assert not errors, errors
    except BaseException:
        screenshot(page, "service-no-broken-image")
        raise
    finally:
        context.close()


def test_service_page_a_late_answer_never_replaces_a_newer_one(browser, service):
    context, page, errors = _service_page(browser, service)
    held = []

    def hold_the_first(route):
        if not held:
            held.append(route)  # answered later, by hand
        else:
            route.continue_()

    try:
        digits = page.locator("#gallery .digit")
        digits.first.wait_for(timeout=30_000)
        first_label, second_label = (int(digits.nth(i).get_attribute("data-label")) for i in (0, 2))
        assert first_label != second_label
        page.route("**/predict*", hold_the_first)
        digits.nth(0).click()  # its answer is held back ...
        page.wait_for_function("() => document.body.dataset.request === '1'")
        digits.nth(2).click()  # ... while the next one is answered
        bars = _wait_for_bars(page)
        shown = _result_state(page)
        assert f"it is a {second_label}" in shown["message"], shown
        held[0].fulfill(response=held[0].fetch())  # now the first answer arrives, late
        page.wait_for_timeout(1500)
        assert _bars(page) == bars, "a late answer replaced the newer one"
        assert _result_state(page)["message"] == shown["message"]
        assert _answered(page) == 2
        # Clear while an answer is on its way: it is dropped when it arrives.
        held.clear()
        page.unroute("**/predict*")
        page.route("**/predict*", hold_the_first)
        digits.nth(0).click()
        page.wait_for_function("() => document.body.dataset.request === '3'")
        page.locator("#clear-drawing").click()
        held[0].fulfill(response=held[0].fetch())
        page.wait_for_timeout(1500)
        state = _result_state(page)
        assert state["bars"] == 0 and state["figureHidden"] and state["chosen"] == 0, state
        assert not errors, errors
    except BaseException:
        screenshot(page, "service-late-answer")
        raise
    finally:
        context.close()


def test_service_page_clear_and_an_empty_canvas_reset_everything(browser, service):
    context, page, errors = _service_page(browser, service)
    try:
        digits = page.locator("#gallery .digit")
        digits.first.wait_for(timeout=30_000)
        digits.nth(1).click()
        _wait_for_bars(page)
        page.locator("#clear-drawing").click()
        state = _result_state(page)
        assert state == {**state, "bars": 0, "figureHidden": True, "src": None, "chosen": 0}, state
        assert "Cleared" in state["message"]
        digits.nth(3).click()
        _wait_for_bars(page)
        page.locator("#predict-drawing").click()  # nothing drawn
        state = _result_state(page)
        assert state["bars"] == 0 and state["figureHidden"] and state["chosen"] == 0, state
        assert "canvas is empty" in state["message"], state
        assert not errors, errors
    except BaseException:
        screenshot(page, "service-clear")
        raise
    finally:
        context.close()


def test_service_page_the_same_file_twice_is_sent_twice(browser, service, tmp_path):
    from helpers.data import load_mnist
    from helpers.demo import to_png

    path = tmp_path / "digit.png"
    path.write_bytes(to_png(255 - load_mnist(download=False).test_images[0], scale=4))
    context, page, errors = _service_page(browser, service)
    try:
        page.locator("#gallery .digit").first.wait_for(timeout=30_000)
        page.locator("input#upload").set_input_files(str(path))
        _wait_for_bars(page)
        first = _answered(page)
        page.locator("input#upload").set_input_files(str(path))
        page.wait_for_function(f"() => Number(document.body.dataset.answered) > {first}", timeout=30_000)
        assert not errors, errors
    except BaseException:
        screenshot(page, "service-same-file")
        raise
    finally:
        context.close()


def test_service_page_says_why_a_picture_is_not_read(browser, service, tmp_path):
    import numpy as np

    from helpers.data import load_mnist
    from helpers.demo import to_png

    images = load_mnist(download=False).test_images
    row = 255 - np.concatenate([images[0], images[1], images[2]], axis=1)  # three digits side by side
    path = tmp_path / "three.png"
    path.write_bytes(to_png(np.pad(row, 10, constant_values=255), scale=4))
    context, page, errors = _service_page(browser, service)
    try:
        page.locator("#gallery .digit").first.wait_for(timeout=30_000)
        page.locator("input#upload").set_input_files(str(path))
        _wait_for_bars(page)
        state = _result_state(page)
        assert not state["reasonHidden"] and "Not read as one digit" in state["reason"], state
        assert not state["figureHidden"] and state["src"], state
        assert not errors, errors
    except BaseException:
        screenshot(page, "service-not-read")
        raise
    finally:
        context.close()


def test_service_page_on_a_phone_brings_the_answer_into_view(browser, service):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(service)
        digits = page.locator("#gallery .digit")
        digits.first.wait_for(timeout=30_000)
        digits.nth(5).scroll_into_view_if_needed()
        digits.nth(5).tap()
        _wait_for_bars(page)
        page.wait_for_timeout(300)
        box = page.evaluate(
            "() => { const r = document.getElementById('result-panel').getBoundingClientRect();"
            " return {top: r.top, bottom: r.bottom, height: innerHeight}; }"
        )
        assert box["top"] >= -1 and box["top"] < box["height"], f"the result is off-screen: {box}"
        overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1, f"the page is {overflow} px wider than the phone"
        assert not errors, errors
    except BaseException:
        screenshot(page, "service-phone")
        raise
    finally:
        context.close()
