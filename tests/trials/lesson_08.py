"""Trial answers for lesson 08's exercises (see ``tests/trials/__init__.py``).

A briefly trained model (``briefly_trained_cnn()``) stands in for both of the lesson's models; the
namespace makes our photo with the notebook's own cell and runs the web service on that model,
stopping it when the context ends.
"""

from __future__ import annotations

import contextlib
import io

import matplotlib

from helpers.core import pick_device
from helpers.data import load_mnist
from helpers.models import mnist_cnn
from helpers.serve import start_service
from helpers.training import load_weights, save_weights
from tests.nbtools import cells, imports_namespace, source
from tests.trained import briefly_trained_cnn

matplotlib.use("Agg")

NOTEBOOK = "08_prediction_demo.ipynb"


def cell_with(text: str) -> str:
    """The source of the notebook's first code cell containing ``text``."""
    return next(source(c) for c in cells(NOTEBOOK) if c["cell_type"] == "code" and text in source(c))


@contextlib.contextmanager
def namespace(tmp_path):
    """The notebook's imports, the test set, our photo (the notebook's own cell), ``squeezed``, a
    briefly trained model as ``model`` and ``robust``, and a running ``service`` that serves it."""
    names = imports_namespace(NOTEBOOK)
    mnist = load_mnist()
    model = briefly_trained_cnn()
    weights = save_weights(model, tmp_path / "weights.pt")
    robust = load_weights(mnist_cnn(), weights).to(pick_device()).eval()  # where the service runs it
    names.update(mnist=mnist, model=model.eval(), robust=robust)
    with contextlib.redirect_stdout(io.StringIO()):
        exec(cell_with("PHOTO_INDEX = "), names)
    names["squeezed"] = names["demo"].raw_resize(names["photo_bytes"])
    with start_service(weights=weights) as service:  # stopped when the context ends
        names["service"] = service
        yield names


PREPARED = "dark_on_light, light_on_dark = demo.prepare_digit(photo), demo.prepare_digit(255 - photo)\n"
TEN = "ten = serve.post_image(service.url, photo_bytes, 'photo.jpg', k=10)[1]['predictions']\n"

TRIALS = {
    1: {
        "right": [
            PREPARED + "mean_difference = np.abs(dark_on_light.astype(int) - light_on_dark.astype(int)).mean()",
            # the form: a torch integer tensor
            PREPARED + "mean_difference = (torch.as_tensor(dark_on_light, dtype=torch.int32)"
            " - torch.as_tensor(light_on_dark, dtype=torch.int32)).abs().max()",
            PREPARED + "mean_difference = float(np.mean(dark_on_light != light_on_dark))",  # 0.0 all the same
            "mean_difference = 0",
            # subtracting uint8 images wraps around, but here nothing wraps: both are the same image
            PREPARED + "mean_difference = np.abs(dark_on_light - light_on_dark).mean()",
        ],
        "wrong": [
            # the photos themselves, in int: no wrap-around
            (
                "mean_difference = np.abs(photo.astype(int) - (255 - photo).astype(int)).mean()",
                "the difference between the photos themselves",
            ),
            # the photos, subtracted as uint8: the wrap-around is what gives this value
            ("mean_difference = np.abs(photo - (255 - photo)).mean()", "wraps around"),
            # the case: a slip with no wrap-around must not be told about wrap-around
            (
                PREPARED + "mean_difference = np.abs(dark_on_light.astype(int) - (255 - dark_on_light)).mean()",
                "its own negative: negate the photo first",
            ),
            (PREPARED + "mean_difference = np.abs(dark_on_light - (255 - dark_on_light)).mean()", "wraps around"),
            ("mean_difference = 255", "Prepare both with demo.prepare_digit"),
            (PREPARED + "mean_difference = np.mean(dark_on_light == light_on_dark)", "share of pixels that are equal"),
            (
                "mean_difference = np.abs(photo.astype(int) - (255 - photo).astype(int)).max()",
                "the photos themselves",
            ),
            ("mean_difference = 'zero'", "text that is not one"),
            (PREPARED + "mean_difference = dark_on_light - light_on_dark", "not an array of 784"),
        ],
    },
    2: {
        "right": [
            "bright_pixels = int((squeezed > 128).sum())",
            "bright_pixels = (squeezed > 128).sum()",  # a numpy integer
            "bright_pixels = torch.as_tensor(squeezed > 128).sum()",  # a torch integer tensor
            "bright_pixels = 784 * np.mean(squeezed > 128)",  # a float, perhaps 752.9999...
            "bright_pixels = np.count_nonzero(squeezed >= 129)",
        ],
        "wrong": [
            # the case: the full-size photo (its share 0.9576 was inside the old tolerance)
            ("bright_pixels = (photo > 128).sum()", "full-size photo"),
            ("bright_pixels = np.mean(squeezed > 128)", "a share of the pixels"),
            ("bright_pixels = np.mean(photo > 128)", "a share of the pixels"),
            ("bright_pixels = (squeezed >= 128).sum()", "> 128, not >= 128"),
            ("bright_pixels = (squeezed <= 128).sum()", "dark pixels"),
            ("bright_pixels = (mnist.test_images > 128).sum(axis=(1, 2)).mean()", "MNIST's average"),
            ("bright_pixels = '96%'", "percent sign"),
            ("bright_pixels = 100 * np.mean(squeezed > 128)", "That is a percentage: give how many pixels"),
            ("bright_pixels = (demo.prepare_digit(photo) > 128).sum()", "prepared digit's pixels"),
            ("bright_pixels = (squeezed > 0.5).sum()", "counts every pixel"),
        ],
    },
    3: {
        "right": [
            TEN + "least_likely = ten[-1]['digit']",
            TEN + "least_likely = float(ten[-1]['digit'])",
            TEN + "least_likely = torch.tensor(ten[-1]['digit'])",
            "least_likely = demo.top_k(robust, demo.prepare_digit(photo_bytes), k=10)[-1][0]",
            TEN + "least_likely = np.int64(min(ten, key=lambda p: p['probability'])['digit'])",
        ],
        "wrong": [
            (TEN + "least_likely = ten[0]['digit']", "most likely"),
            # the service's default k=3: the last of the top 3
            (
                "least_likely = serve.post_image(service.url, photo_bytes)[1]['predictions'][-1]['digit']",
                "last of the top 3",
            ),
            (TEN + "least_likely = ten[5]['digit']", "Ask for all ten answers (k=10)"),
            (TEN + "least_likely = ten[-1]['probability']", "looks like a probability"),
            ("least_likely = 10", "whole number from 0 to 9"),
            ("least_likely = 'four'", "text that is not one"),
            (TEN + "least_likely = ten[-1]", "a whole prediction (a dict): give its 'digit'"),
        ],
    },
}
