"""Trial answers for lesson 05's exercises (see ``tests/trials/__init__.py``).

Exercise 3's check scores the learner's model itself and reads how many minibatches it trained
on (every batch-norm layer counts them), so its trials need models. The right one is trained
once per session (``fit``'s defaults on the first 1,000 training images: 32 minibatches, about
2 s on one CPU thread); the wrong training lengths are copies of it whose counters say what the
wrong recipe would have left there (15 epochs, all the training images, trained twice), and
section 6's 15-epoch ``small_model`` is stood in for by ``briefly_trained_cnn()`` with its
counters set to 15 epochs of 1,000 images.
"""

from __future__ import annotations

import contextlib
import copy
from functools import cache

from torch import nn

from helpers.core import one_cpu_thread, split_validation
from helpers.data import load_mnist
from helpers.models import mnist_cnn
from helpers.training import accuracy, fit
from tests.nbtools import imports_namespace
from tests.trained import briefly_trained_cnn

NOTEBOOK = "05_training_a_cnn.ipynb"


def _with_counters(model: nn.Module, batches: int) -> nn.Module:
    """A copy of ``model`` whose batch-norm layers say they trained on ``batches`` minibatches."""
    model = copy.deepcopy(model)
    for layer in model.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.num_batches_tracked.fill_(batches)
    return model


@cache
def _data() -> dict:
    mnist = load_mnist()
    (train_images, train_labels), (valid_images, valid_labels) = split_validation(
        mnist.train_images, mnist.train_labels, valid_size=0.1, seed=0
    )
    return dict(
        mnist=mnist,
        train_images=train_images,
        train_labels=train_labels,
        valid_images=valid_images,
        valid_labels=valid_labels,
    )


@cache
def _small() -> tuple[nn.Module, list[dict]]:
    """Exercise 3 done right: ``fit``'s defaults on the first 1,000 training images, on the CPU."""
    data = _data()
    with one_cpu_thread():  # small batches: one thread is faster, and unaffected by other load
        model = mnist_cnn()
        history = fit(
            model,
            data["train_images"][:1000],
            data["train_labels"][:1000],
            valid=(data["valid_images"], data["valid_labels"]),
            progress=False,
            device="cpu",
        )
    return model.eval(), history


@contextlib.contextmanager
def namespace(tmp_path):
    """The notebook's imports, section 1's data and split, section 6's ``small_model`` and
    ``small_history`` (stand-ins), and Exercise 3 trained right (``trained_small`` and its
    ``trained_small_history``) with copies trained for the wrong length."""
    names = imports_namespace(NOTEBOOK)
    names.update(_data())
    small, history = _small()
    section6 = _with_counters(briefly_trained_cnn(), 15 * 8)
    names.update(
        small_model=section6,
        small_history=[
            {"epoch": 15, "valid_accuracy": accuracy(section6, names["valid_images"], names["valid_labels"])}
        ],
        trained_small=copy.deepcopy(small),
        trained_small_history=history,
        fifteen_epochs=_with_counters(small, 15 * 8),
        all_images=_with_counters(small, 4 * 71),
        trained_twice=_with_counters(small, 2 * 32),
        five_epochs=_with_counters(small, 5 * 8),
    )
    yield names


def _two_blocks(block1: str, block2: str, tail: str = "nn.Flatten(), nn.Linear(32 * 7 * 7, 10)") -> str:
    return f"two_block_model = nn.Sequential(\n    {block1},\n    {block2},\n    {tail},\n)\n"


CONV = ("nn.Conv2d(1, 16, 3, padding=1)", "nn.Conv2d(16, 32, 3, padding=1)")
UNPADDED = ("nn.Conv2d(1, 16, 3)", "nn.Conv2d(16, 32, 3)")


def _blocks(conv: tuple[str, str], middle: str = "nn.MaxPool2d(2), nn.BatchNorm2d({c}), nn.ReLU()") -> tuple[str, str]:
    return f"{conv[0]}, {middle.format(c=16)}", f"{conv[1]}, {middle.format(c=32)}"


