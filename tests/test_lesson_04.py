"""Lesson 04: its structure, its small trainings on one CPU thread, its data sentence, its exercises.

The answers themselves (the solutions, other right answers, and the common wrong ones with their
hints) are tried in ``tests/trials/lesson_04.py``, run by ``tests/test_exercises.py``.
"""

from __future__ import annotations

import numpy as np

from tests.nbtools import cells, exercises, imports_namespace, run_self_check, source
from tests.trials.lesson_04 import NOTEBOOK, TRIALS

EXERCISES = exercises(NOTEBOOK)
TEXTS = [source(cell) for cell in cells(NOTEBOOK)]


def test_five_exercises_with_solutions():
    assert len(EXERCISES) == 5
    assert all({"your_turn", "check", "solution"} <= exercise.keys() for exercise in EXERCISES)


def test_hints_do_not_give_the_answer_away(capsys):
    """No wrong answer's hint prints the right answer itself."""
    namespace = imports_namespace(NOTEBOOK)
    rights = ["(4, 16, 16, 16)", "4640", "4,640", "[[5, 7], [2, 6]]", "0.288", "0.2877", "0.29"]
    for number, table in TRIALS.items():
        for answer, _ in table["wrong"]:
            out = run_self_check(EXERCISES[number - 1], namespace, answer, capsys)
            for right in rights:
                assert right in answer or right not in out, (answer, out)


def test_max_pooling_answer_is_not_its_own_transpose():
    """Issue 20: with a symmetric answer the transposed grid passed; the exercise's grid avoids it."""
    namespace = imports_namespace(NOTEBOOK)
    exec(EXERCISES[2]["solution"], namespace)
    pooled = np.asarray(namespace["pooled_by_hand"])
    assert not np.array_equal(pooled, pooled.T)


def test_small_trainings_run_on_one_cpu_thread():
    """Each PyTorch training loop and the gradient norms run inside ``one_cpu_thread(device)``."""
    loops = [text for text in TEXTS if "train_steps(" in text or "p -= lr * p.grad" in text]
    loops += [text for text in TEXTS if "gradient_norms(cnn" in text]
    assert len(loops) == 3
    assert all("with one_cpu_thread(device):" in text for text in loops)


def test_the_training_data_is_printed_from_the_run_not_written_in_prose():
    """Issue 19: the counts and the copy of MNIST are read from the run (full MNIST or the sample)."""
    markdown = [source(cell) for cell in cells(NOTEBOOK) if cell["cell_type"] == "markdown"]
    for text in markdown:
        for count in ("8,000", "2,000", "10,000", "54,000", "60,000"):
            assert count not in text, (count, text[:200])
    split = next(text for text in TEXTS if "split_validation(" in text and "valid_size" in text)
    assert "len(train_images)" in split and "len(valid_images)" in split and "mnist.source" in split
