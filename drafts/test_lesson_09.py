"""Lesson 09 keeps its shape: each idea by hand before its helper (picking the labels,
pseudo-labels, the FixMatch step), the test set scored once per method, benchmark results read
from the committed files that say how they were made, prose that reads the data and every
trained number from the run. The exercises' answers are tried in ``tests/trials/lesson_09.py``."""

from __future__ import annotations

import json
import re

from benchmarks.bench_fifty_labels import results_path
from tests.nbtools import cells, exercises, source

NOTEBOOK = "09_fifty_labels.ipynb"
EXERCISES = exercises(NOTEBOOK)
CODE = [source(c) for c in cells(NOTEBOOK) if c["cell_type"] == "code"]
MARKDOWN = "\n".join(source(c) for c in cells(NOTEBOOK) if c["cell_type"] == "markdown")


def first_cell_with(text: str) -> int:
    return next(i for i, code in enumerate(CODE) if text in code)


def test_two_exercises_with_solutions_that_read_numbers_through_as_number():
    assert len(EXERCISES) == 2
    for exercise in EXERCISES:
        assert {"your_turn", "check", "solution"} <= exercise.keys()
        assert "as_number(" in exercise["check"]


def test_each_idea_by_hand_before_its_helper_and_they_agree():
    assert first_cell_with("rng.choice(positions") <= first_cell_with("pick_labelled(hidden_labels")
    assert first_cell_with("sure = confidence >= THRESHOLD") <= first_cell_with("pseudo_labels(augmented")
    assert first_cell_with("def fixmatch_step") < first_cell_with("fixmatch(helper_model")
    assert first_cell_with("fixmatch(helper_model") < first_cell_with("history = fixmatch(model")
    for said in ("same as our loop:", "same as the helper:", "same weights as our steps:"):
        assert any(said in code for code in CODE)


def test_the_unlabelled_images_are_trained_on_without_their_labels():
    training = [code for code in CODE if "fixmatch(" in code or "self_train(" in code]
    for code in training:
        assert "hidden_labels," not in code.split("accuracy")[0]
    assert "valid=(valid_images, valid_labels)" in CODE[first_cell_with("history = fixmatch(model")]


def test_prose_names_no_data_count_and_quotes_no_trained_number():
    assert not re.search(r"9,000|10,000|54,000|60,000", MARKDOWN), "counts are read from the run"
    assert not re.search(r"\b9\d\.\d%", MARKDOWN), "trained accuracies are printed by the run"


def test_benchmark_results_are_committed_with_the_command_that_made_them():
    path = results_path("notebook")
    assert path.is_file(), "run python -m benchmarks.bench_fifty_labels --part notebook"
    results = json.loads(path.read_text())
    assert results["command"].startswith("python -m benchmarks.bench_fifty_labels")
    assert len(results["rows"]) >= 5, "the verdict's band needs at least five draws"
    for row in results["rows"]:
        assert {"draw", "alone", "augmented", "self_training", "fixmatch"} <= row.keys()
