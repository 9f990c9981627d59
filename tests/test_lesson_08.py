"""Lesson 08 keeps its shape: the steps by hand before prepare_digit, the service started, called
and stopped, both models saying what trained them, prose that reads the data from the run. The
exercises' answers are tried in ``tests/trials/lesson_08.py``."""

from __future__ import annotations

import re

import matplotlib

from tests.nbtools import cells, exercises, source

matplotlib.use("Agg")

NOTEBOOK = "08_prediction_demo.ipynb"
EXERCISES = exercises(NOTEBOOK)


def cell_with(text: str) -> str:
    """The source of the notebook's first code cell containing ``text``."""
    return next(source(c) for c in cells(NOTEBOOK) if c["cell_type"] == "code" and text in source(c))


def test_three_exercises_with_solutions():
    assert len(EXERCISES) == 3
    assert all({"your_turn", "check", "solution"} <= exercise.keys() for exercise in EXERCISES)


def test_every_check_reads_numbers_through_as_number():
    for exercise in EXERCISES:
        assert "as_number(" in exercise["check"]
        assert "isinstance(answer, int | float" not in exercise["check"]


def test_both_models_say_what_trained_them_and_prose_names_no_data_count():
    code = "\n".join(source(c) for c in cells(NOTEBOOK) if c["cell_type"] == "code")
    assert "describe_record(model.training_record)" in code
    assert "describe_record(robust.training_record)" in code
    markdown = "\n".join(source(c) for c in cells(NOTEBOOK) if c["cell_type"] == "markdown")
    assert not re.search(r"9,000|10,000|54,000|60,000", markdown + code), "counts are read from the run"


def test_base64_and_json_are_explained_where_first_used():
    markdown = [source(c) for c in cells(NOTEBOOK) if c["cell_type"] == "markdown"]
    for word, meaning in [("base64", "64 plain characters"), ("JSON", "written as plain text")]:
        first = next(text for text in markdown if word in text)
        assert meaning in first, f"{word} is explained where it first appears"


def test_the_steps_by_hand_come_before_the_helper():
    code = [source(c) for c in cells(NOTEBOOK) if c["cell_type"] == "code"]
    by_hand = next(i for i, text in enumerate(code) if "centre_row = " in text)
    helper = next(i for i, text in enumerate(code) if "prepare_digit(photo_bytes)" in text)
    assert by_hand < helper
    assert "same as our steps:" in code[helper]


def test_the_service_is_started_called_and_stopped_before_the_closing_table():
    code = [source(c) for c in cells(NOTEBOOK) if c["cell_type"] == "code"]
    start = next(i for i, text in enumerate(code) if "serve.start_service()" in text)
    calls = [i for i, text in enumerate(code) if "serve.post_image(service.url" in text]
    stop = next(i for i, text in enumerate(code) if "service.stop()" in text)
    table = next(i for i, text in enumerate(code) if "scoreboard = {" in text)
    assert start < min(calls) and max(calls) < stop < table, "stopped after its last use, before the table"
    last = cells(NOTEBOOK)[-1]
    assert last["cell_type"] == "markdown" and "### Where to go next" in source(last), "the lesson ends looking ahead"


def test_the_course_table_says_which_rows_are_quoted():
    code = cell_with("scoreboard = {")
    markdown = "\n".join(source(c) for c in cells(NOTEBOOK) if c["cell_type"] == "markdown")
    assert "None" not in code, "every lesson's row has a value"
    assert "quoted" in code and "the CNN trained on all" in code
    assert "quoted from those lessons" in markdown
    assert 'quoted_here = mnist.source == QUOTED["source"]' in code, (
        "quoted rows only beside the data they were measured on"
    )


def test_models_are_loaded_or_trained():
    code = "\n".join(source(c) for c in cells(NOTEBOOK) if c["cell_type"] == "code")
    assert "trained_mnist_cnn(data=mnist)" in code
    assert "trained_robust_cnn(data=mnist, device=device)" in code


def test_the_upload_widget_handles_both_ipywidgets_versions():
    assert 'demo.uploaded_files(change["new"])' in cell_with("FileUpload(")
