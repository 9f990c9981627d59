"""Trial answers for lesson 09's exercises (see ``tests/trials/__init__.py``).

A briefly trained model (``briefly_trained_cnn()``) stands in for the lesson's models: its
pseudo-labels at two thresholds (0.6, then every guess) stand in for the two rounds of self-training, and its
probabilities on the validation split for the FixMatch model's.
"""

from __future__ import annotations

import contextlib
import io

from helpers.core import split_validation
from helpers.data import load_mnist
from helpers.semisupervised import pseudo_labels
from tests.nbtools import cells, imports_namespace, source
from tests.trained import briefly_trained_cnn

NOTEBOOK = "09_fifty_labels.ipynb"


def cell_with(text: str) -> str:
    """The source of the notebook's first code cell containing ``text``."""
    return next(source(c) for c in cells(NOTEBOOK) if c["cell_type"] == "code" and text in source(c))


@contextlib.contextmanager
def namespace(tmp_path):
    """The notebook's imports; the split; ``rounds`` (two rounds of pseudo-labels, at 0.6 and
    0), ``wrong`` (round 1's wrong ones); ``model``, ``CANDIDATES`` and ``valid_probabilities``
    (the notebook's own cell)."""
    names = imports_namespace(NOTEBOOK)
    mnist = load_mnist()
    (train_images, hidden_labels), (valid_images, valid_labels) = split_validation(
        mnist.train_images, mnist.train_labels
    )
    model = briefly_trained_cnn()
    rounds = []
    for number, threshold in enumerate((0.6, 0.0), start=1):  # with the brief model: mistakes
        positions, guesses = pseudo_labels(model, train_images, threshold)
        rounds.append({"round": number, "pseudo_positions": positions, "pseudo_labels": guesses})
    first = rounds[0]
    wrong = first["pseudo_positions"][first["pseudo_labels"] != hidden_labels[first["pseudo_positions"]]]
    names.update(
        mnist=mnist,
        train_images=train_images,
        hidden_labels=hidden_labels,
        valid_images=valid_images,
        valid_labels=valid_labels,
        model=model.eval(),
        rounds=rounds,
        wrong=wrong,
    )
    with contextlib.redirect_stdout(io.StringIO()):
        exec(cell_with("CANDIDATES = "), names)
    yield names


SECOND = (
    "positions, guesses = rounds[1]['pseudo_positions'], rounds[1]['pseudo_labels']\n"
    "truth = hidden_labels[positions]\n"
    "counts = np.bincount(truth[guesses != truth], minlength=10)\n"
)
FIRST = (
    "positions, guesses = rounds[0]['pseudo_positions'], rounds[0]['pseudo_labels']\n"
    "truth = hidden_labels[positions]\n"
    "counts = np.bincount(truth[guesses != truth], minlength=10)\n"
)
KEPT = (
    "confidence = valid_probabilities.max(1)\n"
    "def right(t):\n"
    "    sure = confidence >= t\n"
    "    return (valid_probabilities.argmax(1)[sure] == valid_labels[sure]).mean()\n"
    "lowest = next((t for t in CANDIDATES if right(t) >= 0.99), CANDIDATES[-1])\n"
)

TRIALS = {
    1: {
        "right": [
            SECOND + "most_mislabelled = int(np.argmax(counts))",
            SECOND + "most_mislabelled = np.argmax(counts)",  # a numpy integer
            SECOND + "most_mislabelled = torch.as_tensor(counts).argmax()",  # a torch scalar tensor
            SECOND + "most_mislabelled = float(np.argmax(counts))",  # 3.0
            SECOND + "most_mislabelled = str(np.argmax(counts))",  # text
            SECOND + "most_mislabelled = [int(np.argmax(counts))]",  # a one-element list
        ],
        "wrong": [
            # the model's wrong guess rather than the true digit
            (
                "positions, guesses = rounds[1]['pseudo_positions'], rounds[1]['pseudo_labels']\n"
                "bad = guesses != hidden_labels[positions]\n"
                "most_mislabelled = int(np.argmax(np.bincount(guesses[bad], minlength=10)))",
                "the wrong label given most often",
            ),
            (SECOND + "most_mislabelled = int(counts.max())", "That is how many"),
            (FIRST + "most_mislabelled = int(np.argmax(counts))", "use rounds[1], the second round"),
            ("most_mislabelled = '7 or 9'", "text that is not one"),
            ("most_mislabelled = 0.5", "Give one digit"),
            ("most_mislabelled = 12", "Give one digit"),
            (SECOND + "most_mislabelled = counts.max() / counts.sum()", "Give one digit"),  # a share
            ("most_mislabelled = True", "yes/no"),
            (SECOND + "most_mislabelled = counts", "not an array of 10"),
        ],
    },
    2: {
        "right": [
            KEPT + "threshold = lowest",
            KEPT + "threshold = np.float64(lowest)",
            KEPT + "threshold = torch.tensor(lowest)",  # float32: 0.95 is 0.949999988 there
            KEPT + "threshold = str(lowest)",
            KEPT + "threshold = np.float32(lowest)",
        ],
        "wrong": [
            (KEPT + "threshold = 100 * lowest", "That is a percentage"),
            ("threshold = 0.5", "not yet 99%"),  # a low threshold: every guess is kept
            ("threshold = CANDIDATES[-2]", "we want the lowest"),
            ("threshold = CANDIDATES[-1]", "sure of no validation image"),
            (KEPT + "threshold = float((confidence >= lowest).mean())", "share of images"),
            (KEPT + "threshold = float(right(lowest))", "share of images"),
            ("threshold = 0.8", "Give one of CANDIDATES"),
            ("threshold = '95%'", "percent sign"),
            ("threshold = CANDIDATES", "not 6 of them"),
        ],
    },
}
