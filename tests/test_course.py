"""The course as a whole: notebook hygiene, one repository address, matching install files."""

from __future__ import annotations

import json
import re
import tomllib

import pytest

from tests.nbtools import ROOT, cells, notebook_paths, solutions, source

REPOSITORY = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
NOTEBOOKS = notebook_paths()


def _requirement_names(lines: list[str]) -> set[str]:
    names = set()
    for line in lines:
        line = line.split("#")[0].strip().removeprefix("- ").strip()
        if not line or line.startswith(("-e", "pip:", "python")) or line == "pip":
            continue
        names.add(re.split(r"[<>=!~ \[]", line)[0].lower())
    return names


def test_there_are_lessons():
    assert [p.name[:2] for p in NOTEBOOKS][:2] == ["00", "01"]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_header_title_aims_then_setup_cell(notebook):
    all_cells = cells(notebook)
    title = source(all_cells[0])
    assert all_cells[0]["cell_type"] == "markdown"
    assert title.startswith(f"# {notebook.name[:2]} · "), "the first cell is the title: '# NN · Title'"
    assert "**Aims**" in title
    setup = source(all_cells[1])
    assert all_cells[1]["cell_type"] == "code" and setup.startswith("# Setup: in Colab")
    assert f'REPO = "{REPOSITORY}"' in setup, "the setup cell must clone the address in pyproject.toml"
    assert all_cells[1].get("outputs") == [], "locally the setup cell prints nothing"


def test_setup_cells_are_identical():
    setups = {source(cells(notebook)[1]) for notebook in NOTEBOOKS}
    assert len(setups) == 1, "copy the setup cell verbatim from another lesson"


def test_readme_links_carry_the_one_repository_address():
    readme = (ROOT / "README.md").read_text()
    addresses = set(re.findall(r"https://github\.com/[\w.-]+/[\w.-]+", readme))
    colab_link = r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/main/notebooks/(\S+?\.ipynb)"
    colab = re.findall(colab_link, readme)
    assert addresses <= {REPOSITORY}, f"README mentions other repository addresses: {addresses - {REPOSITORY}}"
    assert colab, "the README links each lesson to Colab"
    assert {f"https://github.com/{repo}" for repo, _ in colab} == {REPOSITORY}
    assert {name for _, name in colab} >= {p.name for p in NOTEBOOKS}, "every lesson has a Colab link"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_after_a_clean_run(notebook):
    code = [c for c in cells(notebook) if c["cell_type"] == "code"]
    counts = [c["execution_count"] for c in code]
    assert counts == list(range(1, len(code) + 1)), "commit after Restart and Run All"
    for cell in code:
        for output in cell["outputs"]:
            assert output["output_type"] != "error", f"error output in: {source(cell)[:60]}"
            text = json.dumps(output)
            assert not re.search(r"(/work/|/root/|/home/|/tmp/|/content/|[A-Z]:\\\\)", text), "absolute path"
            assert not re.search(r" at 0x[0-9a-f]{6,}", text), "memory address in an output"
            if output.get("name") == "stderr":
                assert "Warning" not in text, f"a warning in the output of: {source(cell)[:60]}"
    assert notebook.stat().st_size < 2_000_000


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_checked_cells_and_exercises(notebook):
    all_cells = cells(notebook)
    checked = [c for c in all_cells if c["cell_type"] == "code" and "# NBVAL_CHECK_OUTPUT" in source(c)]
    assert checked, "mark the cells with stable output as # NBVAL_CHECK_OUTPUT"
    if notebook.name.startswith("00"):
        return
    turns = [c for c in all_cells if c["cell_type"] == "code" and source(c).startswith("# Your turn")]
    assert len(turns) >= 2, "each lesson has exercises"
    assert len(solutions(notebook)) >= len(turns), "each exercise has a collapsed solution"


def test_environment_yml_lists_the_same_packages_as_requirements():
    requirements = _requirement_names((ROOT / "requirements.txt").read_text().splitlines())
    environment = _requirement_names((ROOT / "environment.yml").read_text().split("dependencies:")[1].splitlines())
    assert requirements == environment


def test_pyproject_dependencies_are_in_requirements():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert _requirement_names(pyproject) <= _requirement_names((ROOT / "requirements.txt").read_text().splitlines())


def _run_setup_cell_as_in_colab(monkeypatch, cloned: bool) -> list[list[str]]:
    """Execute the setup cell with Colab's module present; record what it would run."""
    import os
    import shutil
    import subprocess
    import sys
    import types

    commands: list[list[str]] = []
    removed: list[str] = []
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(subprocess, "run", lambda command, check: commands.append(command))
    monkeypatch.setattr(os.path, "isfile", lambda path: cloned and path == "/content/course/pyproject.toml")
    monkeypatch.setattr(shutil, "rmtree", lambda path, ignore_errors=False: removed.append(path))
    monkeypatch.setattr(os, "chdir", lambda path: None)
    monkeypatch.setattr(sys, "path", list(sys.path))
    setup = source(cells(NOTEBOOKS[0])[1])
    exec(setup, {})
    exec(setup, {})  # run twice: nothing is added twice
    assert sys.path.count("/content/course") == 1, "helpers importable at once, and only one entry"
    assert removed == ([] if cloned else ["/content/course"] * 2), "a half-finished clone is removed first"
    return commands


def test_setup_cell_in_colab_clones_when_needed_and_keeps_colabs_packages(monkeypatch):
    fresh = _run_setup_cell_as_in_colab(monkeypatch, cloned=False)
    clones = [c for c in fresh if c[:2] == ["git", "clone"]]
    installs = [c for c in fresh if c[1:4] == ["-m", "pip", "install"]]
    assert len(clones) == 2 and clones[0][-2:] == [REPOSITORY, "/content/course"]
    assert len(installs) == 2 and installs[0][-2:] == ["-e", "/content/course"]
    for command in installs:
        assert not {"-U", "--upgrade", "--force-reinstall"} & set(command), "Colab's packages must be kept"
    again = _run_setup_cell_as_in_colab(monkeypatch, cloned=True)
    assert not [c for c in again if c[:2] == ["git", "clone"]], "a finished clone is not cloned again"


def test_the_floors_keep_colabs_preinstalled_widgets():
    """Colab ships ipywidgets 7.7: the course's floor must not force an upgrade to 8."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    floors = {re.split(r"[<>=!~ \[]", d)[0].lower(): d for d in pyproject}
    assert floors["ipywidgets"] == "ipywidgets>=7.7"


@pytest.mark.parametrize("notebook", [p for p in NOTEBOOKS if int(p.name[:2]) >= 5], ids=lambda p: p.name)
def test_gpu_lessons_ask_colab_for_a_gpu_runtime(notebook):
    metadata = json.loads(notebook.read_text(encoding="utf-8"))["metadata"]
    assert metadata.get("accelerator") == "GPU"
    assert metadata.get("colab", {}).get("gpuType")
