"""Training a CNN on whatever device there is: the training loop, scoring, saved weights.

Introduced in lesson 05: ``fit``, ``accuracy``, ``predict``, ``probabilities``,
saving and loading weights, ``trained_mnist_cnn``. The basics it builds on
(``pick_device``, ``seed_everything``, ``to_input``, ``split_validation``,
``MNIST_MEAN``/``MNIST_STD``) live in ``helpers.core`` (lesson 00) and are
re-exported here for older code.

Why ``fit`` is fast (lesson 05 measures each choice):

* the whole dataset is converted once (``to_input``) and kept on the device as
  one tensor; a minibatch is picked by indexing it with a shuffled list of
  positions, so there is no per-image Python work, DataLoader or transform;
* a small model sized for MNIST (``helpers.models.mnist_cnn``), its
  activations stored "channels last" (on the CPU and CUDA), which makes
  PyTorch's convolution and pooling kernels faster;
* AdamW with a one-cycle learning-rate schedule, so a few epochs are enough;
* evaluation in large batches under ``torch.inference_mode()``;
* on CUDA only: mixed precision (bfloat16, or float16 with loss scaling on
  older GPUs) and cuDNN autotuning.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from helpers.core import (
    MNIST_MEAN,
    MNIST_STD,
    amp_dtype,
    needs_grad_scaler,
    pick_device,
    seed_everything,
    split_validation,
    sync,
    to_input,
)
from helpers.data import DATA_DIR

LESSON = 5

__all__ = [
    "DEFAULTS",
    "MNIST_MEAN",
    "MNIST_STD",
    "WEIGHTS_PATH",
    "WeightsFileError",
    "accuracy",
    "describe_record",
    "fit",
    "load_weights",
    "pick_device",
    "predict",
    "probabilities",
    "read_record",
    "retrain_reason",
    "save_weights",
    "seed_everything",
    "split_validation",
    "to_input",
    "trained_mnist_cnn",
    "training_record",
]

# ---------------------------------------------------------------------------
# Lesson 05: the training loop.

#: The lesson's settings: what ``fit`` does when called with no options.
DEFAULTS: dict[str, Any] = {
    "epochs": 4,
    "batch_size": 128,
    "lr": 0.01,
    "optimizer": "adamw",
    "weight_decay": 1e-4,
    "schedule": "onecycle",
    "seed": 0,
}

#: Where lesson 05 saves the trained model's weights (ignored by git).
WEIGHTS_PATH = DATA_DIR / "mnist_cnn.pt"

#: Images per batch when only predicting (no gradients are kept, so batches can be large).
EVAL_BATCH = 2048

_OPTIMIZERS = ("adamw", "adam", "momentum", "sgd")
_SCHEDULES = ("onecycle", "constant")


class WeightsFileError(RuntimeError):
    """A saved weights file is missing, corrupted, or does not fit the model."""


def _labels_tensor(labels: Any, count: int, device: torch.device) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels)
    if tensor.ndim != 1 or tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool:
        raise ValueError(
            f"labels must be a 1-D array of integer class numbers 0-9; got dtype {tensor.dtype} "
            f"with shape {tuple(tensor.shape)}."
        )
    if len(tensor) != count:
        raise ValueError(f"got {count} images but {len(tensor)} labels; they must match one to one.")
    if count and (int(tensor.min()) < 0 or int(tensor.max()) > 9):
        raise ValueError(f"labels must lie in 0-9; got values from {int(tensor.min())} to {int(tensor.max())}.")
    return tensor.to(device=device, dtype=torch.long, non_blocking=True)


def _model_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _inputs(images: Any, device: torch.device) -> torch.Tensor:
    """``to_input`` on the device, with a check that the images are MNIST-sized."""
    x = to_input(images, device)
    if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
        raise ValueError(f"expected 28x28 images (N, 28, 28) or a model input (N, 1, 28, 28); got {tuple(x.shape)}.")
    return x.float() if x.dtype != torch.float32 else x


def _amp_dtype(device: torch.device) -> torch.dtype | None:
    """The mixed-precision type for ``device`` (``helpers.core.amp_dtype``): None off CUDA."""
    if device.type != "cuda":
        return None
    return amp_dtype("cuda", torch.cuda.get_device_capability(device))


def _amp_type(
    device: torch.device, amp: bool | None, capability: tuple[int, int] | None = None
) -> torch.dtype | None:
    """The type ``fit`` computes in under autocast: None (plain float32) unless on CUDA with
    ``amp`` on (bfloat16 where the GPU computes it natively, float16 otherwise), or unless
    ``capability`` forces the choice a CUDA GPU of that compute capability makes."""
    if capability is not None:
        return amp_dtype("cuda", capability)
    use_amp = device.type == "cuda" if amp is None else bool(amp) and device.type == "cuda"
    return _amp_dtype(device) if use_amp else None


def _autocast(device: torch.device, dtype: torch.dtype | None) -> Any:
    """Autocast to ``dtype`` on ``device``; switched off when ``dtype`` is None."""
    if dtype is None:
        return torch.autocast(device_type=device.type, enabled=False)
    return torch.autocast(device_type=device.type, dtype=dtype)


def _make_optimizer(model: nn.Module, name: str, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    params = model.parameters()
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)


def fit(
    model: nn.Module,
    images: Any,
    labels: Any,
    *,
    valid: tuple[Any, Any] | None = None,
    epochs: int = DEFAULTS["epochs"],
    batch_size: int = DEFAULTS["batch_size"],
    lr: float = DEFAULTS["lr"],
    optimizer: str = DEFAULTS["optimizer"],
    weight_decay: float = DEFAULTS["weight_decay"],
    schedule: str = DEFAULTS["schedule"],
    seed: int | None = DEFAULTS["seed"],
    device: torch.device | str | None = None,
    amp: bool | None = None,
    channels_last: bool | None = None,
    progress: bool = True,
    _amp_capability: tuple[int, int] | None = None,
) -> list[dict]:
    """Train ``model`` in place on labelled images; return one summary per epoch.

    Called with no options it trains exactly as lesson 05 does (``DEFAULTS``).
    The images are converted once with ``to_input`` and kept on the device;
    each epoch visits them all once, in minibatches picked by a shuffled list
    of positions.

    Parameters
    ----------
    model : torch.nn.Module
        Takes ``(N, 1, 28, 28)`` float input and returns 10 logits per image.
        It is moved to ``device``.
    images : array or tensor
        uint8 ``(N, 28, 28)`` as from ``load_mnist``, or model input ``(N, 1, 28, 28)``.
    labels : array or tensor
        Integer classes 0-9, shape ``(N,)``.
    valid : (images, labels), optional
        Held-out images scored after every epoch (``valid_loss``, ``valid_accuracy``).
    epochs : int
        Passes over the training images.
    batch_size : int
        Images per gradient step (a minibatch).
    lr : float
        Learning rate; with the one-cycle schedule it is the peak rate.
    optimizer : {"adamw", "adam", "momentum", "sgd"}
        AdamW (the default), Adam, SGD with Nesterov momentum 0.9, or plain SGD.
    weight_decay : float
        Pull of every weight towards zero (a guard against overfitting).
    schedule : {"onecycle", "constant"}
        One-cycle: the rate warms up to ``lr`` over the first 30% of steps,
        then anneals towards zero. Constant: ``lr`` throughout.
    seed : int or None
        Seeds the order of the minibatches, so that the same model, data and
        options give the same weights on the CPU. None: a fresh order each time.
    device : torch.device or str, optional
        Where to train; by default ``pick_device()``.
    amp : bool, optional
        Mixed precision; by default on for CUDA and off elsewhere (it is never
        used on the CPU or MPS).
    channels_last : bool, optional
        Store the model's 4-D weights, and so its activations, channels last
        (``torch.channels_last``); by default on for the CPU and CUDA, where it
        is usually faster (about 1.5-1.8x per training step for ``mnist_cnn``
        on the course's 2-core x86 test machine; how much depends on the
        processor, and lesson 05's appendix measures it), and off elsewhere. Only rounding (and which of several equal
        values a max-pool picks) changes; the model is handed back in the
        usual (contiguous) layout.
    progress : bool
        Show a ``tqdm`` progress bar.
    _amp_capability : (int, int), optional
        Private, for tests: take the mixed-precision branch that a CUDA GPU of this
        compute capability takes, on ``device`` whatever it is: ``(7, 5)`` (a T4)
        is float16 autocast with a gradient scaler, ``(8, 0)`` bfloat16 without.
        PyTorch runs both on the CPU too (slowly), so the T4's branch can be
        tested without one.

    Returns
    -------
    list of dict
        One per epoch: ``epoch`` (1, 2, ...), ``loss`` (mean training loss over
        the epoch), ``train_accuracy`` (on the training minibatches, as they
        were seen), ``lr`` (at the end of the epoch), ``seconds`` (cumulative
        training time, scoring the validation set excluded) and, with
        ``valid``, ``valid_loss`` and ``valid_accuracy``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"fit expects a torch.nn.Module as model; got {type(model).__name__}.")
    if optimizer not in _OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {_OPTIMIZERS}; got {optimizer!r}.")
    if schedule not in _SCHEDULES:
        raise ValueError(f"schedule must be one of {_SCHEDULES}; got {schedule!r}.")
    if not (isinstance(epochs, int) and epochs >= 1):
        raise ValueError(f"epochs must be a whole number >= 1; got {epochs!r}.")
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise ValueError(f"batch_size must be a whole number >= 1; got {batch_size!r}.")
    if not lr > 0:
        raise ValueError(f"lr must be positive; got {lr!r}.")
    if valid is not None and (not isinstance(valid, Sequence) or len(valid) != 2):
        raise ValueError("valid must be a pair (images, labels).")

    device = torch.device(device) if device is not None else pick_device()
    amp_type = _amp_type(device, amp, _amp_capability)
    x = _inputs(images, device)
    y = _labels_tensor(labels, len(x), device)
    if len(x) == 0:
        raise ValueError("fit needs at least one training image; got none.")
    if valid is not None:
        valid_x = _inputs(valid[0], device)
        valid_y = _labels_tensor(valid[1], len(valid_x), device)

    model.to(device)
    use_channels_last = channels_last if channels_last is not None else device.type in ("cpu", "cuda")
    if use_channels_last:
        model.to(memory_format=torch.channels_last)
    opt = _make_optimizer(model, optimizer, lr, weight_decay)
    steps_per_epoch = math.ceil(len(x) / batch_size)
    if schedule == "onecycle":
        scheduler: Any = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch)
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    scaler = torch.amp.GradScaler(device.type, enabled=needs_grad_scaler(amp_type))
    order = torch.Generator()  # on the CPU: the same order whatever the device
    if seed is not None:
        order.manual_seed(seed)
    else:
        order.seed()

    previous_benchmark = torch.backends.cudnn.benchmark
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # let cuDNN time its algorithms once per shape
    history: list[dict] = []
    seconds = 0.0
    bar = tqdm(total=epochs * steps_per_epoch, desc="training", unit="batch", disable=not progress)
    try:
        for epoch in range(1, epochs + 1):
            sync(device)
            start = time.perf_counter()
            model.train()
            permutation = torch.randperm(len(x), generator=order).to(device, non_blocking=True)
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            for first in range(0, len(x), batch_size):
                batch = permutation[first : first + batch_size]
                xb, yb = x[batch], y[batch]
                with _autocast(device, amp_type):
                    logits = model(xb)
                    loss = F.cross_entropy(logits, yb)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
                scheduler.step()
                # Kept on the device: reading a number back every step would make a GPU wait.
                loss_sum += loss.detach().float() * len(batch)
                correct += (logits.detach().argmax(1) == yb).sum()
                bar.update()
            sync(device)
            seconds += time.perf_counter() - start
            row = {
                "epoch": epoch,
                "loss": loss_sum.item() / len(x),
                "train_accuracy": correct.item() / len(x),
                "lr": opt.param_groups[0]["lr"],
                "seconds": seconds,
            }
            if valid is not None:
                valid_loss, valid_acc = _evaluate(model, valid_x, valid_y, amp_type)
                row["valid_loss"], row["valid_accuracy"] = valid_loss, valid_acc
            history.append(row)
            bar.set_postfix({k: round(v, 4) for k, v in row.items() if k in ("loss", "valid_accuracy")})
    finally:
        bar.close()
        torch.backends.cudnn.benchmark = previous_benchmark
        if use_channels_last:  # hand the model back in the usual layout
            model.to(memory_format=torch.contiguous_format)
        model.eval()
    return history


