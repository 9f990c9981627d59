"""The helper package follows the lessons: no module imports a module of a later lesson.

Every module of ``helpers/`` states its lesson as ``LESSON = N`` beside its
docstring. Each ``import`` in the syntax tree (at top level, inside functions,
in ``try`` blocks) that names another helpers module must name one of the same
or an earlier lesson, so lessons 00-04 never load lesson 05's training code.
"""

from __future__ import annotations

import ast

import pytest

from tests.nbtools import ROOT

PACKAGE = ROOT / "helpers"
MODULES = sorted(path for path in PACKAGE.glob("*.py") if path.name != "__init__.py")


def lesson_of(tree: ast.Module) -> int | None:
    """The value of a module's top-level ``LESSON = N``, or None when it has none."""
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and [getattr(target, "id", None) for target in node.targets] == ["LESSON"]
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, int)
        ):
            return node.value.value
    return None


def helper_imports(tree: ast.Module) -> list[tuple[str, int]]:
    """Every helpers module a syntax tree imports, anywhere in it, with the line number."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("helpers."):
                    found.append((alias.name.split(".")[1], node.lineno))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.startswith("helpers."):
                found.append((node.module.split(".")[1], node.lineno))
            elif node.module == "helpers":
                found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level > 0:  # from . import x / from .x import y
            names = [node.module] if node.module else [alias.name for alias in node.names]
            found.extend((name.split(".")[0], node.lineno) for name in names)
    return found


def back_imports(sources: dict[str, str]) -> list[str]:
    """What breaks the lesson order in a package given as ``{module name: source}``; empty when fine."""
    trees = {name: ast.parse(text) for name, text in sources.items()}
    lessons = {name: lesson_of(tree) for name, tree in trees.items()}
    problems = [f"helpers/{name}.py has no top-level LESSON = N" for name, n in lessons.items() if n is None]
    for name, tree in trees.items():
        for imported, line in helper_imports(tree):
            if imported not in lessons:
                problems.append(f"helpers/{name}.py:{line} imports helpers.{imported}, which does not exist")
            elif None not in (lessons[name], lessons[imported]) and lessons[imported] > lessons[name]:
                problems.append(
                    f"helpers/{name}.py:{line} (lesson {lessons[name]:02d}) imports helpers.{imported} "
                    f"(lesson {lessons[imported]:02d}), a later lesson"
                )
    return problems


def package_sources() -> dict[str, str]:
    return {path.stem: path.read_text(encoding="utf-8") for path in MODULES}


def test_no_helper_module_imports_a_later_lesson():
    assert back_imports(package_sources()) == []


def test_every_module_states_its_lesson_in_its_docstring():
    for path in MODULES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstring = ast.get_docstring(tree) or ""
        lesson = lesson_of(tree)
        assert f"lesson {lesson:02d}" in docstring.lower(), f"{path.name}: say 'lesson {lesson:02d}' in the docstring"


def test_a_back_import_is_caught_wherever_it_hides():
    sources = package_sources()
    early = "filters"
    assert lesson_of(ast.parse(sources[early])) < lesson_of(ast.parse(sources["training"]))
    sneaky = {
        "top level": "from helpers.training import fit\n",
        "inside a function": "def f():\n    import helpers.training\n",
        "package form": "from helpers import training\n",
        "relative form": "from .training import fit\n",
    }
    for where, line in sneaky.items():
        broken = dict(sources, **{early: sources[early] + "\n" + line})
        problems = back_imports(broken)
        assert any("filters.py" in p and "helpers.training" in p for p in problems), where


def test_the_early_lessons_load_without_lesson_05(tmp_path):
    """Importing the lesson 00-04 modules in a fresh interpreter does not load helpers.training."""
    import subprocess
    import sys

    early = [path.stem for path in MODULES if lesson_of(ast.parse(path.read_text(encoding="utf-8"))) <= 4]
    code = (
        f"import sys; import {', '.join('helpers.' + name for name in early)}; "
        "late = sorted(m for m in sys.modules if m in ('helpers.training', 'helpers.models'));"
        "print(late); sys.exit(1 if late else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_module_parses(path):
    ast.parse(path.read_text(encoding="utf-8"))
