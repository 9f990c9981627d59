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
    "loss_function",
    "predict",
    "review_trained_model",
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
    the run (the model itself is not returned).

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
) -> tuple[bool, str]:
    """Whether an exercise's answer is a trained model of the asked kind, and if not, why.

    Lesson 03's exercises ask for a trained :class:`LearnableFilters` model of
    some shape; the self-check scores it on the validation images. This tells
    the common slips apart, so the hint can name the one made: the history
    that :func:`train` returns given instead of the model, another kind of
    object, the wrong shape, a model never trained (no training step has
    computed its derivatives), one stuck giving the same answer for every
    image (the steps overshot: a learning rate too large), or one trained
    too little.

    Parameters
    ----------
    answer : object
        What the learner gave (``...`` or None: not done yet).
    images, labels : arrays
        Where to score it (the validation split).
    min_accuracy : float
        The accuracy (0 to 1) every right answer reaches, whatever its seed.
    n_filters, size, pool : int, optional
        The shape the exercise asks for (None: any).

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
    for name, wanted in asked.items():
        if wanted is not None and shape[name] != wanted:
            return False, f"Your model has {name}={shape[name]}; this exercise asks for {name}={wanted}."
    if answer.readout.weight.grad is None:
        return False, (
            "This model has never been through a training step (no derivatives were ever computed for it): "
            "train(model, X_train, y_train, ...) trains the model you pass it, in place."
        )
    labels = np.asarray(labels.detach().cpu() if torch.is_tensor(labels) else labels)
    guesses = predict(answer, images)
    score = float((guesses == labels).mean())
    if score >= min_accuracy:
        return True, ""
    if len(np.unique(guesses)) == 1:
        return False, (
            f"It gives the same answer for every image (validation accuracy {score:.1%}). That is what a "
            "learning rate too large for this model does: the steps overshoot (lesson 02) and training gets "
            "stuck. Start again from a fresh model with a smaller lr."
        )
    return False, (
        f"Its validation accuracy is {score:.1%}; trained as the exercise says, every seed reaches at least "
        f"{min_accuracy:.1%}. Train it for the steps the exercise asks, with its learning rate."
    )
