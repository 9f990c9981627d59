"""Export lessons as self-contained, offline HTML pages: ``build/html/NN_name.html``.

Run from the repository root::

    python -m tools.export_html                                   # every lesson
    python -m tools.export_html notebooks/02_gradient_descent.ipynb --timeout 120
    python -m tools.export_html --no-execute                      # the committed outputs as they are

Each lesson is executed top to bottom on a fresh kernel, offline, exactly as
``python -m tests.run_notebooks`` executes it for committing (same environment,
same widget handling), but nothing is written back to the notebook. Exporting
cannot hang: every cell has a time limit (``--timeout``, seconds), a cell that
runs past it stops the export of that lesson with a message naming the cell,
and the kernel is shut down whatever happens (this uses nbclient directly,
not ``jupyter nbconvert --execute``, whose ipywidgets handling could deadlock).

The page needs nothing from the network, so it works from a USB stick in a room
without Wi-Fi:

* figures are embedded as data URLs (nbconvert's default), and so is any
  picture a markdown cell links to;
* the animation player of ``helpers.animation`` carries its frames, icons and
  script inline;
* the maths (``$...$``, ``$$...$$``) is typeset here, at export time, into
  inline SVG with matplotlib's mathtext, so no MathJax is loaded from a CDN;
* a frame showing a service that runs on this computer (lesson 08's page) is
  shown as its plain text, since the service is gone when the page is read;
* widgets are shown as their plain-text stand-ins (finished progress bars, the
  controls and their values) next to the static figures every lesson draws, so
  no widget library is loaded either (require.js, MathJax, mermaid and the
  widget manager are all left out of the template).
"""

from __future__ import annotations

import argparse
import copy
import io
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.nbtools import ROOT, notebook_paths
from tests.run_notebooks import WIDGET_VIEW, apply_environment, run

#: Where the pages go.
OUTPUT = ROOT / "build" / "html"
#: Seconds one cell may run before its lesson's export is stopped.
CELL_TIMEOUT = 300

# The lab template without anything that loads from the network.
_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block extra_css -%}
<style type="text/css">
  .course-math svg { overflow: visible; }
  .course-math-display { display: block; text-align: center; margin: 0.6em 0; }
</style>
{%- endblock extra_css -%}
"""
_TEMPLATE_NAME = "course_offline.html.j2"


# ---------------------------------------------------------------------------
# Maths: $...$ and $$...$$ in markdown cells, typeset to SVG with matplotlib's mathtext.

_FENCE = re.compile(r"(^|\n)(```|~~~).*?(\n\2[^\n]*(?=\n|$)|$)", re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
_DISPLAY = re.compile(r"\$\$(.+?)\$\$", re.DOTALL)
_INLINE = re.compile(r"(?<![\\$\w])\$(?![\s$])([^$\n]+?)(?<![\s\\])\$(?![\w$])")
# TeX that mathtext does not know, and what it becomes (the sizes of delimiters are dropped).
_TEX_FOR_MATHTEXT = [
    (re.compile(r"\\(?:big|Big|bigg|Bigg)[lr]?(?![A-Za-z])"), ""),
    (re.compile(r"\\lVert|\\rVert"), r"\\Vert"),
    (re.compile(r"\\lvert|\\rvert"), "|"),
    (re.compile(r"\\dfrac|\\tfrac"), r"\\frac"),
    (re.compile(r"\\operatorname\{([^}]*)\}"), r"\\mathrm{\1}"),
]


def _outside_code(text: str, replace: Any) -> str:
    """Apply ``replace`` to the parts of markdown ``text`` that are not code (fenced blocks, code spans)."""
    pieces, last = [], 0
    for match in _FENCE.finditer(text):
        pieces.append(_outside_spans(text[last : match.start()], replace))
        pieces.append(match.group(0))
        last = match.end()
    pieces.append(_outside_spans(text[last:], replace))
    return "".join(pieces)


def _outside_spans(text: str, replace: Any) -> str:
    pieces, last = [], 0
    for match in _CODE_SPAN.finditer(text):
        pieces.append(replace(text[last : match.start()]))
        pieces.append(match.group(0))
        last = match.end()
    pieces.append(replace(text[last:]))
    return "".join(pieces)


def math_svg(tex: str, *, display: bool = False, prefix: str = "m") -> str:
    """TeX maths (without the dollars) as an inline ``<svg>`` sitting on the text's baseline.

    Raises ``ValueError`` when mathtext cannot read it.
    """
    import matplotlib
    from matplotlib import mathtext
    from matplotlib.font_manager import FontProperties

    source = " ".join(tex.split())
    for pattern, replacement in _TEX_FOR_MATHTEXT:
        source = pattern.sub(replacement, source)
    buffer = io.BytesIO()
    size = 13 if display else 11
    try:
        with matplotlib.rc_context({"mathtext.fontset": "cm", "svg.fonttype": "path", "svg.hashsalt": "course"}):
            depth = mathtext.math_to_image(f"${source}$", buffer, prop=FontProperties(size=size), format="svg")
    except Exception as error:  # mathtext raises pyparsing's and its own errors
        raise ValueError(f"cannot typeset ${tex}$: {str(error).splitlines()[-1]}") from None
    svg = buffer.getvalue().decode("utf-8")
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>|<!--.*?-->", "", svg, flags=re.DOTALL)
    # Every SVG on the page shares one id space: give this one's ids their own prefix.
    svg = re.sub(r'id="([^"]+)"', rf'id="{prefix}-\1"', svg)
    svg = re.sub(r'(href="#)([^"]+)"', rf'\1{prefix}-\2"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}-\1)", svg)
    svg = " ".join(svg.split())
    label = re.sub(r"[<>&\"]", "", " ".join(tex.split()))
    svg = svg.replace("<svg ", f'<svg role="img" aria-label="{label}" style="vertical-align:-{depth:g}pt" ', 1)
    kind = "course-math course-math-display" if display else "course-math"
    return f'<span class="{kind}" data-tex="{label}">{svg}</span>'


def typeset_maths(book: Any) -> dict[str, str]:
    """Replace the maths in ``book``'s markdown cells by placeholders; return placeholder -> SVG.

    The placeholders go through nbconvert's markdown untouched and are swapped for
    the SVG in the finished page (``fill_maths``).
    """
    found: dict[str, str] = {}

    def placeholder(tex: str, display: bool) -> str:
        key = f"COURSEMATH{len(found):04d}X"
        found[key] = math_svg(tex, display=display, prefix=f"m{len(found)}")
        return key

    def replace(text: str) -> str:
        text = _DISPLAY.sub(lambda m: placeholder(m.group(1), True), text)
        return _INLINE.sub(lambda m: placeholder(m.group(1), False), text)

    for cell in book.cells:
        if cell.cell_type == "markdown":
            cell.source = _outside_code(cell.source, replace)
    return found


def fill_maths(page: str, maths: dict[str, str]) -> str:
    """Swap the placeholders of ``typeset_maths`` for their SVG."""
    for key, svg in maths.items():
        if key not in page:
            raise ValueError(f"the typeset maths {key} went missing in the page")
        page = page.replace(key, svg)
    return page


# ---------------------------------------------------------------------------
# The page.


def _widgets_as_text(book: Any) -> None:
    """Drop the widget state and views: the page shows each widget's plain-text stand-in."""
    book.metadata.pop("widgets", None)
    for cell in book.cells:
        for output in cell.get("outputs", []):
            output.get("data", {}).pop(WIDGET_VIEW, None)


