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
