"""Lesson 04's exercises: right answers pass, common wrong ones get their own hint, undone ones wait.

Each exercise's self-check cell is run on the notebook's own imports with the solution, with other
right answers a learner can reach (a list instead of a tuple, rounding, another way to write the
function), and with the common wrong answers, each of which must get its specific hint.
"""

from __future__ import annotations

import pytest

from tests.nbtools import exercises, imports_namespace, run_self_check

NOTEBOOK = "04_cnn_building_blocks.ipynb"
EXERCISES = exercises(NOTEBOOK)
SHAPE, PARAMETERS, POOLING, LEAKY_RELU, LOSS = range(5)


@pytest.fixture(scope="module")
def namespace():
    return imports_namespace(NOTEBOOK)


def run_check(namespace: dict, index: int, answer_code: str, capsys) -> str:
    """Run exercise ``index``'s self-check after ``answer_code``; return what it printed."""
    return run_self_check(EXERCISES[index], namespace, answer_code, capsys)


def test_five_exercises_with_solutions():
    assert len(EXERCISES) == 5
    assert all({"your_turn", "check", "solution"} <= exercise.keys() for exercise in EXERCISES)


@pytest.mark.parametrize("index", range(5))
def test_solution_passes_its_self_check(namespace, index, capsys):
    assert "✅" in run_check(namespace, index, EXERCISES[index]["solution"], capsys)


@pytest.mark.parametrize("index", range(5))
def test_undone_exercise_says_so_without_raising(namespace, index, capsys):
    out = run_check(namespace, index, EXERCISES[index]["your_turn"], capsys)
    assert "⏳" in out and "not done yet" in out


RIGHT_ANSWERS = [
    (SHAPE, "output_shape = [4, 16, 16, 16]"),
    (SHAPE, "output_shape = np.array([4, 16, 16, 16])"),
    (
        SHAPE,
        "x, w = np.zeros((4, 3, 32, 32)), np.zeros((16, 3, 5, 5))\n"
        "output_shape = layers.conv2d(x, w, stride=2, padding=2).shape",
    ),
    (SHAPE, "output_shape = tuple(nn.Conv2d(3, 16, 5, stride=2, padding=2)(torch.zeros(4, 3, 32, 32)).shape)"),
    (PARAMETERS, "conv_parameters = 4640"),
    (PARAMETERS, "conv_parameters = sum(p.numel() for p in nn.Conv2d(16, 32, 3).parameters())"),
    (PARAMETERS, "conv_parameters = np.int64(4640)"),
    (POOLING, "pooled_by_hand = np.array([[5.0, 2.0], [2.0, 6.0]])"),
    (POOLING, "pooled_by_hand = ((5, 2), (2, 6))"),
    (LEAKY_RELU, "def my_leaky_relu(x, slope=0.01):\n    return np.maximum(x, slope * x)"),
    (LEAKY_RELU, "def my_leaky_relu(x, slope=0.01):\n    return x * np.where(x > 0, 1, slope)"),
    (LEAKY_RELU, "my_leaky_relu = lambda x, slope=0.01: np.where(x >= 0, x, x * slope)"),
    (LOSS, "loss_value = 0.288"),
    (LOSS, "loss_value = 0.29"),
    (LOSS, "loss_value = 0.2877"),
    (LOSS, "loss_value = np.log(4 / 3)"),
    (LOSS, "loss_value = -np.log(np.exp(np.log(3)) / (1 + np.exp(np.log(3))))"),
]


@pytest.mark.parametrize(("index", "answer"), RIGHT_ANSWERS)
def test_other_right_answers_pass(namespace, index, answer, capsys):
    assert "✅" in run_check(namespace, index, answer, capsys)