#: HTML that only works while something runs on this computer (lesson 08's page in a frame).
_LOCAL_FRAME = re.compile(r"<iframe[^>]*\bsrc=[\"']?https?://(127\.0\.0\.1|localhost|\[::1\])[:/\"']", re.IGNORECASE)


def _live_only_as_text(book: Any) -> None:
    """Outputs that frame a local service (dead once the lesson has run) show their plain text instead."""
    for cell in book.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            markup = data.get("text/html", "")
            markup = "".join(markup) if isinstance(markup, list) else markup
            if _LOCAL_FRAME.search(markup) and "text/plain" in data:
                del data["text/html"]


def to_html(book: Any, name: str) -> str:
    """The executed notebook ``book`` as one self-contained HTML page (a copy is converted)."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    book = copy.deepcopy(book)
    _widgets_as_text(book)
    _live_only_as_text(book)
    maths = typeset_maths(book)
    exporter = HTMLExporter(
        template_name="lab",
        template_file=_TEMPLATE_NAME,
        extra_loaders=[DictLoader({_TEMPLATE_NAME: _TEMPLATE})],
        embed_images=True,
    )
    page, _ = exporter.from_notebook_node(book, resources={"metadata": {"name": name, "path": str(ROOT)}})
    return fill_maths(page, maths)


def export(notebook: Path, output: Path = OUTPUT, *, execute: bool = True, timeout: int = CELL_TIMEOUT) -> Path:
    """Execute ``notebook`` (unless ``execute=False``) and write its page to ``output/<name>.html``.

    The notebook file itself is never changed. Raises nbclient's ``CellExecutionError``
    or ``CellTimeoutError`` when a cell fails or runs past ``timeout`` seconds.
    """
    import nbformat

    book = nbformat.read(notebook, as_version=4)
    if execute:
        run(book, notebook.parent, timeout)
    page = to_html(book, notebook.stem)
    output.mkdir(parents=True, exist_ok=True)
    target = output / f"{notebook.stem}.html"
    with tempfile.NamedTemporaryFile("w", dir=output, suffix=".html", delete=False, encoding="utf-8") as tmp:
        tmp.write(page)
    os.chmod(tmp.name, 0o644)  # a page to share: readable by all, like any file written the usual way
    os.replace(tmp.name, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every lesson in notebooks/")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="folder for the pages (default: build/html)")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT, help="seconds one cell may run (default: 300)")
    parser.add_argument("--no-execute", action="store_true", help="export the stored outputs without running")
    args = parser.parse_args(argv)
    apply_environment()
    paths = [p.resolve() for p in args.notebooks] or notebook_paths()
    failed = []
    start = time.perf_counter()
    for path in paths:
        began = time.perf_counter()
        try:
            target = export(path, args.output, execute=not args.no_execute, timeout=args.timeout)
        except Exception as error:  # one lesson failing must not stop the others
            failed.append(path.name)
            reason = str(error).strip().splitlines()
            print(f"{path.name}: FAILED ({type(error).__name__}: {reason[-1] if reason else ''})", flush=True)
            continue
        seconds = time.perf_counter() - began
        shown = target.relative_to(ROOT) if target.is_relative_to(ROOT) else target
        print(f"{shown}: {seconds:.0f} s, {target.stat().st_size / 1e6:.2f} MB", flush=True)
    print(f"{len(paths) - len(failed)} of {len(paths)} lessons exported in {time.perf_counter() - start:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
