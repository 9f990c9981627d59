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
    colab_link = r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/[\w.-]+/notebooks/(\S+?\.ipynb)"
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


VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
REF = f"v{VERSION}"


def test_setup_cell_and_colab_links_carry_this_version():
    setup = source(cells(NOTEBOOKS[0])[1])
    assert f'REF = "{REF}"' in setup, "the setup cell clones the tag of pyproject.toml's version"
    readme = (ROOT / "README.md").read_text()
    refs = set(re.findall(r"colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/blob/([\w.-]+)/", readme))
    assert refs == {REF}, f"the README's Colab links open {refs}, the setup cells clone {REF}"


def _git(*args: str, cwd) -> None:
    import subprocess

    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def _origin(tmp_path, tags: dict[str, str]):
    """A local bare repository standing in for GitHub: one commit per tag, whose marker file says
    which version it is, and main at the last commit."""
    work = tmp_path / "work"
    (work / "notebooks").mkdir(parents=True)
    (work / "notebooks" / "00_welcome.ipynb").write_text("{}")
    _git("init", "--quiet", "--initial-branch", "main", cwd=work)
    for tag, marker in tags.items():
        (work / "version.txt").write_text(marker)
        _git("add", ".", cwd=work)
        _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", marker, cwd=work)
        if tag:
            _git("tag", tag, cwd=work)
    bare = tmp_path / "origin.git"
    _git("clone", "--quiet", "--bare", str(work), str(bare), cwd=tmp_path)
    return f"file://{bare}"


def _run_setup_cell_in_fake_colab(monkeypatch, origin: str, course, ref: str = REF) -> tuple[float, list, str]:
    """Execute the setup cell as Colab would (google.colab importable), cloning from ``origin`` into
    ``course`` for real; pip is recorded, not run. Returns (seconds, pip commands, what it printed)."""
    import contextlib
    import io
    import os
    import subprocess
    import sys
    import time
    import types

    real_run = subprocess.run
    pips: list[list[str]] = []

    def run(command, *args, **kwargs):
        if command[1:4] == ["-m", "pip", "install"]:
            pips.append(command)
            return subprocess.CompletedProcess(command, 0)
        kwargs.setdefault("capture_output", True)  # git's own messages kept out of the test output
        return real_run(command, *args, **kwargs)

    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(subprocess, "run", run)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(os.getcwd())
    setup = source(cells(NOTEBOOKS[0])[1])
    setup = setup.replace(f'"{REPOSITORY}"', repr(origin)).replace('"/content/course"', repr(str(course)))
    setup = setup.replace(f'REF = "{REF}"', f"REF = {ref!r}")
    printed = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(printed):
        exec(setup, {})
    seconds = time.perf_counter() - start
    assert sys.path.count(str(course)) == 1, "helpers importable at once, and only one entry"
    assert os.getcwd() == str(course / "notebooks")
    return seconds, pips, printed.getvalue()


def test_setup_cell_clones_this_version_once_and_a_rerun_is_fast(monkeypatch, tmp_path):
    origin = _origin(tmp_path, {REF: "this version", "": "newer work on main"})
    (tmp_path / "content").mkdir()
    course = tmp_path / "content" / "course"
    _, pips, printed = _run_setup_cell_in_fake_colab(monkeypatch, origin, course)
    assert (course / "version.txt").read_text() == "this version", "the tag, not main"
    assert printed == ""
    assert len(pips) == 1 and pips[0][-2:] == ["-e", str(course)]
    assert not {"-U", "--upgrade", "--force-reinstall"} & set(pips[0]), "Colab's packages must be kept"
    seconds, pips, printed = _run_setup_cell_in_fake_colab(monkeypatch, origin, course)
    assert pips == [] and printed == "", "a rerun clones and installs nothing"
    assert seconds < 1.0, f"a rerun took {seconds:.2f} s"
    print(f"setup cell rerun in the fake Colab: {1000 * seconds:.1f} ms")


def test_setup_cell_falls_back_to_main_when_the_tag_is_missing(monkeypatch, tmp_path):
    origin = _origin(tmp_path, {"": "main only"})
    course = tmp_path / "course"
    _, pips, printed = _run_setup_cell_in_fake_colab(monkeypatch, origin, course)
    assert (course / "version.txt").read_text() == "main only"
    assert printed == f"The course has no version {REF} yet: using its latest version (main).\n"
    assert len(pips) == 1


def test_setup_cell_updates_the_clone_when_the_version_changes(monkeypatch, tmp_path):
    origin = _origin(tmp_path, {"v0.0.1": "old", REF: "this version"})
    course = tmp_path / "course"
    _run_setup_cell_in_fake_colab(monkeypatch, origin, course, ref="v0.0.1")
    assert (course / "version.txt").read_text() == "old"
    _, pips, _ = _run_setup_cell_in_fake_colab(monkeypatch, origin, course)  # a newer notebook opened
    assert (course / "version.txt").read_text() == "this version" and len(pips) == 1


def test_a_clone_cut_short_is_made_again(monkeypatch, tmp_path):
    origin = _origin(tmp_path, {REF: "this version"})
    course = tmp_path / "course"
    (course / "notebooks").mkdir(parents=True)  # an earlier run stopped before it finished
    (course / "half-written").write_text("")
    _, pips, _ = _run_setup_cell_in_fake_colab(monkeypatch, origin, course)
    assert not (course / "half-written").exists() and (course / "version.txt").read_text() == "this version"
    assert len(pips) == 1


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