WRONG_ANSWERS = [
    # Exercise 1: the output shape (4, 16, 16, 16).
    (SHAPE, "output_shape = (4, 3, 16, 16)", "number of filters, not the input's 3 channels"),
    (SHAPE, "output_shape = (4, 16, 14, 14)", "Count the padding"),
    (SHAPE, "output_shape = (4, 16, 32, 32)", "Count the stride"),
    (SHAPE, "output_shape = (4, 16, 28, 28)", "stride 1 without padding"),
    (SHAPE, "output_shape = (4, 16, 15, 15)", "Add 1 after dividing"),
    (SHAPE, "output_shape = (4, 16, 17, 17)", "Round down, not up"),
    (SHAPE, "output_shape = (4, 16, 16.5, 16.5)", "whole numbers: use //"),
    (SHAPE, "output_shape = (16, 16, 16)", "Keep the batch axis in front"),
    (SHAPE, "output_shape = (16, 16, 16, 4)", "channels first"),
    (SHAPE, "output_shape = 16", "Give a tuple of four numbers"),
    (SHAPE, "output_shape = (4, 16, 8, 8)", "H_out = (H + 2p - k) // s + 1"),
    # Exercise 2: 32 * (16 * 3 * 3 + 1) = 4640 parameters.
    (PARAMETERS, "conv_parameters = 4608", "each of the 32 filters also has one bias"),
    (PARAMETERS, "conv_parameters = 4624", "One bias per filter"),
    (PARAMETERS, "conv_parameters = 320", "spans all 16 input channels"),
    (PARAMETERS, "conv_parameters = 2320", "32 filters, not 16 filters"),
    (PARAMETERS, "conv_parameters = 9248", "The input has 16 channels"),
    (PARAMETERS, "conv_parameters = 'many'", "Give one whole number"),
    (PARAMETERS, "conv_parameters = 100", "Count one filter's weights and its bias"),
    # Exercise 3: max pooling [[5, 2], [2, 6]].
    (POOLING, "pooled_by_hand = [[2.75, 1.0], [0.75, 3.5]]", "That is average pooling"),
    (POOLING, "pooled_by_hand = [[1, 0], [0, 1]]", "smallest number of each window"),
    (POOLING, "pooled_by_hand = [[11, 4], [3, 14]]", "each window's sum"),
    (POOLING, "pooled_by_hand = [[5, 3, 2], [5, 4, 6], [2, 4, 6]]", "has shape (3, 3)"),
    (POOLING, "pooled_by_hand = [[5, 2], [2, 5]]", "four 2x2 blocks"),
    (POOLING, "pooled_by_hand = 'five'", "Give a nested list of numbers"),
    # Exercise 4: leaky ReLU.
    (LEAKY_RELU, "def my_leaky_relu(x, slope=0.01):\n    return np.maximum(x, 0)", "That is plain ReLU"),
    (LEAKY_RELU, "def my_leaky_relu(x, slope=0.01):\n    return np.where(x > 0, x, 0.01 * x)", "use the slope"),
    (LEAKY_RELU, "def my_leaky_relu(x, slope=0.01):\n    return np.where(x > 0, x, slope)", "not the slope itself"),
    (LEAKY_RELU, "def my_leaky_relu(x, slope=0.01):\n    return np.where(x > 0, slope * x, x)", "Swapped"),
    (LEAKY_RELU, "def my_leaky_relu(x, slope=0.01):\n    return slope * x", "positives stay x"),
    (LEAKY_RELU, "def my_leaky_relu(x, slope=0.01):\n    return max(x, slope * x)", "Work on whole arrays"),
    (
        LEAKY_RELU,
        "def my_leaky_relu(x, slope=0.01):\n    x[x < 0] *= slope\n    return x",
        "changed the array it was given",
    ),
    (LEAKY_RELU, "def my_leaky_relu(x, slope=0.01):\n    return x.sum()", "keep the input's shape"),
    (LEAKY_RELU, "def my_leaky_relu(x):\n    return np.where(x > 0, x, 0.01 * x)", "Give it a second argument"),
    (LEAKY_RELU, "my_leaky_relu = lambda x: np.maximum(x, 0.01 * x)", "Give it a second argument"),
    (LEAKY_RELU, "my_leaky_relu = 3", "Work on whole arrays"),
    # Exercise 5: -log(3/4), about 0.288.
    (LOSS, "loss_value = 0.75", "probability of the true class"),
    (LOSS, "loss_value = 0.25", "probability of the other class"),
    (LOSS, "loss_value = np.log(3 / 4)", "positive"),
    (LOSS, "loss_value = -0.29", "positive"),
    (LOSS, "loss_value = 1.386", "other class's probability"),
    (LOSS, "loss_value = -np.log10(0.75)", "not log base 10"),
    (LOSS, "loss_value = 0.415", "not log base 2"),
    (LOSS, "loss_value = np.log(3)", "class 1's score"),
    (LOSS, "loss_value = 0.28", "Round rather than cut off"),
    (LOSS, "loss_value = 0.3", "two or three decimals"),
    (LOSS, "loss_value = 'about 0.29'", "Give one number"),
    (LOSS, "loss_value = 2.0", "natural log"),
]


@pytest.mark.parametrize(("index", "answer", "hint"), WRONG_ANSWERS)
def test_common_wrong_answers_get_their_own_hint(namespace, index, answer, hint, capsys):
    out = run_check(namespace, index, answer, capsys)
    assert "❌" in out
    assert hint in out, out


def test_hints_do_not_give_the_answer_away(namespace, capsys):
    """No wrong answer's hint prints the right answer itself."""
    for index, answer, _ in WRONG_ANSWERS:
        out = run_check(namespace, index, answer, capsys)
        for right in ["(4, 16, 16, 16)", "4640", "4,640", "[[5, 2], [2, 6]]", "0.288", "0.2877", "0.29"]:
            assert right in answer or right not in out, (answer, out)