FUNCTIONAL = """
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

SCORE = "accuracy(small, valid_images, valid_labels)"
RIGHT_MODEL = "small = trained_small\n"

TRIALS = {
    1: {
        "right": [
            _two_blocks(*_blocks(CONV)),  # convolutions with a bias: harmless
            FUNCTIONAL,  # pools and ReLUs from torch.nn.functional in forward
            # lesson 04's order, conv → batch norm → ReLU → pool: all four pieces, same sizes
            _two_blocks(*_blocks(CONV, "nn.BatchNorm2d({c}), nn.ReLU(), nn.MaxPool2d(2)")),
            # named layers
            "from collections import OrderedDict\n"
            "two_block_model = nn.Sequential(OrderedDict(\n"
            "    conv1=nn.Conv2d(1, 16, 3, padding=1, bias=False), pool1=nn.MaxPool2d(2),\n"
            "    norm1=nn.BatchNorm2d(16), relu1=nn.ReLU(),\n"
            "    conv2=nn.Conv2d(16, 32, 3, padding=1, bias=False), pool2=nn.MaxPool2d(2),\n"
            "    norm2=nn.BatchNorm2d(32), relu2=nn.ReLU(),\n"
            "    flatten=nn.Flatten(), fc=nn.Linear(1568, 10)))\n",
            # left on another device (by fit, on a GPU): the meta device stands in for one
            _two_blocks(*_blocks(CONV)) + "two_block_model = two_block_model.to('meta')\n",
        ],
        "wrong": [
            # the case: no batch normalisation and no ReLU
            (
                _two_blocks(
                    "nn.Conv2d(1, 16, 3, padding=1), nn.MaxPool2d(2)",
                    "nn.Conv2d(16, 32, 3, padding=1), nn.MaxPool2d(2)",
                ),
                "It has no batch normalisation: each block is conv → pool → nn.BatchNorm2d",
            ),
            # batch normalisation but no ReLU
            (_two_blocks(*_blocks(CONV, "nn.MaxPool2d(2), nn.BatchNorm2d({c})")), "each block ends with a ReLU"),
            # a ReLU that lets negative numbers through
            # batch norm after the ReLU: a block that does not end with the ReLU
            (
                _two_blocks(*_blocks(CONV, "nn.MaxPool2d(2), nn.ReLU(), nn.BatchNorm2d({c})")),
                "each block ends with a ReLU",
            ),
            (
                _two_blocks(*_blocks(CONV, "nn.MaxPool2d(2), nn.BatchNorm2d({c}), nn.LeakyReLU(0.1)")),
                "not LeakyReLU",
            ),
            (_two_blocks(*_blocks(CONV, "nn.MaxPool2d(2), nn.BatchNorm2d({c}), nn.Sigmoid()")), "not Sigmoid"),
            (
                _two_blocks(*_blocks(CONV), "nn.Flatten(), nn.Linear(1568, 10), nn.Softmax(dim=1)"),
                "It ends with a softmax",
            ),
            # one batch norm for both blocks' channel counts
            (
                _two_blocks(*_blocks(CONV, "nn.MaxPool2d(2), nn.BatchNorm2d(16), nn.ReLU()")),
                "normalise [16, 16] channels; we want [16, 32].",
            ),
            ("two_block_model = mnist_cnn()", "It has 3 nn.Conv2d layers; we want 2"),
            ("two_block_model = 'nn.Sequential(...)'", "got a str"),
            (
                _two_blocks(
                    "nn.Conv2d(1, 32, 3, padding=1), nn.MaxPool2d(2), nn.BatchNorm2d(32), nn.ReLU()",
                    "nn.Conv2d(32, 64, 3, padding=1), nn.MaxPool2d(2), nn.BatchNorm2d(64), nn.ReLU()",
                ),
                "give 32, then 64 channels; we want 16, 32",
            ),
            (_two_blocks(*_blocks(CONV), "nn.Flatten()"), "no nn.Linear layer"),
            (
                _two_blocks(*_blocks(CONV), "nn.Flatten(), nn.Linear(64 * 3 * 3, 10)"),
                "nn.Flatten() gives 1568 numbers but your Linear expects 576. Its first argument must match",
            ),
            (
                _two_blocks(*_blocks(UNPADDED)),
                "nn.Flatten() gives 800 numbers but your Linear expects 1568. With padding=1 each conv keeps "
                "the size, so two pools give 32 * 7 * 7 = 1568; without padding the maps shrink.",
            ),
            (
                _two_blocks(*_blocks(UNPADDED), "nn.Flatten(), nn.Linear(32 * 5 * 5, 10)"),
                "It runs, but nn.Flatten() gives 800 numbers, not 32 * 7 * 7. With padding=1",
            ),
            (
                _two_blocks(*_blocks(CONV), "nn.Linear(32 * 7 * 7, 10)"),
                "The Linear layer gets maps of shape (2, 32, 7, 7): put nn.Flatten() before it.",
            ),
            (_two_blocks(*_blocks(CONV), "nn.Flatten(), nn.Linear(32 * 7 * 7, 5)"), "not 10 logits per image"),
            (
                _two_blocks(*_blocks(CONV), "nn.Flatten(), nn.Linear(1568, 10), nn.MaxPool2d(2)"),
                "It fails on a (2, 1, 28, 28) input: non-empty 3D or 4D (batch mode) tensor expected",
            ),
        ],
    },
    2: {
        "right": [
            "best_lr = 0.01",
            "best_lr = 1e-2",
            "best_lr = np.float32(0.01)",
            "best_lr = torch.tensor(0.01)",
            "best_lr = '0.01'",
            "scores = {0.0001: 0.31, 0.01: 0.93, 1.0: 0.10}\nbest_lr = max(scores, key=scores.get)",
        ],
        "wrong": [
            ("best_lr = 1.0", "far too large"),
            ("best_lr = 1", "far too large"),
            ("best_lr = torch.tensor(1.0)", "far too large"),
            ("best_lr = 0.0001", "hardly move"),
            ("best_lr = np.float64(1e-4)", "hardly move"),
            ("best_lr = 0.1", "Pick one of 0.0001, 0.01 and 1.0"),
            ("best_lr = 'the middle one'", "text that is not one"),
            ("best_lr = [0.0001, 0.01, 1.0]", "not 3 of them"),
            ("best_lr = '1%'", "percent"),
        ],
    },
    3: {
        "right": [
            RIGHT_MODEL + f"small_accuracy = {SCORE}",
            RIGHT_MODEL + f"small_accuracy = torch.tensor({SCORE})",
            RIGHT_MODEL + "small_accuracy = np.float32(trained_small_history[-1]['valid_accuracy'])",
            RIGHT_MODEL + "small_accuracy = (predict(small, valid_images) == valid_labels).mean()",
            RIGHT_MODEL + f"small_accuracy = round({SCORE}, 3)",
            RIGHT_MODEL + f"small_accuracy = round({SCORE}, 2)",
            RIGHT_MODEL + f"small_accuracy = f'{{{SCORE}:.3f}}'",
        ],
        "wrong": [
            # the issue's cases: scored on the test set; section 6's 15-epoch model
            (
                RIGHT_MODEL + "small_accuracy = accuracy(small, mnist.test_images, mnist.test_labels)",
                "score on the test set",
            ),
            (
                "small = small_model\nsmall_accuracy = accuracy(small, valid_images, valid_labels)",
                "That is section 6's model (15 epochs",
            ),
            (f"small = fifteen_epochs\nsmall_accuracy = {SCORE}", "trained for 15 epochs, section 6's recipe"),
            (
                RIGHT_MODEL + "small_accuracy = small_history[-1]['valid_accuracy']",
                "section 6's 15-epoch model's score",
            ),
            # the training images' score: after training, and fit's average over the last epoch
            (
                RIGHT_MODEL + "small_accuracy = accuracy(small, train_images[:1000], train_labels[:1000])",
                "the training images' score",
            ),
            (
                RIGHT_MODEL + "small_accuracy = trained_small_history[-1]['train_accuracy']",
                "the training images' score",
            ),
            (RIGHT_MODEL + f"small_accuracy = 100 * {SCORE}", "looks like a percentage"),
            (RIGHT_MODEL + "small_accuracy = '95%'", "percent"),
            (f"small = all_images\nsmall_accuracy = {SCORE}", "trained on all the training images"),
            (f"small = trained_twice\nsmall_accuracy = {SCORE}", "trained 2 times over"),
            (f"small = five_epochs\nsmall_accuracy = {SCORE}", "small trained on 40 minibatches"),
            (f"small = mnist_cnn()\nsmall_accuracy = {SCORE}", "has not been trained yet"),
            (f"small = ...\nsmall_accuracy = {SCORE.replace('small', 'trained_small')}", "Keep the model you trained"),
            (RIGHT_MODEL + f"small_accuracy = {SCORE} - 0.02", "not small's validation accuracy"),
            (RIGHT_MODEL + f"small_accuracy = 1 - {SCORE}", "the share of mistakes"),
        ],
    },
}
