"""tools.export_html: every lesson as a self-contained page that works with no network, and never hangs.

The ``browser`` tests export every lesson's committed outputs (the same
executor wrote them: ``tests.run_notebooks``) and open each page in Chromium
with every request outside ``file:`` blocked: figures, the animation's frames
and player icons, and the typeset maths must all show. The other tests run the
exporter's executing path on small notebooks: outputs, widgets, maths, and a
cell that would hang, which must stop at its time limit with its kernel gone.
"""

from __future__ import annotations

import re
import time

import nbformat
import psutil
import pytest
from nbclient.exceptions import CellTimeoutError

from tests.browser import FROZEN_BAR, WIDGET_REPR, chromium, lessons, offline_context, screenshot
from tests.nbtools import cells, source
from tools.export_html import _outside_code, export, main, math_svg, typeset_maths

LESSONS = lessons()
_MATH = re.compile(r"\$\$.+?\$\$|(?<![\\$\w])\$(?![\s$])[^$\n]+?(?<![\s\\])\$(?![\w$])", re.DOTALL)
_CODE = re.compile(r"```.*?```|`[^`\n]+`", re.DOTALL)


def _maths_in(notebook) -> int:
    """How many $...$ and $$...$$ the markdown cells hold, outside code."""
    return sum(
        len(_MATH.findall(_CODE.sub("", source(cell)))) for cell in cells(notebook) if cell["cell_type"] == "markdown"
    )


def _figures_in(notebook) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in cells(notebook)
        if cell["cell_type"] == "code"
        for output in cell["outputs"]
    )


def _small_notebook(path, *sources, markdown="The loss $L = \\frac{1}{n}\\sum_i e_i^2$ and `$not maths$`."):
    book = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell(markdown), *(nbformat.v4.new_code_cell(s) for s in sources)]
    )
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(book, path)
    return path


# ---------------------------------------------------------------------------
# Maths, typeset at export time.


@pytest.mark.parametrize("notebook", LESSONS, ids=lambda path: path.name[:2])
def test_every_formula_of_the_course_is_typeset(notebook):
    book = nbformat.read(notebook, as_version=4)
    maths = typeset_maths(book)
    assert len(maths) == _maths_in(notebook)
    text = "".join(cell.source for cell in book.cells if cell.cell_type == "markdown")
    assert not _MATH.search(_CODE.sub("", text)), "maths left untypeset"


def test_maths_in_code_is_left_alone():
    replaced = _outside_code("a `$x$` b $y$\n```\n$z$\n```\n", lambda text: text.replace("$", "#"))
    assert replaced == "a `$x$` b #y#\n```\n$z$\n```\n"


def test_formula_svg_sits_on_the_baseline_with_its_own_ids():
    first, second = math_svg(r"\frac{\partial L}{\partial a}", prefix="m1"), math_svg(r"\sqrt{L}", prefix="m2")
    assert first.startswith('<span class="course-math"') and "<svg" in first and "vertical-align:-" in first
    ids = re.findall(r'id="([^"]+)"', first + second)
    assert ids and len(ids) == len(set(ids)), "ids must not clash between formulas on one page"
    assert all(ref.split("-")[0] in ("m1", "m2") for ref in re.findall(r'href="#([^"]+)"', first + second))
    with pytest.raises(ValueError, match="cannot typeset"):
        math_svg(r"\notacommand{x}")


# ---------------------------------------------------------------------------
# The executing path, on small notebooks.


def test_export_executes_and_writes_a_self_contained_page(tmp_path):
    notebook = _small_notebook(
        tmp_path / "lesson.ipynb",
        "import matplotlib.pyplot as plt\nfrom ipywidgets import IntSlider\nfrom tqdm.auto import tqdm",
        "plt.plot([1, 2, 3])\nplt.show()",
        "for _ in tqdm(range(3), desc='training'):\n    pass",
        "IntSlider(value=3, min=0, max=9, description='try me')",
    )
    before = notebook.read_bytes()
    page = export(notebook, tmp_path / "html").read_text()
    assert notebook.read_bytes() == before, "exporting never changes the notebook"
    assert "data:image/png;base64," in page
    assert 'class="course-math"' in page and "$not maths$" in page
    assert "training: 100%|██████████| 3/3" in page
    assert "try me = 3 (0 to 9)" in page
    assert not WIDGET_REPR.search(page) and not FROZEN_BAR.search(page)
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=\"(https?:)?//|@import url", page)
    assert "cdn.jsdelivr" not in page and "cdnjs" not in page and "unpkg" not in page


