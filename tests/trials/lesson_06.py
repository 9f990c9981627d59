"""Trial answers for lesson 06's exercises (see ``tests/trials/__init__.py``).

The model is ``briefly_trained_cnn()``: the checks compare an answer with what the model in the
namespace gives, so any trained model will do. The namespace runs the notebook's own cells that
the exercises need: section 4's ``top_labels`` and the cell that picks Exercise 3's channel.
"""

from __future__ import annotations

import contextlib
import io

from helpers.core import pick_device
from helpers.data import load_mnist
from tests.nbtools import cells, imports_namespace, source
from tests.trained import briefly_trained_cnn

NOTEBOOK = "06_visualizing_filters.ipynb"


def cell_with(text: str) -> str:
    """The source of the notebook's first code cell containing ``text``."""
    return next(source(c) for c in cells(NOTEBOOK) if c["cell_type"] == "code" and text in source(c))


def lesson_names(seed: int = 0) -> dict:
    """The notebook's imports, ``mnist``, ``device``, a briefly trained ``model`` (from ``seed``) on
    it, and the notebook's cells that Exercise 3 needs (``maps``, ``top_labels``, ``exercise_channel``)."""
    names = imports_namespace(NOTEBOOK)
    device = pick_device()
    names.update(mnist=load_mnist(), device=device, model=briefly_trained_cnn(seed).to(device).eval())
    names["channels"] = [0, 1, 2, 3, 4, 5]  # section 4's channels, printed by its table's cell
    with contextlib.redirect_stdout(io.StringIO()):  # what those cells print is not the test's
        for marker in (
            "digit = mnist.test_images[0]",
            "maps = V.feature_maps(",
            "top_labels = {}",
            "exercise_channel = ",
        ):
            exec(cell_with(marker), names)
    return names


@contextlib.contextmanager
def namespace(tmp_path):
    """What the self-checks need, with the model trained from seed 0 (see ``lesson_names``)."""
    yield lesson_names()


# Section 2's cosine table, written as a learner would, for Exercise 2.
COSINES = "cosines = V.cosine_similarity(model.conv1.weight.detach()[:, 0], TOP_EDGE[None])[:, 0]\n"
# The labels of the top 9 test images of a layer's channel `exercise_channel`, for Exercise 3.
TOP9 = (
    "def top9(layer):\n"
    "    return mnist.test_labels[V.top_units(model, layer, mnist.test_images, exercise_channel, k=9)[0]]\n"
)

TRIALS = {
    1: {
        "right": [
            "conv4_field = 38",
            "conv4_field = 22 + 2 * 8",
            "conv4_field = 38.0",
            "conv4_field = np.int64(38)",
            "conv4_field = torch.tensor(38)",
            "conv4_field = '38'",
        ],
        "wrong": [
            ("conv4_field = 26", "The pool comes first"),  # 18 + 2 * 4: a 3x3 conv straight on conv3
            ("conv4_field = 22", "That is one pool3 cell"),  # stops after the pool
            ("conv4_field = 66", "overlap"),  # 3 * 22: three cells side by side, no overlap
            ("conv4_field = 28", "wider than the image"),  # "it cannot be more than the image"
            ("conv4_field = 34", "pool3 adds one conv3 spacing"),  # 18 + 2 * 8: forgets the pool's own step
            ("conv4_field = 38.5", "whole number of pixels"),
            ("conv4_field = [38, 38]", "not 2 of them"),  # width and height
            ("conv4_field = '38 pixels'", "text that is not one"),
        ],
    },
    2: {
        "right": [
            COSINES + "top_edge_filter = int(cosines.argmax())",
            COSINES + "top_edge_filter = cosines.argmax()",  # a numpy integer
            COSINES + "top_edge_filter = float(cosines.argmax())",
            # the form: torch's own cosine, a tensor(k) answer
            "import torch.nn.functional as F\n"
            "edge = torch.as_tensor(TOP_EDGE, dtype=torch.float32, device=device).flatten()\n"
            "top_edge_filter = F.cosine_similarity(model.conv1.weight[:, 0].flatten(1), edge[None]).argmax()",
            # section 2's table of all eight hand-made filters, column "top"
            "top_edge_filter = torch.tensor(V.cosine_similarity(model.conv1.weight.detach()[:, 0], "
            "edge_filters())[:, filter_names().index('top')].argmax())",
        ],
        "wrong": [
            (COSINES + "top_edge_filter = int(cosines.argmin())", "most *opposite*"),  # a bottom edge
            (COSINES + "top_edge_filter = round(float(cosines.max()), 2)", "not its cosine"),
            (
                COSINES + "best, worst = cosines.argmax(), cosines.argmin()\n"
                "top_edge_filter = next(i for i in range(16) if i not in (best, worst))",
                "which row holds the largest value?",
            ),
            ("top_edge_filter = 16", "whole number from 0 to 15"),  # only filters 0-15
            # argmax without axis= over section 2's (16, 8) table: a flattened position
            (
                "top_edge_filter = np.argmax(V.cosine_similarity(model.conv1.weight.detach()[:, 0], edge_filters()))",
                "flattened table",
            ),
            ("top_edge_filter = -1", "whole number from 0 to 15"),
            (COSINES + "top_edge_filter = torch.as_tensor(cosines).topk(2).indices", "not a tensor of 2"),
            ("top_edge_filter = 'top'", "text that is not one"),
        ],
    },
    3: {
        "right": [
            TOP9 + "favourite_class = int(np.bincount(top9('conv3')).argmax())",
            TOP9 + "favourite_class = np.bincount(top9('conv3')).argmax()",  # a numpy integer
            # the form: torch.mode, a tensor(d) answer
            TOP9 + "favourite_class = torch.mode(torch.as_tensor(top9('conv3'))).values",
            TOP9 + "from collections import Counter\n"
            "favourite_class = float(Counter(top9('conv3').tolist()).most_common(1)[0][0])",
            # section 4's table holds the same labels
            "favourite_class = most_common(top_labels['conv3'][exercise_channel]).pop()",
        ],
        "wrong": [
            # the wrong layer: the chosen channel's favourite in conv2 is another digit
            (TOP9 + "favourite_class = int(np.bincount(top9('conv2')).argmax())", "the exercise asks about conv3"),
            (
                TOP9 + "layer = 'conv1' if exercise_channel < 16 else 'conv2'\n"
                "favourite_class = int(np.bincount(top9(layer)).argmax())",
                "the exercise asks about conv3",
            ),
            (TOP9 + "favourite_class = top9('conv3')[0]", "the label of the single strongest image"),
            ("favourite_class = 12", "whole number from 0 to 9"),
            ("favourite_class = 3.5", "whole number from 0 to 9"),
            (TOP9 + "favourite_class = top9('conv3')[:3]", "not an array of 3"),
            ("favourite_class = 'seven'", "text that is not one"),
        ],
    },
}
