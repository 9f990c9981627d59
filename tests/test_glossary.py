"""The glossary: every term the lectures use is there, as written, and every link to it lands."""

from __future__ import annotations

import re

import pytest

from tests.nbtools import NOTEBOOKS, ROOT, cells, notebook_paths, source

GLOSSARY = NOTEBOOKS / "GLOSSARY.md"
LECTURE_TERMS = ROOT.parent / "shared" / "lecture-terms.md"


def _anchors() -> set[str]:
    return set(re.findall(r'<a id="([^"]+)"></a>', GLOSSARY.read_text(encoding="utf-8")))


def _rows() -> list[list[str]]:
    rows = []
    for line in GLOSSARY.read_text(encoding="utf-8").splitlines():
        if line.startswith("| <a id="):
            rows.append([re.sub(r"<a id=\"[^\"]+\"></a>", "", cell).strip() for cell in line.strip("|").split("|")])
    return rows


def test_every_row_has_an_anchor_a_meaning_and_a_lesson_section():
    text = GLOSSARY.read_text(encoding="utf-8")
    assert len(_anchors()) == len(_rows()) >= 60
    assert all(len(row) == 4 and all(row) for row in _rows()), "English | heard | textbook | meaning"
    for lesson in range(9):
        assert f"## Lesson {lesson:02d}" in text


@pytest.mark.skipif(not LECTURE_TERMS.is_file(), reason="shared/lecture-terms.md is not beside this clone")
def test_every_lecture_term_is_in_the_glossary_as_written():
    rows = {row[0].lower(): row for row in _rows()}
    missing = []
    for line in LECTURE_TERMS.read_text(encoding="utf-8").splitlines():
        parts = [part.strip() for part in line.strip().strip("|").split("|")]
        if len(parts) != 3 or parts[0] in ("English", "---") or set(parts[0]) <= {"-"}:
            continue
        english, heard, textbook = parts
        terms = [(english, heard, textbook)]
        names, heards, textbooks = english.split(" / "), heard.split(", "), textbook.split(", ")
        if len(names) == len(heards) == len(textbooks) > 1:  # "max / average pooling": one term each
            tail = names[-1].split(" ", 1)[1] if " " in names[-1] else ""
            names = [name if " " in name or not tail else f"{name} {tail}" for name in names]
            terms = list(zip(names, heards, textbooks, strict=True))
        for name, said, written in terms:
            key = name.split(" (")[0].lower()
            found = [row for row_name, row in rows.items() if key in row_name or row_name in key]
            if not any(written in row[2] and said.split(" (")[0] in row[1] for row in found):
                missing.append(name)
    assert missing == []


def test_links_to_the_glossary_land_on_a_term():
    anchors = _anchors()
    broken = []
    for notebook in notebook_paths():
        for cell in cells(notebook):
            for anchor in re.findall(r"GLOSSARY\.md#([\w-]+)", source(cell)):
                if anchor not in anchors:
                    broken.append(f"{notebook.name}: #{anchor}")
    assert broken == []
