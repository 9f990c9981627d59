"""Learning from a few labels and many unlabelled images: pseudo-labels and FixMatch.

Introduced in lesson 09, after the lesson has written each step by hand:

* ``pick_labelled``: the few labelled images, ``per_class`` of each digit, drawn with a seed.
* ``train_supervised``: lesson 05's ``fit`` on those few images alone, optionally through lesson
  08's ``RandomDistort`` (the baseline the unlabelled images must beat).
* ``pseudo_labels`` and ``self_train``: label the unlabelled images the model is sure of, train
  on them too, repeat.
* ``fixmatch``: consistency with confidence (Sohn et al., 2020). Each step the model labels a
  mildly distorted copy of each unlabelled image; where it is at least ``threshold`` sure, it is
  taught that label on a strongly distorted copy of the same image, beside the usual loss on the
  labelled images.

Everything follows ``helpers.training``'s conventions: the images (uint8 ``(N, 28, 28)`` as
``load_mnist`` gives them) are converted once with ``to_input`` and kept on the model's device as
one tensor; a minibatch is an index into it; the distortions are ``helpers.augment``'s batched
tensor operations; a ``tqdm`` progress bar; validation accuracy on held-out labelled images.
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from helpers.augment import RandomDistort
from helpers.core import pick_device, sync, to_input
from helpers.training import _evaluate, _inputs, _labels_tensor, _logits, _model_device, fit

LESSON = 9

__all__ = [
    "FIXMATCH",
    "STRONG",
    "WEAK",
    "cut_out",
    "fixmatch",
    "pick_labelled",
    "pseudo_labels",
    "self_train",
    "train_supervised",
]

#: The mild distortion the model labels an unlabelled image from (a small shift and turn).
WEAK: dict[str, Any] = {
    "rotation": 5.0,
    "shear": 5.0,
    "scale": (0.95, 1.05),
    "shift": 1.5,
    "thickness": (0.0, 0.0),
    "blur": 0.0,
}

#: The strong distortion the model is taught on: lesson 08's, a little wider.
STRONG: dict[str, Any] = {
    "rotation": 20.0,
    "shear": 20.0,
    "scale": (0.75, 1.2),
    "shift": 3.0,
    "thickness": (-0.7, 1.0),
    "blur": 1.0,
}

#: The notebook's FixMatch recipe: what ``fixmatch`` does when called with no options.
FIXMATCH: dict[str, Any] = {
    "steps": 300,
    "threshold": 0.95,
    "unlabelled_batch": 320,
    "lr": 0.01,
    "weight_decay": 5e-4,
    "unlabelled_weight": 1.0,
    "cut_out": 0,
    "ema": 0.0,
    "align": False,
    "evaluate_every": 50,
}


def pick_labelled(labels: Any, per_class: int, seed: int = 0) -> np.ndarray:
    """Positions of ``per_class`` images of each digit 0-9, drawn at random with ``seed``.

    Returns int64 positions into ``labels``, digit 0's first, then digit 1's, and so on.
    Raises ``ValueError`` when a digit has fewer than ``per_class`` images.
    """
    labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    if not (isinstance(per_class, int | np.integer) and per_class >= 1):
        raise ValueError(f"per_class must be a whole number >= 1; got {per_class!r}.")
    generator = np.random.default_rng(seed)
    chosen = []
    for digit in range(10):
        positions = np.flatnonzero(labels == digit)
        if len(positions) < per_class:
            raise ValueError(f"digit {digit} has only {len(positions)} images; cannot pick {per_class} of each digit.")
        chosen.append(np.sort(generator.choice(positions, size=per_class, replace=False)))
    return np.concatenate(chosen).astype(np.int64)


def train_supervised(
    model: nn.Module,
    images: Any,
    labels: Any,
    *,
    valid: tuple[Any, Any] | None = None,
    steps: int = 300,
    augment: bool = False,
    seed: int = 0,
    progress: bool = True,
    **options: Any,
) -> list[dict]:
    """``fit`` on a few labelled images alone for about ``steps`` gradient steps.

    With ``augment``, every step sees the images through lesson 08's ``RandomDistort`` (``STRONG``
    settings). Trains ``model`` in place on its own device; returns ``fit``'s history.
    """
    device = _model_device(model)
    images, labels = np.asarray(images), np.asarray(labels)
    batch_size = options.pop("batch_size", min(64, len(labels)))
    # A few labelled images make a tiny epoch; repeated, one epoch is about 40 steps, so that the
    # validation images (when given) are scored every 40 steps rather than after each one.
    repeats = max(1, math.ceil(40 * batch_size / len(labels)))
    epochs = max(1, round(steps * batch_size / (len(labels) * repeats)))
    network = nn.Sequential(RandomDistort(seed=seed, **STRONG), model) if augment else model
    options.setdefault("weight_decay", 5e-4)
    return fit(
        network,
        np.tile(images, (repeats, 1, 1)),
        np.tile(labels, repeats),
        valid=valid,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        device=device,
        progress=progress,
        **options,
    )


def pseudo_labels(model: nn.Module, images: Any, threshold: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """The images the model is at least ``threshold`` sure of: ``(positions, labels)``, int64 numpy."""
    x = _inputs(images, _model_device(model))
    probabilities = torch.softmax(_logits(model, x), dim=1)
    confidence, guess = probabilities.max(1)
    sure = (confidence >= threshold).cpu().numpy()
    return np.flatnonzero(sure).astype(np.int64), guess.cpu().numpy()[sure].astype(np.int64)


def self_train(
    model: nn.Module,
    images: Any,
    labels: Any,
    unlabelled_images: Any,
    *,
    valid: tuple[Any, Any] | None = None,
    rounds: int = 3,
    threshold: float = 0.95,
    epochs: int = 3,
    seed: int = 0,
    progress: bool = True,
) -> list[dict]:
    """Self-training: label what the model is sure of, train a fresh copy on it and the labelled
    images (augmented), repeat ``rounds`` times. ``model`` must already be trained on the labelled
    images; it is trained in place. Returns one dict per round: ``round``, ``used`` (share of the
    unlabelled images pseudo-labelled), ``pseudo_positions``, ``pseudo_labels`` and, with ``valid``,
    ``valid_accuracy``."""
    start = copy.deepcopy(model.state_dict())
    history = []
    images = np.asarray(images)
    labels = np.asarray(labels)
    unlabelled_images = np.asarray(unlabelled_images)
    for round_ in range(1, rounds + 1):
        positions, guesses = pseudo_labels(model, unlabelled_images, threshold)
        # the labelled images repeated so that they weigh as much as a tenth of the pseudo-labels
        repeat = max(1, len(positions) // (10 * len(labels)))
        train_x = np.concatenate([np.repeat(images, repeat, axis=0), unlabelled_images[positions]])
        train_y = np.concatenate([np.repeat(labels, repeat), guesses])
        model.load_state_dict(start)
        network = nn.Sequential(RandomDistort(seed=seed + round_, **STRONG), model)
        fit(
            network,
            train_x,
            train_y,
            epochs=epochs,
            seed=seed + round_,
            device=_model_device(model),
            weight_decay=5e-4,
            progress=progress,
        )
        row: dict[str, Any] = {
            "round": round_,
            "used": len(positions) / len(unlabelled_images),
            "pseudo_positions": positions,
            "pseudo_labels": guesses,
        }
        if valid is not None:
            device = _model_device(model)
            vx, vy = _inputs(valid[0], device), _labels_tensor(valid[1], len(valid[0]), device)
            row["valid_accuracy"] = _evaluate(model, vx, vy, None)[1]
        history.append(row)
    return history


def cut_out(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Each image with one ``size`` x ``size`` square (at a random place) set to paper (background)."""
    if size <= 0:
        return x
    count, height, width = len(x), x.shape[-2], x.shape[-1]
    top = torch.randint(-size // 2, height - size // 2, (count,), generator=generator).to(x.device)
    left = torch.randint(-size // 2, width - size // 2, (count,), generator=generator).to(x.device)
    rows = torch.arange(height, device=x.device).view(1, -1, 1)
    cols = torch.arange(width, device=x.device).view(1, 1, -1)
    inside = (
        (rows >= top.view(-1, 1, 1))
        & (rows < top.view(-1, 1, 1) + size)
        & (cols >= left.view(-1, 1, 1))
        & (cols < left.view(-1, 1, 1) + size)
    )
    paper = to_input(torch.zeros(1, 28, 28, dtype=torch.uint8), x.device).min()
    return torch.where(inside[:, None], paper, x)


def fixmatch(
    model: nn.Module,
    labelled_images: Any,
    labelled_labels: Any,
    unlabelled_images: Any,
    *,
    valid: tuple[Any, Any] | None = None,
    steps: int = FIXMATCH["steps"],
    threshold: float = FIXMATCH["threshold"],
    unlabelled_batch: int = FIXMATCH["unlabelled_batch"],
    lr: float = FIXMATCH["lr"],
    weight_decay: float = FIXMATCH["weight_decay"],
    unlabelled_weight: float = FIXMATCH["unlabelled_weight"],
    cut_out: int = FIXMATCH["cut_out"],
    ema: float = FIXMATCH["ema"],
    align: bool = FIXMATCH["align"],
    evaluate_every: int = FIXMATCH["evaluate_every"],
    seed: int = 0,
    progress: bool = True,
) -> list[dict]:
    """Train ``model`` in place with FixMatch; return one dict per evaluation.

    Each step: all the labelled images, mildly distorted (``WEAK``), with their labels (cross-
    entropy); ``unlabelled_batch`` unlabelled images, each seen twice: mildly distorted, the model's
    guess is its pseudo-label (no gradient), kept where its probability is at least ``threshold``;
    strongly distorted (``STRONG``, then a ``cut_out`` square of that many pixels if > 0), the model
    is taught the kept pseudo-labels (cross-entropy times ``unlabelled_weight``, averaged over the
    whole unlabelled batch). AdamW with a one-cycle schedule peaking at ``lr``.

    Parameters
    ----------
    model : nn.Module
        Trained in place on its own device (``pick_device()`` if it has no parameters there yet).
    labelled_images, labelled_labels, unlabelled_images
        uint8 ``(N, 28, 28)`` images as ``load_mnist`` gives them, integer labels 0-9.
    valid : (images, labels), optional
        Held-out labelled images, only scored (``valid_accuracy``), never trained on.
    steps, threshold
        Gradient steps; the confidence a pseudo-label needs.
    ema : float
        0: pseudo-labels come from the model itself. Above 0 (e.g. 0.99): from a slowly averaged
        copy of it (a "teacher", each step ``teacher = ema * teacher + (1 - ema) * model``),
        and the teacher's weights are copied into ``model`` at the end.
    align : bool
        Distribution alignment (ReMixMatch): the guesses are reweighted so that, on average, they
        give each digit the same share (a tenth) before the threshold is applied.
    evaluate_every : int
        Steps between rows of the returned history (the last step always has one).

    Returns
    -------
    list of dict
        ``step``, ``loss`` (mean total loss since the previous row), ``labelled_loss``,
        ``used`` (share of the unlabelled images above the threshold since the previous row),
        ``pseudo_accuracy`` (None: the unlabelled images' labels are not known here),
        ``seconds`` (cumulative training time, scoring excluded) and, with ``valid``,
        ``valid_accuracy``.
    """
    if not (isinstance(steps, int) and steps >= 1):
        raise ValueError(f"steps must be a whole number >= 1; got {steps!r}.")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be a probability in (0, 1]; got {threshold!r}.")
    if not 0 <= ema < 1:
        raise ValueError(f"ema must be in [0, 1); got {ema!r}.")
    device = _model_device(model) if next(model.parameters(), None) is not None else pick_device()
    model.to(device)
    labelled_x = _inputs(labelled_images, device)
    labelled_y = _labels_tensor(labelled_labels, len(labelled_x), device)
    unlabelled_x = _inputs(unlabelled_images, device)
    if len(labelled_x) == 0 or len(unlabelled_x) == 0:
        raise ValueError("fixmatch needs some labelled and some unlabelled images; got none of one.")
    if valid is not None:
        valid_x = _inputs(valid[0], device)
        valid_y = _labels_tensor(valid[1], len(valid_x), device)

    weak = RandomDistort(seed=seed, **WEAK).to(device)
    strong = RandomDistort(seed=seed + 1, **STRONG).to(device)
    order = torch.Generator().manual_seed(seed)
    teacher = copy.deepcopy(model).eval() if ema > 0 else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    guesses_mean = torch.full((10,), 0.1, device=device)

    history: list[dict] = []
    seconds, sums, count = 0.0, torch.zeros(3, device=device), 0
    batch = min(unlabelled_batch, len(unlabelled_x))
    bar = tqdm(total=steps, desc="fixmatch", unit="step", disable=not progress)
    try:
        sync(device)
        start = time.perf_counter()
        model.train()
        for step in range(1, steps + 1):
            pick = torch.randint(len(unlabelled_x), (batch,), generator=order).to(device)
            u = unlabelled_x[pick]
            with torch.no_grad():
                u_weak, u_strong = weak.distort(u), cut_out_images(strong.distort(u), cut_out, order)
            x_weak = weak.distort(labelled_x)
            if teacher is None:
                logits = model(torch.cat([x_weak, u_weak, u_strong]))
                labelled_logits = logits[: len(x_weak)]
                weak_logits = logits[len(x_weak) : len(x_weak) + batch].detach()
                strong_logits = logits[len(x_weak) + batch :]
            else:
                logits = model(torch.cat([x_weak, u_strong]))
                labelled_logits, strong_logits = logits[: len(x_weak)], logits[len(x_weak) :]
                with torch.no_grad():
                    weak_logits = teacher(u_weak)
            probabilities = torch.softmax(weak_logits.float(), dim=1)
            if align:
                guesses_mean = 0.999 * guesses_mean + 0.001 * probabilities.mean(0)
                probabilities = probabilities * (0.1 / guesses_mean)
                probabilities = probabilities / probabilities.sum(1, keepdim=True)
            confidence, pseudo = probabilities.max(1)
            mask = (confidence >= threshold).float()
            labelled_loss = F.cross_entropy(labelled_logits, labelled_y)
            unlabelled_loss = (F.cross_entropy(strong_logits, pseudo, reduction="none") * mask).mean()
            loss = labelled_loss + unlabelled_weight * unlabelled_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if teacher is not None:
                with torch.no_grad():
                    for t, s in zip(teacher.state_dict().values(), model.state_dict().values(), strict=True):
                        if t.is_floating_point():
                            t.mul_(ema).add_(s, alpha=1 - ema)
                        else:
                            t.copy_(s)
            sums += torch.stack([loss.detach(), labelled_loss.detach(), mask.mean()])
            count += 1
            bar.update()
            if step % evaluate_every == 0 or step == steps:
                sync(device)
                seconds += time.perf_counter() - start
                means = (sums / count).tolist()
                row: dict[str, Any] = {
                    "step": step,
                    "loss": means[0],
                    "labelled_loss": means[1],
                    "used": means[2],
                    "seconds": seconds,
                }
                if valid is not None:
                    scored = teacher if teacher is not None else model
                    row["valid_accuracy"] = _evaluate(scored, valid_x, valid_y, None)[1]
                history.append(row)
                bar.set_postfix({k: round(v, 3) for k, v in row.items() if k in ("used", "valid_accuracy")})
                sums, count = torch.zeros(3, device=device), 0
                sync(device)
                start = time.perf_counter()
    finally:
        bar.close()
        if teacher is not None:
            model.load_state_dict(teacher.state_dict())
        model.eval()
    return history


def cut_out_images(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """``cut_out`` under the name ``fixmatch`` uses (its own argument is also called ``cut_out``)."""
    return cut_out(x, size, generator)
