"""Reading the course notebooks from tests: cells, setup cells and exercise solutions."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"

_SOLUTION = re.compile(r"<details>.*?```python\n(.*?)```.*?</details>", re.DOTALL)


def notebook_paths() -> list[Path]:
    """Every lesson notebook, in course order."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def cells(notebook: str | Path) -> list[dict]:
    """The cells of a notebook (by path, or by file name inside notebooks/)."""
    path = Path(notebook)
    if not path.is_absolute():
        path = NOTEBOOKS / path
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def source(cell: dict) -> str:
    """A cell's source as one string."""
    text = cell["source"]
    return text if isinstance(text, str) else "".join(text)


def solutions(notebook: str | Path) -> list[str]:
    """The Python code of every collapsed ``<details>`` solution, in notebook order."""
    found = []
    for cell in cells(notebook):
        if cell["cell_type"] == "markdown":
            found.extend(_SOLUTION.findall(source(cell)))
    return found


def exercises(notebook: str | Path) -> list[dict[str, str]]:
    """Each exercise's code, in notebook order: ``your_turn``, ``check`` and ``solution``.

    An exercise is a code cell starting with ``# Your turn``, the self-check
    code cell right after it, and the first collapsed solution after that.
    """
    found: list[dict[str, str]] = []
    waiting_for = None
    for cell in cells(notebook):
        text = source(cell)
        if cell["cell_type"] == "code" and text.startswith("# Your turn"):
            found.append({"your_turn": text})
            waiting_for = "check"
        elif waiting_for == "check" and cell["cell_type"] == "code":
            found[-1]["check"] = text
            waiting_for = "solution"
        elif waiting_for == "solution" and cell["cell_type"] == "markdown" and _SOLUTION.search(text):
            found[-1]["solution"] = _SOLUTION.search(text).group(1)
            waiting_for = None
    return found


def run_self_check(exercise: dict[str, str], namespace: dict, answer_code: str, capsys) -> str:
    """Run ``answer_code``, then the exercise's self-check, in a copy of ``namespace``.

    Returns what the self-check printed (its ✅, ❌ or ⏳ line and hint); what
    the answer itself printed is left out.
    """
    names = dict(namespace)
    exec(answer_code, names)
    capsys.readouterr()
    exec(exercise["check"], names)
    return capsys.readouterr().out


def imports_namespace(notebook: str | Path) -> dict:
    """A namespace holding what the notebook's import cell (the cell after the setup cell) imports."""
    namespace: dict = {}
    exec(source(cells(notebook)[2]), namespace)
    return namespace