def test_a_frame_of_a_local_service_becomes_its_text(tmp_path):
    notebook = _small_notebook(tmp_path / "service.ipynb", "print('started')")
    book = nbformat.read(notebook, as_version=4)
    frame = '<iframe src="http://127.0.0.1:8000" width="100%" height="720"></iframe>'
    book.cells[1].outputs = [
        nbformat.v4.new_output("display_data", {"text/html": frame, "text/plain": "(the page, live while it runs)"}),
        nbformat.v4.new_output("display_data", {"text/html": "<b>kept</b>", "text/plain": "kept"}),
    ]
    nbformat.write(book, notebook)
    page = export(notebook, tmp_path / "html", execute=False).read_text()
    assert "<iframe" not in page and "(the page, live while it runs)" in page
    assert "<b>kept</b>" in page


def test_a_hanging_cell_stops_at_its_time_limit_and_leaves_no_kernel(tmp_path):
    notebook = _small_notebook(tmp_path / "hangs.ipynb", "print('fine')", "import time\ntime.sleep(600)")
    children = {child.pid for child in psutil.Process().children(recursive=True)}
    start = time.perf_counter()
    with pytest.raises(CellTimeoutError):
        export(notebook, tmp_path / "html", timeout=3)
    assert time.perf_counter() - start < 90
    left = [c for c in psutil.Process().children(recursive=True) if c.pid not in children and c.is_running()]
    assert not [c for c in left if c.status() != psutil.STATUS_ZOMBIE], f"kernel left running: {left}"
    assert not (tmp_path / "html" / "hangs.html").exists()


def test_command_line_goes_on_after_a_failing_lesson(tmp_path, capsys):
    broken = _small_notebook(tmp_path / "a_broken.ipynb", "1 / 0")
    fine = _small_notebook(tmp_path / "b_fine.ipynb", "print(6 * 7)")
    assert main([str(broken), str(fine), "--output", str(tmp_path / "html"), "--timeout", "60"]) == 1
    printed = capsys.readouterr().out
    assert "a_broken.ipynb: FAILED (" in printed and "ZeroDivisionError" in printed
    assert "1 of 2 lessons exported" in printed
    assert (tmp_path / "html" / "b_fine.html").exists()


# ---------------------------------------------------------------------------
# Every lesson's page in Chromium, offline.

_PAGE_FACTS = """() => {
  const images = [...document.querySelectorAll("img")].map((image) => {
    const box = image.getBoundingClientRect();
    return {natural: image.naturalWidth, width: box.width, height: box.height,
            visible: image.checkVisibility(), animation: !!image.closest(".course-animation")};
  });
  const maths = [...document.querySelectorAll(".course-math svg")].map((svg) => {
    const box = svg.getBoundingClientRect();
    return [box.width, box.height];
  });
  const prose = [...document.querySelectorAll(".jp-MarkdownCell")].map((cell) => {
    const copy = cell.cloneNode(true);
    copy.querySelectorAll("code, pre, details, .course-math").forEach((node) => node.remove());
    return copy.textContent;
  }).join("\\n");
  const outputs = [...document.querySelectorAll(".jp-OutputArea-output")].map((o) => o.textContent).join("\\n");
  return {images, maths, prose, outputs, players: document.querySelectorAll(".course-animation").length};
}"""


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    folder = tmp_path_factory.mktemp("html")
    exported = {}
    for notebook in LESSONS:
        try:
            exported[notebook.name] = export(notebook, folder, execute=False)
        except Exception as error:  # noqa: BLE001 - reported by the lesson's own test
            exported[notebook.name] = error
    return exported


