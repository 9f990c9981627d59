"""Trial answers for lesson 07's exercises (see ``tests/trials/__init__.py``).

The model is ``briefly_trained_cnn()``: each check compares an answer with what the model in the
namespace gives, so any trained model will do; every right or wrong value below is computed from
it, as a learner would compute it.
"""

from __future__ import annotations

import contextlib

import matplotlib

from helpers.core import pick_device
from helpers.data import load_mnist
from helpers.features import embed
from tests.nbtools import imports_namespace
from tests.trained import briefly_trained_cnn

matplotlib.use("Agg")

NOTEBOOK = "07_deep_features.ipynb"


@contextlib.contextmanager
def namespace(tmp_path):
    """The notebook's imports, the test set, a briefly trained ``model`` and its ``test_features``."""
    names = imports_namespace(NOTEBOOK)
    device = pick_device()
    mnist = load_mnist()
    model = briefly_trained_cnn().to(device).eval()
    names.update(
        device=device,
        mnist=mnist,
        model=model,
        test_images=mnist.test_images,
        test_labels=mnist.test_labels,
        test_features=embed(model, mnist.test_images),
    )
    yield names


# Exercise 1: every layer's precision@10 on the first 2,000 test digits.
SCORES = (
    "scores = {name: precision_at_k(embed(model, test_images[:2000], layer=name), test_labels[:2000])\n"
    "          for name in ('relu1', 'relu2', 'relu3', 'fc')}\n"
)
# Exercise 2: each test digit's nearest other test digit, by the trained features.
NEIGHBOUR = (
    "found, _ = nearest(test_features, test_features, 1, exclude_self=True)\n"
    "neighbour = found[:, 0].cpu().numpy()\n"
    "share = float(np.mean(test_labels[neighbour] != test_labels))\n"
)
# Exercise 3: precision@10 by Euclidean distance, and the slips' values.
EUCLID = (
    "rows, labels = test_features[:2000], torch.as_tensor(test_labels[:2000], device=device)\n"
    "distances = torch.cdist(rows, rows)\n"
    "with_self = (labels[distances.topk(10, largest=False).indices] == labels[:, None]).float().mean()\n"
    "distances.fill_diagonal_(float('inf'))\n"
    "precision = (labels[distances.topk(10, largest=False).indices] == labels[:, None]).float().mean()\n"
)

TRIALS = {
    1: {
        "right": [
            SCORES + "best_layer = max(scores, key=scores.get)",
            SCORES + "best_layer = np.str_(max(scores, key=scores.get))",
            SCORES + "best_layer = sorted(scores.items(), key=lambda item: item[1])[-1][0]",
        ],
        "wrong": [
            ('best_layer = "FC"', "case-sensitive"),  # the case: no more KeyError
            ('best_layer = " relu2"', "case-sensitive and have no spaces"),
            (SCORES + "best_layer = min(scores, key=scores.get)", "for each name and take the largest"),
            (SCORES + "best_layer = max(scores.values())", "not its score"),
            ("best_layer = 3", "as a string"),
            ("best_layer = model.fc", "as a string"),
            ('best_layer = "conv3"', "is not one of the layers to compare"),
        ],
    },
    2: {
        "right": [
            NEIGHBOUR + "wrong_share = share",
            NEIGHBOUR + "wrong_share = torch.tensor(share)",  # a mean taken in torch
            NEIGHBOUR + "wrong_share = np.float32(share)",
            NEIGHBOUR + "wrong_share = round(share, 3)",
            NEIGHBOUR + "wrong_share = f'{share:.4f}'",
        ],
        "wrong": [
            ("wrong_share = 0", "found itself"),  # the query left in: its own neighbour
            (NEIGHBOUR + "wrong_share = 100 * share", "percentage"),
            (NEIGHBOUR + "wrong_share = np.int64(round(share * len(test_labels)))", "count of digits"),
            (NEIGHBOUR + "wrong_share = 1 - share", "*same* label"),
            (
                "pixels = torch.as_tensor(test_images).flatten(1).float()\n"
                "found, _ = nearest(pixels, pixels, 1, exclude_self=True)\n"
                "wrong_share = np.mean(test_labels[found[:, 0].cpu().numpy()] != test_labels)",
                "neighbours by pixels",
            ),
            (NEIGHBOUR + "wrong_share = f'{100 * share:.1f}%'", "percent sign"),
            (
                "found, _ = nearest(test_features[:2000], test_features[:2000], 1, exclude_self=True)\n"
                "wrong_share = np.mean(test_labels[:2000][found[:, 0].cpu().numpy()] != test_labels[:2000])",
                "first 2,000 test digits",
            ),
            ("wrong_share = -0.02", "between 0 and 1"),
            (NEIGHBOUR + "wrong_share = [share, 1 - share]", "not 2 of them"),
        ],
    },
    3: {
        "right": [
            EUCLID + "euclidean_precision = precision",  # a one-number tensor
            EUCLID + "euclidean_precision = precision.item()",
            EUCLID + "euclidean_precision = np.float64(precision.item())",
            EUCLID + "euclidean_precision = round(precision.item(), 3)",
        ],
        "wrong": [
            (EUCLID + "euclidean_precision = 100 * precision", "percentage"),
            (EUCLID + "euclidean_precision = with_self", "found itself"),  # the diagonal not filled
            (
                "euclidean_precision = precision_at_k(test_features[:2000], test_labels[:2000])",
                "That is the cosine result",
            ),
            (EUCLID + "euclidean_precision = 10 * precision", "out of 10"),
            (
                EUCLID + "distances.fill_diagonal_(-1.0)\n"
                "euclidean_precision = (labels[distances.topk(10).indices] == labels[:, None]).float().mean()",
                "10 farthest",
            ),
            ("euclidean_precision = '95%'", "percent sign"),
            (EUCLID + "euclidean_precision = torch.stack([precision, with_self])", "not a tensor of 2"),
        ],
    },
}
