"""Trial answers for lesson 04's exercises (see ``tests/trials/__init__.py``).

The exercises need no data and no model: the namespace is the notebook's import cell (its
imports, ``device``, ``dtype``, ``to_torch`` and ``same``).
"""

from __future__ import annotations

import contextlib

from tests.nbtools import imports_namespace

NOTEBOOK = "04_cnn_building_blocks.ipynb"


@contextlib.contextmanager
def namespace(tmp_path):
    """What the notebook's import cell defines."""
    yield imports_namespace(NOTEBOOK)


def leaky(body: str, signature: str = "x, slope=0.01") -> str:
    """A learner's ``my_leaky_relu`` returning ``body``."""
    return f"def my_leaky_relu({signature}):\n    return {body}"


TRIALS = {
    1: {  # output shape (4, 16, 16, 16)
        "right": [
            "output_shape = (4, 16, 16, 16)",
            "output_shape = [4, 16, 16, 16]",
            "output_shape = np.array([4, 16, 16, 16])",
            "output_shape = (4.0, 16.0, 16.0, 16.0)",
            "x, w = np.zeros((4, 3, 32, 32)), np.zeros((16, 3, 5, 5))\n"
            "output_shape = layers.conv2d(x, w, stride=2, padding=2).shape",
            "output_shape = nn.Conv2d(3, 16, 5, stride=2, padding=2)(torch.zeros(4, 3, 32, 32)).shape",
            "output_shape = torch.tensor([4, 16, 16, 16])",
            "output_shape = (np.int64(4), 16, torch.tensor(16), '16')",
        ],
        "wrong": [
            ("output_shape = (4, 3, 16, 16)", "number of filters, not the input's 3 channels"),
            ("output_shape = (4, 16, 14, 14)", "Count the padding"),
            ("output_shape = (4, 16, 32, 32)", "Count the stride"),
            ("output_shape = (4, 16, 28, 28)", "stride 1 without padding"),
            ("output_shape = (4, 16, 15, 15)", "Add 1 after dividing"),
            ("output_shape = (4, 16, 17, 17)", "Round down, not up"),
            ("output_shape = (4, 16, 16.5, 16.5)", "whole numbers: use //"),
            ("output_shape = (16, 16, 16)", "Keep the batch axis in front"),
            ("output_shape = (16, 16, 16, 4)", "channels first"),
            ("output_shape = 16", "Give a tuple of four numbers"),
            ("output_shape = (4, 16, 16)", "Give four numbers, (images, depth, height, width); you gave 3"),
            ("output_shape = '(4, 16, 16, 16)'", "Give a tuple of four numbers"),
            ("output_shape = (4, 16, 8, 8)", "H_out = (H + 2p - k) // s + 1"),
            ("output_shape = (4, 16, 16, '16 px')", "text that is not one"),
        ],
    },
    2: {  # 32 * (16 * 3 * 3 + 1) = 4640
        "right": [
            "conv_parameters = 4640",
            "conv_parameters = 32 * (16 * 3 * 3 + 1)",
            "conv_parameters = 4640.0",
            "conv_parameters = np.int64(4640)",
            "conv_parameters = sum(p.numel() for p in nn.Conv2d(16, 32, 3).parameters())",
            "conv_parameters = torch.tensor(4640)",
            "conv = nn.Conv2d(16, 32, kernel_size=3)\nconv_parameters = conv.weight.numel() + conv.bias.numel()",
            "conv_parameters = '4640'",
        ],
        "wrong": [
            ("conv_parameters = 4608", "each of the 32 filters also has one bias"),
            ("conv_parameters = 4624", "One bias per filter"),
            ("conv_parameters = 320", "spans all 16 input channels"),
            ("conv_parameters = 288", "spans all 16 input channels, and has a bias"),
            ("conv_parameters = 2320", "32 filters, not 16 filters"),
            ("conv_parameters = 9248", "The input has 16 channels"),
            ("conv_parameters = torch.tensor(4608)", "each of the 32 filters also has one bias"),
            ("conv_parameters = 'many'", "text that is not one"),
            ("conv_parameters = [4608, 32]", "not 2 of them"),
            ("conv_parameters = 100", "Count one filter's weights and its bias"),
        ],
    },
    3: {  # max pooling: [[5, 7], [2, 6]]
        "right": [
            "pooled_by_hand = [[5, 7], [2, 6]]",
            "pooled_by_hand = np.array([[5.0, 7.0], [2.0, 6.0]])",
            "pooled_by_hand = ((5, 7), (2, 6))",
            "pooled_by_hand = torch.tensor([[5, 7], [2, 6]])",
            "m = np.array([[1, 3, 2, 0], [5, 2, 1, 7], [0, 0, 4, 6], [2, 1, 3, 1]])\n"
            "pooled_by_hand = m.reshape(2, 2, 2, 2).max(axis=(1, 3))",
            "pooled_by_hand = F.max_pool2d(torch.tensor([[[1., 3, 2, 0], [5, 2, 1, 7], [0, 0, 4, 6], "
            "[2, 1, 3, 1]]]), 2)[0]",
            "pooled_by_hand = [[np.int64(5), 7], [2, torch.tensor(6)]]",
        ],
        "wrong": [
            # the case: the transposed grid (the old right answer was symmetric)
            ("pooled_by_hand = [[5, 2], [7, 6]]", "Rows and columns are swapped"),
            ("pooled_by_hand = [[2.75, 2.5], [0.75, 3.5]]", "That is average pooling"),
            ("pooled_by_hand = [[1, 0], [0, 1]]", "smallest number of each window"),
            ("pooled_by_hand = [[11, 10], [3, 14]]", "each window's sum"),
            ("pooled_by_hand = [[5, 3, 7], [5, 4, 7], [2, 4, 6]]", "has shape (3, 3)"),  # stride 1
            ("pooled_by_hand = [5, 7, 2, 6]", "has shape (4,)"),
            ("pooled_by_hand = [[5, 7], [2, 5]]", "four 2x2 blocks"),
            ("pooled_by_hand = [[5, 6], [7, 2]]", "in the wrong places"),
            ("pooled_by_hand = 'five'", "Give a nested list of numbers"),
            ("pooled_by_hand = [[5, 7], [2]]", "same number of numbers"),
            ("pooled_by_hand = [[[5, 7], [2, 6]]]", "Too many brackets"),  # a (1, 2, 2) array
            ("pooled_by_hand = np.array([[5, 7], [2, 6]]).T", "Rows and columns are swapped"),
            ("pooled_by_hand = [[5, 7], [2, '6%']]", "percent sign"),
        ],
    },
    4: {  # leaky ReLU
        "right": [
            leaky("np.where(x > 0, x, slope * x)"),
            leaky("np.maximum(x, slope * x)"),
            leaky("x * np.where(x > 0, 1, slope)"),
            "my_leaky_relu = lambda x, slope=0.01: np.where(x >= 0, x, x * slope)",
            leaky("F.leaky_relu(torch.as_tensor(x), slope).numpy()"),
        ],
        "wrong": [
            (leaky("np.maximum(x, 0)"), "That is plain ReLU"),
            (leaky("np.where(x > 0, x, 0.01 * x)"), "use the slope"),
            (leaky("np.where(x > 0, x, slope)"), "not the slope itself"),
            (leaky("np.where(x > 0, slope * x, x)"), "Swapped"),
            (leaky("slope * x"), "positives stay x"),
            (leaky("max(x, slope * x)"), "Work on whole arrays"),
            (
                "def my_leaky_relu(x, slope=0.01):\n    x[x < 0] *= slope\n    return x",
                "changed the array it was given",
            ),
            (leaky("x.sum()"), "keep the input's shape"),
            (leaky("np.where(x > 0, x, 0.01 * x)", signature="x"), "Give it a second argument"),
            ("my_leaky_relu = lambda x: np.maximum(x, 0.01 * x)", "Give it a second argument"),
            ("my_leaky_relu = 3", "Give a function"),
            ("my_leaky_relu = F.leaky_relu", "not numpy arrays"),  # PyTorch's own, on numpy input
        ],
    },
    5: {  # -log(3/4), about 0.288
        "right": [
            "loss_value = -np.log(3 / 4)",
            "loss_value = 0.288",
            "loss_value = 0.29",
            "loss_value = 0.2877",
            "loss_value = np.log(4 / 3)",
            "loss_value = np.float32(0.2877)",
            "loss_value = F.cross_entropy(torch.tensor([[0.0, np.log(3)]]), torch.tensor([1]))",
            "loss_value = -np.log(np.exp(np.log(3)) / (1 + np.exp(np.log(3))))",
            "loss_value = '0.288'",
        ],
        "wrong": [
            ("loss_value = 0.75", "probability of the true class"),
            ("loss_value = 0.25", "probability of the other class"),
            ("loss_value = np.log(3 / 4)", "positive"),
            ("loss_value = -0.29", "positive"),
            ("loss_value = 1.386", "other class's probability"),
            ("loss_value = -np.log10(0.75)", "not log base 10"),
            ("loss_value = 0.415", "not log base 2"),
            ("loss_value = np.log(3)", "class 1's score"),
            ("loss_value = 0.28", "Round rather than cut off"),
            ("loss_value = 0.3", "two or three decimals"),
            ("loss_value = 'about 0.29'", "text that is not one"),
            ("loss_value = '28.8%'", "percent sign"),
            ("loss_value = torch.tensor([0.0, 0.288])", "not a tensor of 2"),
            ("loss_value = 2.0", "natural log"),
        ],
    },
}
