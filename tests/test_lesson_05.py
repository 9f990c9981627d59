"""Lesson 05: each exercise's solution passes its self-check, right answers are accepted whatever
the seed, common wrong answers get their specific hint, and the lesson keeps its shape (the loop
by hand before torch.optim before fit; the appendix at the end)."""

from __future__ import annotations

import pytest

from helpers.core import split_validation
from helpers.data import load_mnist
from tests.nbtools import cells, exercises, imports_namespace, run_self_check, source

NOTEBOOK = "05_training_a_cnn.ipynb"
EXERCISES = exercises(NOTEBOOK)


@pytest.fixture(scope="module")
def namespace():
    names = imports_namespace(NOTEBOOK)
    mnist = load_mnist()
    (train_images, train_labels), (valid_images, valid_labels) = split_validation(
        mnist.train_images, mnist.train_labels, valid_size=0.1, seed=0
    )
    names.update(
        mnist=mnist,
        train_images=train_images,
        train_labels=train_labels,
        valid_images=valid_images,
        valid_labels=valid_labels,
    )
    return names


def run_check(namespace, index: int, answer_code: str, capsys) -> str:
    """Run an answer, then exercise ``index``'s self-check; return what the check printed."""
    return run_self_check(EXERCISES[index], namespace, answer_code, capsys)


def test_three_exercises_with_solutions():
    assert len(EXERCISES) == 3
    assert all({"your_turn", "check", "solution"} <= exercise.keys() for exercise in EXERCISES)


@pytest.mark.parametrize("index", range(len(EXERCISES)))
def test_solution_passes_its_self_check(namespace, index, capsys):
    assert "✅" in run_check(namespace, index, EXERCISES[index]["solution"], capsys)


@pytest.mark.parametrize("index", range(len(EXERCISES)))
def test_undone_exercise_says_so_without_raising(namespace, index, capsys):
    assert "⏳" in run_check(namespace, index, EXERCISES[index]["your_turn"], capsys)


# --- Exercise 1: two conv blocks -------------------------------------------------------------


def test_two_blocks_other_right_answers_are_accepted(namespace, capsys):
    other = """
two_block_model = nn.Sequential(
    nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(1568, 10),
)
"""
    assert "✅" in run_check(namespace, 0, other, capsys)


def test_two_blocks_a_module_that_pools_with_the_functional_api_is_accepted(namespace, capsys):
    """The task asks for pools, not for nn.MaxPool2d modules: F.max_pool2d in forward is right too."""
    custom = """
class TwoBlocks(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.norm1 = nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
        self.conv2, self.norm2 = nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32)
        self.fc = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x):
        x = F.relu(self.norm1(F.max_pool2d(self.conv1(x), 2)))
        x = F.relu(self.norm2(F.max_pool2d(self.conv2(x), 2)))
        return self.fc(torch.flatten(x, 1))


two_block_model = TwoBlocks()
"""
    assert "✅" in run_check(namespace, 0, custom, capsys)


def test_two_blocks_check_uses_the_models_device(namespace, capsys):
    """A right model left on another device (by fit, on a GPU) is still right: the check builds
    its input where the model is. The meta device stands in for a GPU here."""
    on_meta = EXERCISES[0]["solution"] + "\ntwo_block_model = two_block_model.to('meta')\n"
    assert "✅" in run_check(namespace, 0, on_meta, capsys)


def test_two_blocks_check_leaves_no_hook_behind(namespace, capsys):
    """The check records what reaches the Linear layer with a hook, and removes it again."""
    names = dict(namespace)
    exec(EXERCISES[0]["solution"], names)
    exec(EXERCISES[0]["check"], names)
    assert all(not layer._forward_pre_hooks for layer in names["two_block_model"].modules())


BLOCK = "nn.MaxPool2d(2), nn.BatchNorm2d({c}), nn.ReLU()"


def _two_blocks(conv1: str, conv2: str, tail: str) -> str:
    return (
        "two_block_model = nn.Sequential(\n"
        f"    {conv1}, {BLOCK.format(c=16)},\n"
        f"    {conv2}, {BLOCK.format(c=32)},\n"
        f"    {tail})"
    )


