"""Trial answers for every exercise, one module per lesson, run by ``tests/test_exercises.py``.

Each module ``lesson_NN.py`` holds:

- ``NOTEBOOK``: the lesson's file name in ``notebooks/``.
- ``namespace(tmp_path)``: a context manager yielding what the lesson's self-check cells need
  (its imports, data, models...), built once per test session and shared by all its trials.
  Answers that need a trained model share one (``tests.trained.briefly_trained_cnn``).
- ``TRIALS``: ``{exercise number (1, 2, ...): {"right": [code, ...], "wrong": [(code, hint), ...]}}``.
  Each ``code`` is what a learner might write in the "Your turn" cell; a right one must get the
  check's ✅, a wrong one its ❌ and a hint containing ``hint``. At least three right answers in
  different forms (Python, numpy, torch, rounded...) and four wrong ones per exercise.
"""