def _logits(model: nn.Module, x: torch.Tensor, amp_type: torch.dtype | None = None) -> torch.Tensor:
    """Logits for model input ``x`` in large batches, without keeping gradients (float32)."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), _autocast(x.device, amp_type):
            return torch.cat([model(x[i : i + EVAL_BATCH]).float() for i in range(0, len(x), EVAL_BATCH)])
    finally:
        model.train(was_training)


def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, amp_type: torch.dtype | None) -> tuple[float, float]:
    logits = _logits(model, x, amp_type)
    loss = F.cross_entropy(logits, y).item()
    return loss, (logits.argmax(1) == y).float().mean().item()


def probabilities(model: nn.Module, images: Any) -> np.ndarray:
    """The model's probability for each class: softmax of its logits, ``(N, 10)`` numpy float32.

    ``images`` as for ``fit``; they are scored on the model's device in large
    batches under ``torch.inference_mode()`` (no gradients kept).
    """
    x = _inputs(images, _model_device(model))
    return torch.softmax(_logits(model, x), dim=1).cpu().numpy()


def predict(model: nn.Module, images: Any) -> np.ndarray:
    """The predicted class (the largest logit) for each image, ``(N,)`` numpy int64."""
    x = _inputs(images, _model_device(model))
    return _logits(model, x).argmax(1).cpu().numpy()


def accuracy(model: nn.Module, images: Any, labels: Any) -> float:
    """The fraction of images (0 to 1) whose predicted class equals the label."""
    device = _model_device(model)
    x = _inputs(images, device)
    y = _labels_tensor(labels, len(x), device)
    if len(x) == 0:
        raise ValueError("accuracy needs at least one image; got none.")
    return (_logits(model, x).argmax(1) == y).float().mean().item()


def training_record(
    data: Any, train_count: int, *, recipe: dict[str, Any], seed: int, device: torch.device | str
) -> dict[str, Any]:
    """What trained a model, to be saved beside its weights (see :func:`save_weights`).

    Parameters
    ----------
    data : MnistData or str
        What ``load_mnist()`` returned (its ``source`` is kept), or the source itself,
        ``"full"`` or ``"sample"``.
    train_count : int
        How many images the model was trained on (the training images minus the validation split).
    recipe : dict
        The settings, e.g. ``{"name": "lesson 05", "epochs": 4, "augmentation": False}``.
    seed : int
        The seed training started from.
    device : torch.device or str
        Where it trained.
    """
    source = data if isinstance(data, str) else data.source
    return {
        "source": str(source),
        "train_images": int(train_count),
        "recipe": {str(key): value for key, value in recipe.items()},
        "seed": int(seed),
        "device": str(torch.device(device).type),
        "torch": str(torch.__version__),  # a plain str: torch's version class is not weights-only loadable
    }


def describe_record(record: dict[str, Any] | None) -> str:
    """One line saying what trained a model, from its saved record (or that nobody knows)."""
    if not record:
        return "trained on unknown data (the file has no record of what trained it)"
    copy = {"full": "full MNIST", "sample": "the bundled MNIST sample"}.get(record.get("source"), "unknown data")
    recipe = record.get("recipe", {})
    how = f"{recipe.get('epochs', '?')} epochs" + (" with augmentation" if recipe.get("augmentation") else "")
    return (
        f"trained on {copy} ({record.get('train_images', 0):,} training images), {how}, "
        f"seed {record.get('seed', '?')}, on {record.get('device', '?')}, torch {record.get('torch', '?')}"
    )


def save_weights(model: nn.Module, path: Path | str = WEIGHTS_PATH, record: dict[str, Any] | None = None) -> Path:
    """Save the model's weights (its ``state_dict``) to ``path``, safely, with what trained them.

    The file holds ``{"state_dict": ..., "record": ...}``: the tensors, and ``record``
    (by default the model's own ``training_record`` attribute, set by
    :func:`trained_mnist_cnn`; see :func:`training_record`) made only of plain numbers
    and text, so :func:`load_weights` reads it back with ``weights_only=True``.
    The file is written to a temporary name in the same folder, then renamed,
    so an interrupted save never leaves a half-written file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    if record is None:
        record = getattr(model, "training_record", None)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save({"state_dict": state, "record": record}, file)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _read_weights_file(path: Path) -> tuple[dict, dict[str, Any] | None]:
    """The state_dict and the record (None for an old file with tensors only) saved at ``path``."""
    if not path.is_file():
        raise WeightsFileError(
            f"no saved weights at {_shown(path)}: run lesson 05 to train and save the model "
            f"(or call save_weights(model, path))."
        )
    try:
        saved = torch.load(io.BytesIO(path.read_bytes()), map_location="cpu", weights_only=True)
    except Exception as error:
        raise WeightsFileError(
            f"{_shown(path)} is not a readable weights file (corrupted or cut short?): "
            f"{type(error).__name__}. Delete it and save the weights again (lesson 05)."
        ) from error
    if not isinstance(saved, dict):
        raise WeightsFileError(f"{_shown(path)} holds a {type(saved).__name__}, not a state_dict of weights.")
    if "state_dict" in saved and isinstance(saved["state_dict"], dict):
        record = saved.get("record")
        return saved["state_dict"], record if isinstance(record, dict) else None
    return saved, None  # an old file: the tensors alone