PADDED = ("nn.Conv2d(1, 16, 3, padding=1)", "nn.Conv2d(16, 32, 3, padding=1)")
UNPADDED = ("nn.Conv2d(1, 16, 3)", "nn.Conv2d(16, 32, 3)")


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        ("two_block_model = mnist_cnn()", "It has 3 nn.Conv2d layers; we want 2"),
        ("two_block_model = 'nn.Sequential(...)'", "got a str"),
        (
            _two_blocks("nn.Conv2d(1, 32, 3, padding=1)", "nn.Conv2d(32, 64, 3, padding=1)", "nn.Flatten()"),
            "give 32, then 64 channels; we want 16, 32",
        ),
        (_two_blocks(*PADDED, "nn.Flatten()"), "no nn.Linear layer"),
        (
            _two_blocks(*PADDED, "nn.Flatten(), nn.Linear(64 * 3 * 3, 10)"),
            "nn.Flatten() gives 1568 numbers but your Linear expects 576. Its first argument must match",
        ),
        (
            _two_blocks(*UNPADDED, "nn.Flatten(), nn.Linear(32 * 7 * 7, 10)"),
            "nn.Flatten() gives 800 numbers but your Linear expects 1568. With padding=1 each conv keeps "
            "the size, so two pools give 32 * 7 * 7 = 1568; without padding the maps shrink.",
        ),
        (
            _two_blocks(*UNPADDED, "nn.Flatten(), nn.Linear(32 * 5 * 5, 10)"),
            "It runs, but nn.Flatten() gives 800 numbers, not 32 * 7 * 7. With padding=1",
        ),
        (
            _two_blocks(*PADDED, "nn.Linear(32 * 7 * 7, 10)"),
            "The Linear layer gets maps of shape (2, 32, 7, 7): put nn.Flatten() before it.",
        ),
        (
            _two_blocks(*PADDED, "nn.Linear(7, 10)"),
            "The Linear layer gets maps of shape (2, 32, 7, 7): put nn.Flatten() before it.",
        ),
        (
            """two_block_model = nn.Sequential(
    nn.Conv2d(1, 16, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(),
    nn.Conv2d(16, 32, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(),
    nn.Flatten(), nn.Linear(32 * 7 * 7, 5))""",
            "not 10 logits per image",
        ),
        (
            _two_blocks(*PADDED, "nn.Flatten(), nn.Linear(1568, 10), nn.BatchNorm2d(10)"),
            "It fails on a (2, 1, 28, 28) input: expected 4D input (got 2D input)",
        ),
    ],
    ids=[
        "three-blocks",
        "not-a-model",
        "wrong-channels",
        "no-linear",
        "wrong-linear-size",
        "no-padding",
        "no-padding-linear-fitted",
        "no-flatten",
        "no-flatten-small-linear",
        "five-outputs",
        "fails-after-the-linear",
    ],
)
def test_two_blocks_wrong_answers_get_specific_hints(namespace, capsys, wrong, hint):
    out = run_check(namespace, 0, wrong, capsys)
    assert "❌" in out and hint in out, out


# --- Exercise 2: the best learning rate ------------------------------------------------------


@pytest.mark.parametrize("right", ["best_lr = 0.01", "best_lr = 1e-2", "import numpy\nbest_lr = numpy.float32(0.01)"])
def test_best_lr_right_answers(namespace, capsys, right):
    assert "✅" in run_check(namespace, 1, right, capsys)


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        ("best_lr = 1.0", "far too large"),
        ("best_lr = 1", "far too large"),
        ("best_lr = 0.0001", "hardly move"),
        ("best_lr = 0.1", "Pick one of 0.0001, 0.01 and 1.0"),
        ("best_lr = 'the middle one'", "as a number"),
    ],
)
def test_best_lr_wrong_answers_get_specific_hints(namespace, capsys, wrong, hint):
    out = run_check(namespace, 1, wrong, capsys)
    assert "❌" in out and hint in out, out


@pytest.mark.parametrize("seed", [1, 2])
def test_best_lr_is_the_right_answer_whatever_the_seed(namespace, capsys, seed):
    """The solution's experiment with other starting weights and batch orders still picks 0.01."""
    solution = EXERCISES[1]["solution"]
    assert "mnist_cnn()" in solution and "progress=False)" in solution
    seeded = solution.replace("mnist_cnn()", f"mnist_cnn(seed={seed})").replace(
        "progress=False)", f"progress=False, seed={seed})"
    )
    assert "✅" in run_check(namespace, 1, seeded, capsys)


# --- Exercise 3: 1,000 training images -------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_small_accuracy_is_accepted_whatever_the_seed(namespace, capsys, seed):
    solution = EXERCISES[2]["solution"]
    assert "small = mnist_cnn()" in solution and "train_labels[:1000])" in solution
    seeded = solution.replace("mnist_cnn()", f"mnist_cnn(seed={seed})").replace(
        "train_labels[:1000])", f"train_labels[:1000], seed={seed}, progress=False)"
    )
    assert "✅" in run_check(namespace, 2, seeded, capsys)


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        ("small_accuracy = 95.2", "percentage"),
        ("small_accuracy = 1.0", "training images"),
        ("small_accuracy = 0.987", "9,000-image model"),
        ("small_accuracy = 0.5", "Lower than expected"),
        ("small_accuracy = 'high'", "as a number"),
    ],
)
def test_small_accuracy_wrong_answers_get_specific_hints(namespace, capsys, wrong, hint):
    out = run_check(namespace, 2, wrong, capsys)
    assert "❌" in out and hint in out, out


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
    assert "save_weights(model, WEIGHTS_PATH)" in code
    assert "torch.load(WEIGHTS_PATH, weights_only=True, map_location=device)" in code
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