@pytest.fixture(scope="module")
def browser():
    with chromium() as started:
        yield started


def page_problems(browser, page_file, notebook) -> list[str]:
    """Open ``page_file`` offline in ``browser``; what is wrong with it as the page of ``notebook``."""
    context, blocked = offline_context(browser, viewport={"width": 1100, "height": 900})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(page_file.as_uri(), wait_until="load")
        page.wait_for_timeout(200)  # a page that waits for a (blocked) script gets its chance to fail
        facts = page.evaluate(_PAGE_FACTS)
        problems = []
        if blocked:
            problems.append(f"asked the network for {blocked[:5]}")
        if errors:
            problems.append(f"script errors: {errors[:3]}")
        broken = [image for image in facts["images"] if image["natural"] <= 0 or not image["visible"]]
        if broken:
            problems.append(f"{len(broken)} of {len(facts['images'])} pictures do not show: {broken[:3]}")
        if len(facts["images"]) < _figures_in(notebook):
            problems.append(f"{_figures_in(notebook)} figures in the notebook, {len(facts['images'])} on the page")
        expected = _maths_in(notebook)
        if len(facts["maths"]) != expected:
            problems.append(f"{expected} formulas in the notebook, {len(facts['maths'])} typeset")
        if any(width <= 0 or height <= 0 for width, height in facts["maths"]):
            problems.append("a typeset formula has no size")
        raw = re.findall(r"\$\$|\$[^$\s][^$]*\$|\\[A-Za-z]{2,}", facts["prose"])
        if raw:
            problems.append(f"raw TeX in the text: {raw[:5]}")
        for pattern, what in ((WIDGET_REPR, "a widget shown as its repr"), (FROZEN_BAR, "a progress bar at 0%")):
            found = pattern.search(facts["outputs"])
            if found:
                problems.append(f"{what}: {facts['outputs'][found.start() : found.start() + 80]!r}")
        if "animate(" in "".join(source(c) for c in cells(notebook) if c["cell_type"] == "code"):
            problems.extend(_player_problems(page, facts))
        if problems:
            screenshot(page, f"export-{notebook.stem}")
        return problems
    finally:
        context.close()


@pytest.mark.browser
@pytest.mark.parametrize("notebook", LESSONS, ids=lambda path: path.name[:2])
def test_exported_lesson_shows_everything_offline(browser, pages, notebook):
    page_file = pages[notebook.name]
    if isinstance(page_file, Exception):
        pytest.fail(f"export failed: {page_file!r}")
    problems = page_problems(browser, page_file, notebook)
    assert not problems, f"{page_file.name}:\n  " + "\n  ".join(problems)


def _player_problems(page, facts) -> list[str]:
    """The animation shows its first frame, its icons, and steps through its frames offline."""
    if facts["players"] == 0:
        return ["the animation's player is missing (an old matplotlib player or none)"]
    if not any(image["animation"] and image["natural"] > 0 for image in facts["images"]):
        return ["the animation shows no first frame"]
    player = page.locator(".course-animation").first
    player.scroll_into_view_if_needed()
    icons = player.locator("button svg:visible")
    sizes = [icons.nth(i).bounding_box() for i in range(icons.count())]
    if len(sizes) != 5 or any(not box or box["width"] <= 0 for box in sizes):
        return [f"player icons do not show: {sizes}"]
    frame = player.locator("img.course-animation-frame")
    first = frame.get_attribute("src")
    player.locator("button[data-action=next]").click()
    if frame.get_attribute("src") == first or player.get_attribute("data-frame") != "1":
        return ["the next-frame button does not change the frame"]
    player.locator("button[data-action=play]").click()
    try:
        page.wait_for_function(
            "() => Number(document.querySelector('.course-animation').dataset.frame) >= 3", timeout=10_000
        )
    except Exception:  # noqa: BLE001 - playwright's TimeoutError
        return ["play does not advance the frames"]
    return []