def read_record(path: Path | str = WEIGHTS_PATH) -> dict[str, Any] | None:
    """What trained the weights saved at ``path`` (see :func:`training_record`); None when the file
    does not say (saved before records were kept)."""
    return _read_weights_file(Path(path))[1]


def load_weights(model: nn.Module, path: Path | str = WEIGHTS_PATH) -> nn.Module:
    """Load saved weights into ``model`` (in place, and returned), with clear errors.

    Uses ``torch.load(..., weights_only=True)``, which reads tensors, numbers and
    text only and never runs code stored in the file. What trained the weights
    (:func:`read_record`) is kept as ``model.training_record`` (None when the file
    does not say).

    Raises
    ------
    WeightsFileError
        The file is missing, is not a weights file (corrupted or truncated), or
        holds weights of another shape than the model's.
    """
    path = Path(path)
    state, record = _read_weights_file(path)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise WeightsFileError(
            f"the weights in {_shown(path)} do not fit this model (saved from another architecture?): "
            f"{str(error).splitlines()[0]}"
        ) from error
    model.training_record = record
    return model


def retrain_reason(path: Path | str, data: Any, train_count: int) -> str | None:
    """Why the weights at ``path`` cannot stand for a model trained on ``data`` now; None when they can.

    They can when the file exists, loads, and its record says it was trained on the same copy of
    MNIST (``data.source``) and the same number of training images.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        record = read_record(path)
    except WeightsFileError as error:
        return str(error)
    if record is None:
        return f"{_shown(path)} has no record of what trained it"
    if record.get("source") != data.source or record.get("train_images") != train_count:
        return (
            f"{_shown(path)} was {describe_record(record).split(',')[0]}, "
            f"but this run uses {'full MNIST' if data.source == 'full' else 'the bundled sample'} "
            f"({train_count:,} training images)"
        )
    return None


def _shown(path: Path) -> str:
    """A path as printed in messages: relative to the repository when inside it."""
    try:
        return str(path.resolve().relative_to(DATA_DIR.parent))
    except ValueError:
        return str(path)


def trained_mnist_cnn(
    path: Path | str | None = WEIGHTS_PATH,
    data: Any = None,
    progress: bool = True,
    device: torch.device | str | None = None,
) -> nn.Module:
    """Lesson 05's trained CNN: loaded from ``path`` if saved there, else trained as lesson 05 does.

    A saved model is used only when its record says it was trained on the copy of MNIST in
    use now (``data.source``) and as many training images; otherwise (another copy, or an
    old file without a record) it is retrained and saved again, with a one-line message.
    The model's ``training_record`` says what trained it (``describe_record``).

    Training (only when there is no file) uses the lesson's recipe: the
    training images minus a 10% validation split (``split_validation``),
    ``mnist_cnn()`` and ``fit`` with its defaults, on ``device``; the weights
    are then saved to ``path`` (unless it is None). On the CPU this gives the
    very weights lesson 05 saves (on the same machine and settings). The model
    is returned in evaluation mode on ``device``.

    Parameters
    ----------
    path : path or None
        The weights file (default ``data/mnist_cnn.pt``).
    data : MnistData, optional
        What ``load_mnist()`` returned (loaded here when needed and not given).
    progress : bool
        Show a progress bar while training.
    device : torch.device or str, optional
        Where the model lives (and trains, if it must); by default ``pick_device()``,
        so that lessons 06-08 use the GPU when there is one. Move inputs there too
        (``to_input(images, device)``) and call ``.cpu()`` before ``.numpy()``.
    """
    from helpers.models import mnist_cnn

    device = torch.device(device) if device is not None else pick_device()
    if data is None:
        from helpers.data import load_mnist

        data = load_mnist()
    (train_images, train_labels), valid = split_validation(data.train_images, data.train_labels)
    model = mnist_cnn()
    if path is not None and Path(path).is_file():
        reason = retrain_reason(path, data, len(train_images))
        if reason is None:
            return load_weights(model, path).to(device).eval()
        print(f"Retraining lesson 05's model: {reason}.")
    fit(model, train_images, train_labels, valid=valid, device=device, progress=progress)
    model.to(device).eval()
    recipe = {"name": "lesson 05", "epochs": DEFAULTS["epochs"], "augmentation": False}
    seed = DEFAULTS["seed"]
    model.training_record = training_record(data, len(train_images), recipe=recipe, seed=seed, device=device)
    if path is not None:
        save_weights(model, path)
    return model
