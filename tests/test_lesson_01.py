"""Lesson 01's structure: three exercises with solutions. The answer tables (right answers in
every form, wrong ones with their hints, solutions, undone exercises) are in
tests/trials/lesson_01.py, run by tests/test_exercises.py."""

from __future__ import annotations

from tests.nbtools import cells, exercises, source

NOTEBOOK = "01_hand_made_filters.ipynb"
EXERCISES = exercises(NOTEBOOK)


def test_three_exercises_with_solutions():
    assert len(EXERCISES) == 3
    assert all({"your_turn", "check", "solution"} <= exercise.keys() for exercise in EXERCISES)
    assert [e["your_turn"].split("\n")[-1] for e in EXERCISES] == [
        "right_edge = ...",
        "my_response = ...",
        "accuracy_0_vs_6 = ...",
    ]


def test_prose_names_the_data_from_the_run():
    text = "\n".join(source(c) for c in cells(NOTEBOOK) if c["cell_type"] == "markdown")
    assert "this run used the bundled sample" not in text and "our sample holds" not in text
    assert "the edges inside them are lost" not in text


def test_lesson_00_asks_for_a_prediction_before_the_line_fit():
    texts = [source(cell) for cell in cells("00_welcome.ipynb")]
    ask = next(i for i, text in enumerate(texts) if "Predict before you run" in text)
    assert "np.polyfit" in texts[ask + 1]
    assert "same recipe" not in "\n".join(texts)
