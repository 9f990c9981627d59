"""Lesson 05: what the trial tables (tests/trials/lesson_05.py) do not cover: the checks leave
no hook behind, Exercise 2's answer whatever the seed, the reload check's one-image allowance,
prose that reads the data from the run, and the lesson's shape (the loop by hand before
torch.optim before fit; the appendix at the end)."""

from __future__ import annotations

import re

import pytest
from torch import nn

from helpers.core import one_cpu_thread
from tests.nbtools import cells, exercises, run_self_check, source
from tests.trials import lesson_05 as trials

NOTEBOOK = "05_training_a_cnn.ipynb"
EXERCISES = exercises(NOTEBOOK)


@pytest.fixture(scope="module")
def namespace(tmp_path_factory):
    with trials.namespace(tmp_path_factory.mktemp("lesson05")) as names:
        yield names


def run_check(namespace, index: int, answer_code: str, capsys) -> str:
    """Run an answer, then exercise ``index``'s self-check; return what the check printed."""
    return run_self_check(EXERCISES[index], namespace, answer_code, capsys)


def test_three_exercises_with_solutions():
    assert len(EXERCISES) == 3
    assert all({"your_turn", "check", "solution"} <= exercise.keys() for exercise in EXERCISES)


# --- Exercise 1: two conv blocks (answers: tests/trials/lesson_05.py) -------------------------


def test_two_blocks_check_leaves_no_hook_behind(namespace):
    """The check records what reaches the Linear layer with a hook, and removes it again."""
    names = dict(namespace)
    exec(EXERCISES[0]["solution"], names)
    exec(EXERCISES[0]["check"], names)
    assert all(not layer._forward_pre_hooks for layer in names["two_block_model"].modules())


# --- Exercise 2: the best learning rate ------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2])
def test_best_lr_is_the_right_answer_whatever_the_seed(namespace, capsys, seed):
    """The solution's experiment with other starting weights and batch orders still picks 0.01."""
    solution = EXERCISES[1]["solution"]
    assert "mnist_cnn()" in solution and "progress=False)" in solution
    seeded = solution.replace("mnist_cnn()", f"mnist_cnn(seed={seed})").replace(
        "progress=False)", f"progress=False, seed={seed})"
    )
    with one_cpu_thread():
        assert "✅" in run_check(namespace, 1, seeded, capsys)


# --- Exercise 3: 1,000 training images -------------------------------------------------------


def test_small_accuracy_check_counts_the_minibatches_fit_trains_on(namespace):
    """The check tells training lengths apart by the batch-norm counter: fit's defaults on 1,000
    images leave 4 epochs of 8 minibatches there, and it does not depend on the seed."""
    small = namespace["trained_small"]
    assert all(int(layer.num_batches_tracked) == 32 for layer in small.modules() if isinstance(layer, nn.BatchNorm2d))
    assert 'per_epoch = math.ceil(1000 / DEFAULTS["batch_size"])' in EXERCISES[2]["check"]


# --- the reload check: whole numbers of mistakes ---------------------------------------------


def _reload_comparison():
    cell = next(source(c) for c in cells(NOTEBOOK) if "def within_one_image(" in source(c))
    names: dict = {}
    exec(cell[cell.index("def within_one_image(") : cell.index("\n\n\n#")], names)
    return names["within_one_image"]


def test_reload_check_allows_one_image_and_no_more():
    within_one_image = _reload_comparison()
    assert within_one_image(115, 115)
    assert within_one_image(115, 116) and within_one_image(116, 115)
    assert not within_one_image(115, 117) and not within_one_image(117, 115)
    # counts read from accuracies one and two images apart, where abs_tol=1e-4 failed
    total = 10_000
    for mistakes in range(100, 300):
        a, b, c = ((total - m) / total for m in (mistakes, mistakes + 1, mistakes + 2))
        counts = [round((1 - x) * total) for x in (a, b, c)]
        assert within_one_image(counts[0], counts[1]) and not within_one_image(counts[0], counts[2])


# --- the lesson's shape ------------------------------------------------------------------------


def _code() -> str:
    return "\n".join(source(cell) for cell in cells(NOTEBOOK) if cell["cell_type"] == "code")


def _headings() -> list[str]:
    return [
        line
        for cell in cells(NOTEBOOK)
        if cell["cell_type"] == "markdown"
        for line in source(cell).splitlines()
        if line.startswith("#")
    ]


def test_the_loop_by_hand_comes_before_torch_optim_before_fit():
    code = _code()
    by_hand = code.index("loss.backward()")
    assert "parameter.add_(parameter.grad, alpha=-lr)" in code and "with torch.no_grad():" in code
    optim = code.index("optimizer = torch.optim.SGD(")
    fit_call = code.index("fit_history = fit(")
    assert by_hand < optim < fit_call < code.index("history = fit(model, train_images")
    for option in ('optimizer="sgd"', 'schedule="constant"', "weight_decay=0.0", "channels_last=False"):
        assert option in code[fit_call:], option
    assert "np.isclose(fit_loss, hand_loss, rtol=1e-5, atol=0)" in code


def test_appendix_is_last_and_main_line_stays_on_training():
    headings = _headings()
    appendix = next(i for i, h in enumerate(headings) if h.startswith("## Appendix"))
    assert all(not h.startswith("## ") or h.startswith("## Appendix") for h in headings[appendix:])
    assert headings.index("## Summary") < appendix
    code = _code()
    assert code.index("DataLoader(PictureDataset()") > code.index("two_block_model = ..."), "timings in the appendix"


def test_notebook_saves_and_reloads_with_weights_only_on_the_device():
    code = _code()
    assert "save_weights(model, WEIGHTS_PATH, record=record)" in code
    assert "torch.load(WEIGHTS_PATH, weights_only=True, map_location=device)" in code
    assert "describe_record(record)" in code and "describe_record(reloaded.training_record)" in code
    assert "math.isclose(reloaded_accuracy" not in code
    assert "valid=(valid_images, valid_labels)" in code, "curves come from the validation split"


def test_every_clock_reading_after_device_work_is_synchronised():
    """Each timed block in the notebook calls sync(device) before the clock is read to close it."""
    timed = 0
    for cell in cells(NOTEBOOK):
        pieces = source(cell).split("time.perf_counter()")
        for before, after in zip(pieces[:-1], pieces[1:], strict=True):
            if after.lstrip().startswith("- start"):  # this reading closes a timed block
                timed += 1
                assert "sync(device)" in before, before
    assert timed >= 4


def test_prose_and_code_read_the_data_size_from_the_run():
    """No markdown or code names the sample's counts (9,000 training images) or the full set's
    54,000: they are printed from the run."""
    for cell in cells(NOTEBOOK):
        text = source(cell)
        for count in ("9,000", "9000", "54,000", "54_000", "54000"):
            found = re.search(rf"(?<![\d,_]){count}(?![\d])", text)  # not inside "29,000"
            assert not found, (count, text[:200])


def test_full_mnist_gets_a_printed_verdict_and_the_sample_an_assert():
    cell = next(source(c) for c in cells(NOTEBOOK) if "verdict = " in source(c))
    assert "at least 98.5% on full MNIST" in cell
    assert cell.rstrip().splitlines()[-2].strip() == 'if mnist.source == "sample":'
    assert "assert verdict" in cell.rstrip().splitlines()[-1]
