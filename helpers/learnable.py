"""Lesson 01's pipeline with learnable filters: a one-layer convolutional network.

Introduced in lesson 03 (``03_learning_filters.ipynb``). The pipeline is the
one of lesson 01 (``helpers.filters``): K small filters slid over the image
(correlation, zero padding so the size is kept), then max pooling into a small
"fingerprint", but the filters start as random numbers and are learned by
gradient descent, together with a linear read-out that turns the fingerprint
into a decision (one score for a yes/no question such as "is it an 8?", or one
score per class). Freeze the filters (``model.filters.requires_grad_(False)``)
and :func:`train` learns the read-out alone: the lesson's baseline.

Images go in as ``load_mnist``'s uint8 ``(N, 28, 28)`` arrays (converted with
``helpers.core.to_input``) or as float model inputs ``(N, 1, 28, 28)``.

:func:`predict` and :func:`accuracy` mean what ``helpers.training``'s do for
lesson 05's CNN: the predicted class of each image, and the fraction (0 to 1)
predicted right. For a one-score model the classes are 0 and 1 ("no" and
"yes": the score is positive for "yes"). They are kept here, separately, so
that lesson 03 does not load lesson 05's code. For a held-out validation part
use ``helpers.core.split_indices`` or ``helpers.core.split_validation``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from helpers.core import sync, to_input

LESSON = 3

__all__ = [
    "LearnableFilters",
    "accuracy",
    "data_fingerprint",
    "loss_function",
    "predict",
    "review_trained_model",
    "same_data",
    "train",
    "two_digits",
]


class LearnableFilters(nn.Module):
    """K learnable filters -> correlation (same size) -> max pooling -> linear read-out.

    Parameters
    ----------
    n_filters : int
        K, how many filters (lesson 01 used 8).
    size : int
        Filters are ``size x size``; odd, so each has a centre (lesson 01: 3).
    pool : int
        Max-pool window; it must divide ``image_size`` (7 turns 28x28 into
        4x4 as in lesson 01; 1 means no pooling).
    n_outputs : int
        1 for a yes/no question (one score; positive means "yes"), or the
        number of classes (one score per class).
    image_size : int
        Height and width of the (square) input images.

    Attributes
    ----------
    filters : nn.Parameter
        ``(K, 1, size, size)``, drawn from a normal distribution with standard
        deviation ``1 / size`` (seed with ``torch.manual_seed`` first).
    readout : nn.Linear
        From the ``K * (image_size // pool) ** 2`` fingerprint values to the outputs.
    training_log : list of dict
        One record per :func:`train` call on this model: ``steps``, ``lr``,
        ``batch_size``, ``momentum``, ``images`` (how many training images),
        ``data`` (their :func:`data_fingerprint`) and ``frozen`` (the names of the
        parameters left out). Self-checks read it to see how a model was trained.
    """

    def __init__(
        self, n_filters: int = 8, size: int = 3, pool: int = 7, n_outputs: int = 1, image_size: int = 28
    ) -> None:
        super().__init__()
        for name, value in (("n_filters", n_filters), ("n_outputs", n_outputs), ("pool", pool)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive whole number; got {value!r}.")
        if not isinstance(size, (int, np.integer)) or size < 1 or size % 2 == 0:
            raise ValueError(f"size must be odd (1, 3, 5, ...) so that each filter has a centre; got {size!r}.")
        if image_size % pool:
            divisors = [d for d in range(1, image_size + 1) if image_size % d == 0]
            raise ValueError(
                f"pool must divide the image size {image_size} evenly; got {pool} (try one of {divisors})."
            )
        self.size, self.pool, self.image_size = int(size), int(pool), int(image_size)
        self.filters = nn.Parameter(torch.randn(n_filters, 1, size, size) / size)
        cells = (image_size // pool) ** 2
        self.readout = nn.Linear(n_filters * cells, n_outputs)
        self.training_log: list[dict] = []

    @property
    def n_outputs(self) -> int:
        """1 for a yes/no question, else the number of classes."""
        return self.readout.out_features

    def responses(self, images: Any) -> torch.Tensor:
        """Each filter slid over each image: ``(N, K, H, W)``, zero padding at the border."""
        x = self._input(images)
        return F.conv2d(x, self.filters, padding=self.size // 2)

    def fingerprints(self, images: Any) -> torch.Tensor:
        """The max-pooled responses: ``(N, K, H // pool, W // pool)``."""
        responses = self.responses(images)
        return F.max_pool2d(responses, self.pool) if self.pool > 1 else responses

    def forward(self, images: Any) -> torch.Tensor:
        """Scores: ``(N,)`` for a yes/no question, ``(N, n_outputs)`` otherwise."""
        scores = self.readout(self.fingerprints(images).flatten(1))
        return scores[:, 0] if self.n_outputs == 1 else scores

    def _input(self, images: Any) -> torch.Tensor:
        x = to_input(images, self.filters.device)
        expected = (1, self.image_size, self.image_size)
        if tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"LearnableFilters expects images of {self.image_size}x{self.image_size} pixels, "
                f"(N, {self.image_size}, {self.image_size}) or (N, 1, {self.image_size}, {self.image_size}); "
                f"got shape {tuple(torch.as_tensor(images).shape)}."
            )
        return x


def two_digits(images: Any, labels: Any, yes: int = 8, no: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Keep only the images of two digits, labelled 1 for ``yes`` and 0 for ``no``.

    Returns
    -------
    images, targets : np.ndarray
        The selected images (same dtype, in their original order) and int64
        targets ``(n,)``: 1 where the digit is ``yes`` (e.g. 8), 0 where it is ``no`` (e.g. 1).
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if labels.shape != (len(images),):
        raise ValueError(f"expected one label per image, shape ({len(images)},); got labels of shape {labels.shape}.")
    if yes == no:
        raise ValueError(f"yes and no must be two different digits; got {yes} for both.")
    keep = (labels == yes) | (labels == no)
    return images[keep], (labels[keep] == yes).astype(np.int64)


def data_fingerprint(images: Any, device: torch.device | str = "cpu") -> tuple[int, float]:
    """``(number of images, sum of their model inputs)``: tells which images a model was trained on.

    The same images give the same fingerprint in any form (uint8 arrays, tensors,
    ``to_input``'s floats), since it is computed on :func:`helpers.core.to_input`'s
    output; another split of the data gives another one. Compare the sums with
    :func:`same_data`, which allows for float rounding.
    """
    x = to_input(images, device)
    return len(x), float(x.sum(dtype=torch.float64))


def same_data(a: tuple[int, float], b: tuple[int, float]) -> bool:
    """Whether two :func:`data_fingerprint` results are of the same images."""
    return a[0] == b[0] and abs(a[1] - b[1]) <= 1e-6 * max(1.0, abs(a[1]), abs(b[1]))


def loss_function(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The loss the lesson uses: binary cross-entropy on a sigmoid (one score), else cross-entropy.

    For one score per image, targets are 0 or 1 and the loss is
    ``-mean(t * log(sigmoid(s)) + (1 - t) * log(1 - sigmoid(s)))``; for one
    score per class, targets are class numbers and the loss is
    ``-mean(log(softmax(scores)[target]))`` (lesson 04 builds this
    softmax cross-entropy by hand).
    """
    if scores.ndim == 1:
        return F.binary_cross_entropy_with_logits(scores, targets.to(scores.dtype))
    return F.cross_entropy(scores, targets.long())


def _targets(labels: Any, n: int, device: torch.device) -> torch.Tensor:
    labels = torch.as_tensor(np.asarray(labels) if not torch.is_tensor(labels) else labels)
    if labels.shape != (n,):
        raise ValueError(f"expected one label per image, shape ({n},); got labels of shape {tuple(labels.shape)}.")
    return labels.to(device)


@torch.no_grad()
def predict(model: LearnableFilters, images: Any, batch_size: int = 2048) -> np.ndarray:
    """The predicted class of each image, ``(N,)`` numpy int64 (as ``helpers.training.predict``).

    For a one-score model (a yes/no question) the class is 1 ("yes", e.g. "is an 8")
    where the score is positive and 0 otherwise; for one score per class it is the
    class with the largest score. Images are scored in batches on the model's
    device, without keeping gradients.
    """
    was_training = model.training
    model.eval()
    out = []
    try:
        for start in range(0, len(images), batch_size):
            scores = model(images[start : start + batch_size])
            out.append((scores > 0).long() if scores.ndim == 1 else scores.argmax(dim=1))
    finally:
        model.train(was_training)
    return torch.cat(out).cpu().numpy() if out else np.zeros(0, dtype=np.int64)


@torch.no_grad()
def _evaluate(model: LearnableFilters, x: torch.Tensor, t: torch.Tensor, batch_size: int = 2048) -> tuple:
    losses, right = 0.0, 0
    for start in range(0, len(x), batch_size):
        scores = model(x[start : start + batch_size])
        target = t[start : start + batch_size]
        losses += float(loss_function(scores, target)) * len(target)
        guess = (scores > 0).long() if scores.ndim == 1 else scores.argmax(dim=1)
        right += int((guess == target.long()).sum())
    return losses / len(x), right / len(x)


def accuracy(model: LearnableFilters, images: Any, labels: Any) -> float:
    """The fraction of images (0 to 1) whose predicted class (:func:`predict`) equals the label.

    As ``helpers.training.accuracy``. ``labels`` may be a numpy array or a
    tensor on any device; for a one-score model they are 0/1 (as from
    :func:`two_digits`).
    """
    labels = np.asarray(labels.detach().cpu() if torch.is_tensor(labels) else labels)
    if labels.shape != (len(images),):
        raise ValueError(f"expected one label per image, shape ({len(images)},); got labels of shape {labels.shape}.")
    if len(labels) == 0:
        raise ValueError("accuracy needs at least one image; got none.")
    return float((predict(model, images) == labels).mean())


def train(
    model: LearnableFilters,
    images: Any,
    labels: Any,
    *,
    steps: int = 800,
    batch_size: int = 128,
    lr: float = 0.1,
    momentum: float = 0.0,
    valid: tuple[Any, Any] | None = None,
    every: int = 50,
    keep_best: bool = True,
    seed: int = 0,
    progress: bool = True,
) -> list[dict]:
    """Plain minibatch gradient descent, a fixed number of steps (lesson 03's loop).

    Each step takes ``batch_size`` training images (shuffled, a new order each
    pass), computes the loss (:func:`loss_function`), lets autograd find the
    derivatives and moves every parameter against its derivative:
    ``p -= lr * p.grad``. Frozen parameters (``requires_grad=False``, e.g.
    ``model.filters.requires_grad_(False)``) are left as they are, so with
    frozen filters only the read-out learns. A fixed number of steps keeps the
    time the same for the bundled sample and for full MNIST.

    The model is trained in place; what ``train`` returns is the history of
    the run (the model itself is not returned). Each call adds one record to
    ``model.training_log`` (the steps, learning rate and which images), so a
    self-check can tell how the model was trained.

    Parameters
    ----------
    model : LearnableFilters
        Trained in place, on the device its parameters are on.
    images : array or tensor
        uint8 ``(N, 28, 28)`` (as from ``load_mnist``) or float ``(N, 1, 28, 28)``.
    labels : array or tensor
        ``(N,)``: 0/1 for a one-score model, class numbers otherwise.
    steps, batch_size, lr : int, int, float
        How many updates, on how many images each, how big.
    momentum : float
        0 for plain gradient descent. Otherwise each step moves along a running
        sum of past derivatives, ``v = momentum * v + grad; p -= lr * v``
        (the "heavy ball": it keeps rolling through flat stretches and
        zig-zags less across narrow valleys).
    valid : (images, labels), optional
        A validation split, scored every ``every`` steps.
    every : int
        Record the history every this many steps (and at the last step).
    keep_best : bool
        With ``valid``: at the end, put back the parameters that had the
        lowest validation loss (a choice made on the validation split).
    seed : int
        Seeds the order of the minibatches.
    progress : bool
        Show a progress bar.

    Returns
    -------
    list of dict
        The history: one record every ``every`` steps, each with ``step``,
        ``loss`` (mean training loss since the last record),
        ``train_accuracy`` (on those minibatches), ``seconds`` (cumulative
        training time) and, with ``valid``, ``valid_loss`` and
        ``valid_accuracy``.
    """
    if not isinstance(model, LearnableFilters):
        raise TypeError(f"train expects a LearnableFilters model; got {type(model).__name__}.")
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1) (0.9 is usual; 0 for plain descent); got {momentum}.")
    if steps < 1 or batch_size < 1 or every < 1 or lr <= 0:
        raise ValueError(
            f"steps, batch_size and every must be >= 1 and lr > 0; got steps={steps}, "
            f"batch_size={batch_size}, every={every}, lr={lr}."
        )
    device = model.filters.device
    x = to_input(images, device)
    t = _targets(labels, len(x), device)
    if valid is not None:
        xv = to_input(valid[0], device)
        tv = _targets(valid[1], len(xv), device)
    learning = [parameter for parameter in model.parameters() if parameter.requires_grad]
    if not learning:
        raise ValueError("every parameter of the model is frozen (requires_grad=False): there is nothing to train.")
    velocities = [torch.zeros_like(parameter) for parameter in learning]
    model.training_log.append(
        {
            "steps": int(steps),
            "lr": float(lr),
            "batch_size": int(batch_size),
            "momentum": float(momentum),
            "images": len(x),
            "data": (len(x), float(x.sum(dtype=torch.float64))),
            "frozen": [name for name, p in model.named_parameters() if not p.requires_grad],
        }
    )
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(x), generator=generator)
    position = 0
    history: list[dict] = []
    best = (float("inf"), None)
    run_loss, run_right, run_count, seconds = 0.0, 0, 0, 0.0
    bar = _progress(steps, progress)
    start = time.perf_counter()
    for step in range(1, steps + 1):
        if position + batch_size > len(order):
            order, position = torch.randperm(len(x), generator=generator), 0
        index = order[position : position + batch_size].to(device)
        position += batch_size
        scores = model(x[index])
        loss = loss_function(scores, t[index])
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for parameter, velocity in zip(learning, velocities, strict=True):
                if momentum:
                    velocity.mul_(momentum).add_(parameter.grad)
                    parameter -= lr * velocity
                else:
                    parameter -= lr * parameter.grad
        with torch.no_grad():
            guess = (scores > 0).long() if scores.ndim == 1 else scores.argmax(dim=1)
            run_right += int((guess == t[index].long()).sum())
        run_loss += loss.item() * len(index)
        run_count += len(index)
        if step % every == 0 or step == steps:
            sync(device)
            seconds += time.perf_counter() - start
            record = {
                "step": step,
                "loss": run_loss / run_count,
                "train_accuracy": run_right / run_count,
                "seconds": seconds,
            }
            if valid is not None:
                record["valid_loss"], record["valid_accuracy"] = _evaluate(model, xv, tv)
                if keep_best and record["valid_loss"] < best[0]:
                    best = (record["valid_loss"], {k: v.clone() for k, v in model.state_dict().items()})
            history.append(record)
            if bar is not None:
                bar.set_postfix(loss=f"{record['loss']:.4f}")
            run_loss, run_right, run_count = 0.0, 0, 0
            start = time.perf_counter()
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    if best[1] is not None:
        model.load_state_dict(best[1])
    return history


def _progress(steps: int, show: bool) -> Any:
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=steps, desc="training", unit="step")


def review_trained_model(
    answer: Any,
    images: Any,
    labels: Any,
    *,
    min_accuracy: float,
    n_filters: int | None = None,
    size: int | None = None,
    pool: int | None = None,
    steps: int | None = None,
    lr: float | None = None,
    trained_on: Any = None,
    held_out: dict[str, Any] | None = None,
) -> tuple[bool, str]:
    """Whether an exercise's answer is a model trained as the exercise asks, and if not, why.

    Lesson 03's exercises ask for a :class:`LearnableFilters` model of some
    shape, trained with :func:`train` for some steps at some learning rate on
    the training split; the self-check scores it on the validation images.
    This checks the method, not only the score (a model trained on the
    validation images, or for a tenth of the steps, can score well too), from
    the record :func:`train` keeps in ``model.training_log``, and tells the
    common slips apart so the hint can name the one made: the history that
    :func:`train` returns given instead of the model, another kind of object,
    the wrong shape, a model never trained or trained by another loop, trained
    on the validation (or test) images, on part of the training images or on
    more, with its filters frozen, for other steps or another learning rate,
    stuck giving the same answer for every image, trained on flipped targets, or still
    too weak.

    Parameters
    ----------
    answer : object
        What the learner gave (``...`` or None: not done yet).
    images, labels : arrays
        Where to score it: the validation split, which training must not see.
    min_accuracy : float
        The accuracy (0 to 1) every answer trained as asked reaches, whatever its seed.
    n_filters, size, pool : int, optional
        The shape the exercise asks for (None: any).
    steps : int, optional
        The number of training steps the exercise asks for, in all (None: any).
    lr : float, optional
        The learning rate the exercise asks for (None: any).
    trained_on : array, optional
        The training images the exercise asks to train on (None: any but ``images``).
    held_out : dict, optional
        Other images training must not see, by the name the hint gives them
        (e.g. ``{"the test images (X_test)": X_test}``).

    Returns
    -------
    (bool, str)
        True and ``""`` for a right answer; otherwise False and a hint ("" when
        the exercise is not done yet).
    """
    if answer is ... or answer is None:
        return False, ""
    if isinstance(answer, list) and answer and isinstance(answer[0], dict) and "step" in answer[0]:
        return False, (
            "That is the history that train(...) returns (one record every 50 steps), not the model. "
            "train changes the model in place: make the model, train it, then give the model itself."
        )
    if not isinstance(answer, LearnableFilters):
        return False, f"Expected a trained LearnableFilters model; got {type(answer).__name__}."
    shape = {"n_filters": int(answer.filters.shape[0]), "size": answer.size, "pool": answer.pool}
    asked = {"n_filters": n_filters, "size": size, "pool": pool}
    words = {"n_filters": "number of filters", "size": "filter size", "pool": "pooling window"}
    for name, wanted in asked.items():
        if wanted is not None and shape[name] != wanted:
            return False, (
                f"Your model has {name}={shape[name]}; this exercise asks for {name}={wanted}. "
                f"Make a model with the {words[name]} it asks for and train it."
            )
    log = list(getattr(answer, "training_log", None) or [])
    if not log:
        if answer.readout.weight.grad is None:
            return False, (
                "This model has never been through a training step (no derivatives were ever computed for it): "
                "train(model, X_train, y_train, ...) trains the model you pass it, in place."
            )
        return False, (
            "This model was trained by a loop of your own, not by train(...): the exercise asks for "
            "train(model, X_train, y_train, ...), which records the steps and the images it trained on "
            "(this check reads them)."
        )
    device = answer.filters.device
    valid_print = data_fingerprint(images, device)
    train_print = data_fingerprint(trained_on, device) if trained_on is not None else None
    others = {name: data_fingerprint(value, device) for name, value in (held_out or {}).items()}
    for record in log:
        used = tuple(record["data"])
        if same_data(used, valid_print):
            return False, (
                "It was trained on the validation split (X_valid): the check scores it on those images, "
                "so they must stay unseen during training. Train a fresh model on X_train, y_train."
            )
        for name, fingerprint in others.items():
            if same_data(used, fingerprint):
                return False, (
                    f"It was trained on {name}: those are kept for the final test and must stay unseen. "
                    "Train a fresh model on X_train, y_train."
                )
        if train_print is not None and not same_data(used, train_print):
            count, wanted = used[0], train_print[0]
            if count == wanted + valid_print[0]:
                why = (
                    f"the training and the validation images together ({count:,}); the validation images "
                    "must stay unseen, the check scores it on them"
                )
            elif count < wanted:
                why = f"{count:,} images, fewer than the {wanted:,} of the training split"
            else:
                why = f"{count:,} images, other than the {wanted:,} of the training split"
            return False, f"It was trained on {why}. Train a fresh model on all of X_train, y_train."
    frozen = sorted({name for record in log for name in record["frozen"]})
    if "filters" in frozen:
        return False, (
            "Its filters were frozen (requires_grad_(False)), so training moved only the read-out; "
            "this exercise learns the filters too: train a fresh model without freezing them."
        )
    if frozen:
        return False, (
            f"Part of it was frozen during training ({', '.join(frozen)}: requires_grad_(False)); this "
            "exercise trains the whole model, filters and read-out: train a fresh model without freezing."
        )
    total = sum(record["steps"] for record in log)
    if steps is not None and total != steps:
        if len(log) > 1:
            return False, (
                f"It went through train {len(log)} times, {total} steps in all (a cell run twice on the same "
                f"model?); the exercise asks for {steps} steps: make a fresh model and train it once."
            )
        return False, f"It was trained for {total} steps; the exercise asks for {steps} steps (steps={steps})."
    labels = np.asarray(labels.detach().cpu() if torch.is_tensor(labels) else labels)
    guesses = predict(answer, images)
    score = float((guesses == labels).mean())
    stuck = len(np.unique(guesses)) == 1
    if lr is not None:
        rates = sorted({record["lr"] for record in log})
        if any(abs(rate - lr) > 1e-6 * lr for rate in rates):  # float32 0.01 is 0.01
            used = ", ".join(f"{rate:g}" for rate in rates)
            overshot = (
                " At that rate it got stuck giving the same answer for every image: the steps overshoot (lesson 02)."
                if stuck
                else ""
            )
            return False, (
                f"It was trained with lr={used}; the exercise asks for a learning rate of {lr:g} (lr={lr:g}).{overshot}"
            )
    if score >= min_accuracy:
        return True, ""
    if stuck:
        return False, (
            f"It gives the same answer for every image (validation accuracy {score:.1%}). That is what a "
            "learning rate too large for this model does: the steps overshoot (lesson 02) and training gets "
            "stuck. Start again from a fresh model with a smaller lr."
        )
    if answer.n_outputs == 1 and score < 0.5:
        return False, (
            f"Its validation accuracy is {score:.1%}, worse than a coin toss: it learned the opposite "
            'answer. Were its targets flipped? In y_train, 1 means "an 8" and 0 means "a 1" (section 1); '
            "train a fresh model on X_train, y_train as they are."
        )
    recipe = [f"{steps} steps" if steps is not None else "", f"lr {lr:g}" if lr is not None else ""]
    recipe_text = ", ".join(part for part in recipe if part) or "as the exercise says"
    sizes = sorted({record["batch_size"] for record in log})
    batch = f" Your batches held {sizes[0]} images; train's default is 128." if sizes != [128] else ""
    return False, (
        f"Its validation accuracy is {score:.1%}; trained as the exercise asks ({recipe_text}, on X_train "
        f"with the targets y_train), every seed reaches at least {min_accuracy:.1%}.{batch}"
    )
