"""Deep features: a trained network's activations as a description of each image.

Introduced in lesson 07 (``07_deep_features.ipynb``). The lesson cuts lesson
05's CNN before its last layer: what goes into that layer is a vector of
numbers per image, its *deep features*. This module keeps what the lesson
shows and reuses:

* ``embed(model, images, layer=None)``: the features of many images, batched,
  without gradients, on the model's device (the same image input as ``fit``);
* ``nearest(query, gallery, k)``: the ``k`` most cosine-similar gallery rows for
  each query row, one matrix product per chunk of queries;
* ``precision_at_k(features, labels, k)``: how often those neighbours share the
  query's label (image search scored);
* ``draw_labelled(labels, per_class, draws)``: random few-label training sets;
* ``linear_probe_accuracy(...)``: logistic regression (one linear layer and
  softmax) trained on each of several few-label sets at once, and scored.

A *layer* is a name from ``model.named_modules()``; ``layer=None`` means the
input of the model's last layer (for ``mnist_cnn``: the 576 numbers that the
``fc`` layer turns into ten class scores).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from helpers.core import one_cpu_thread, to_input

LESSON = 7

__all__ = [
    "EMBED_BATCH",
    "draw_labelled",
    "embed",
    "last_layer",
    "linear_probe_accuracy",
    "nearest",
    "precision_at_k",
]

#: Images per forward pass in ``embed`` (no gradients are kept, so batches can be large).
EMBED_BATCH = 1000

#: Query rows per matrix product in ``nearest`` (a chunk of 1,024 x 10,000 similarities is 40 MB).
NEAREST_CHUNK = 1024


class _Stop(Exception):
    """Raised by a hook to end the forward pass once the wanted activation is recorded."""


def _model_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def last_layer(model: nn.Module) -> str:
    """The name of the model's last layer: its last module without sub-modules, in ``named_modules()`` order."""
    leaves = [name for name, module in model.named_modules() if name and not list(module.children())]
    if not leaves:
        raise ValueError(f"{type(model).__name__} has no layers (sub-modules) to cut before.")
    return leaves[-1]


def embed(
    model: nn.Module,
    images: Any,
    layer: str | None = None,
    batch_size: int = EMBED_BATCH,
    progress: bool = False,
) -> torch.Tensor:
    """Each image's activations at one layer of ``model``, flattened: a ``(N, D)`` tensor.

    Parameters
    ----------
    model : torch.nn.Module
        A trained (or untrained) network, for example ``trained_mnist_cnn()``.
        It is run in evaluation mode (batch normalisation uses its stored
        statistics) and left in the mode it was in.
    images : array or tensor
        uint8 ``(N, 28, 28)`` as from ``load_mnist`` (or one ``(28, 28)``
        image), or model input ``(N, 1, 28, 28)`` as ``to_input`` makes: the
        same input as ``fit`` and ``accuracy``.
    layer : str, optional
        A name from ``model.named_modules()``: that module's output. None
        (the default) means the *input* of the model's last layer
        (``last_layer(model)``), the deep features the lesson uses.
    batch_size : int
        Images per forward pass.
    progress : bool
        Show a progress bar over the batches.

    Returns
    -------
    torch.Tensor
        float32, ``(N, D)``, on the model's device; one row per image.

    Raises
    ------
    TypeError, ValueError
        ``model`` is not a module, the images are not MNIST-shaped uint8 or
        model input, ``batch_size`` is not a positive whole number, or
        ``layer`` is not one of the model's module names.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"embed expects a torch.nn.Module as model; got {type(model).__name__}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number >= 1; got {batch_size!r}.")
    modules = dict(model.named_modules())
    if layer is not None and (not isinstance(layer, str) or layer not in modules or layer == ""):
        names = [name for name in modules if name]
        raise ValueError(
            f"layer must be None or a name from model.named_modules(); got {layer!r}; the names are {names}."
        )
    device = _model_device(model)
    x = to_input(images, device)
    if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
        raise ValueError(f"expected 28x28 images (N, 28, 28) or a model input (N, 1, 28, 28); got {tuple(x.shape)}.")
    if len(x) == 0:
        raise ValueError("embed needs at least one image; got none.")
    x = x.float()

    recorded: list[torch.Tensor] = []
    if layer is None:
        target = modules[last_layer(model)]

        def record_input(module: nn.Module, inputs: tuple) -> None:
            recorded.append(inputs[0])
            raise _Stop

        handle = target.register_forward_pre_hook(record_input)
    else:

        def record_output(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            recorded.append(output)
            raise _Stop

        handle = modules[layer].register_forward_hook(record_output)

    rows = []
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            starts = range(0, len(x), batch_size)
            for start in tqdm(starts, desc="features", unit="batch", disable=not progress):
                recorded.clear()
                try:
                    model(x[start : start + batch_size])
                except _Stop:
                    pass
                if not recorded:
                    raise RuntimeError(f"layer {layer or last_layer(model)!r} did not run in the model's forward pass.")
                rows.append(recorded[0].float().flatten(1))
    finally:
        handle.remove()
        model.train(was_training)
    return torch.cat(rows)


def _as_matrix(name: str, values: Any, device: torch.device | None = None) -> torch.Tensor:
    tensor = values if isinstance(values, torch.Tensor) else torch.as_tensor(np.asarray(values))
    if tensor.ndim != 2:
        hint = " (for one vector v, pass v[None])" if tensor.ndim == 1 else ""
        raise ValueError(f"{name} must be 2-D, one row per item (N, D); got shape {tuple(tensor.shape)}{hint}.")
    if tensor.dtype == torch.bool or tensor.is_complex():
        raise TypeError(f"{name} must hold real numbers; got dtype {tensor.dtype}.")
    if device is not None:
        tensor = tensor.to(device)
    return tensor.float()


def nearest(
    query: Any,
    gallery: Any,
    k: int,
    *,
    exclude_self: bool = False,
    chunk_size: int = NEAREST_CHUNK,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` most cosine-similar gallery rows for each query row, best first.

    Cosine similarity ``a.b / (|a| |b|)`` compares directions and ignores
    lengths (a zero row is similar to nothing: 0). The rows are scaled to length
    1, then each chunk of queries is compared with the whole gallery by one
    matrix product, and ``torch.topk`` keeps the best ``k``.

    Parameters
    ----------
    query : tensor or array, (Q, D)
        One row per query (features, or flattened pixels).
    gallery : tensor or array, (G, D)
        The rows to search. The work is done on the gallery's device (numpy
        arrays: the CPU); the query is moved there.
    k : int
        Neighbours per query, 1 to G (to G - 1 with ``exclude_self``).
    exclude_self : bool
        Query and gallery are the same set, row for row: leave gallery row
        ``i`` out of query ``i``'s answer (an image should not find itself).
    chunk_size : int
        Query rows per matrix product (bounds the memory: chunk_size x G).

    Returns
    -------
    indices : torch.Tensor
        int64 ``(Q, k)``: gallery rows, most similar first.
    similarities : torch.Tensor
        float32 ``(Q, k)``: their cosine similarities, from -1 to 1, decreasing.
    """
    gallery_device = gallery.device if isinstance(gallery, torch.Tensor) else torch.device("cpu")
    gallery_rows = _as_matrix("gallery", gallery)
    query_rows = _as_matrix("query", query, gallery_device)
    if query_rows.shape[1] != gallery_rows.shape[1]:
        raise ValueError(
            f"query and gallery rows must have the same length; got query {tuple(query_rows.shape)} "
            f"and gallery {tuple(gallery_rows.shape)}."
        )
    if exclude_self and len(query_rows) != len(gallery_rows):
        raise ValueError(
            f"exclude_self=True means query row i is gallery row i, so both need the same number of rows; "
            f"got {len(query_rows)} queries and {len(gallery_rows)} gallery rows."
        )
    available = len(gallery_rows) - int(exclude_self)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= available:
        raise ValueError(f"k must be a whole number from 1 to {available} (the gallery rows available); got {k!r}.")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a whole number >= 1; got {chunk_size!r}.")
    k = int(k)
    gallery_unit = F.normalize(gallery_rows, dim=1)
    query_unit = F.normalize(query_rows, dim=1)
    all_indices, all_similarities = [], []
    for start in range(0, len(query_unit), chunk_size):
        similarity = query_unit[start : start + chunk_size] @ gallery_unit.T  # (chunk, G)
        if exclude_self:
            rows = torch.arange(len(similarity), device=similarity.device)
            similarity[rows, rows + start] = -torch.inf
        values, indices = similarity.topk(k, dim=1)
        all_indices.append(indices)
        all_similarities.append(values)
    if not all_indices:
        return torch.empty(0, k, dtype=torch.long, device=gallery_device), torch.empty(0, k, device=gallery_device)
    return torch.cat(all_indices), torch.cat(all_similarities)


def precision_at_k(features: Any, labels: Any, k: int = 10) -> float:
    """Image search scored: the share of each image's ``k`` nearest neighbours that share its label.

    Every row of ``features`` is a query, and the gallery is all the other rows
    (the query itself is left out). The result is the mean, over all queries,
    of the fraction of their ``k`` most cosine-similar rows with the same label:
    1.0 when every neighbour has the query's label.
    """
    features = _as_matrix("features", features)
    labels = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels)
    if labels.ndim != 1 or len(labels) != len(features):
        raise ValueError(
            f"labels must be 1-D with one label per row of features ({len(features)}); got shape {tuple(labels.shape)}."
        )
    labels = labels.to(features.device)
    indices, _ = nearest(features, features, k, exclude_self=True)
    return (labels[indices] == labels[:, None]).float().mean().item()


def draw_labelled(labels: Any, per_class: int, draws: int, seed: int = 0) -> np.ndarray:
    """Random few-label training sets: ``per_class`` positions of each label, for each of ``draws`` draws.

    Parameters
    ----------
    labels : array, (N,)
        The labels of the pool to draw from.
    per_class : int
        Labelled images per class in each draw.
    draws : int
        How many independent draws.
    seed : int
        Fixes the draws (draw ``d`` uses ``np.random.default_rng([seed, d])``).

    Returns
    -------
    np.ndarray
        int64 ``(draws, classes * per_class)``: positions in ``labels``, grouped by
        class in increasing label order; within a draw no position repeats.
    """
    labels = np.asarray(labels)
    classes = np.unique(labels)
    counts = np.bincount(np.searchsorted(classes, labels), minlength=len(classes))
    if per_class < 1 or per_class > counts.min():
        raise ValueError(f"per_class must be from 1 to {counts.min()} (the rarest class's count); got {per_class}.")
    positions = [np.flatnonzero(labels == c) for c in classes]
    chosen = np.empty((draws, len(classes) * per_class), dtype=np.int64)
    for d in range(draws):
        rng = np.random.default_rng([seed, d])
        chosen[d] = np.concatenate([rng.choice(p, per_class, replace=False) for p in positions])
    return chosen


def linear_probe_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    steps: int = 100,
    lr: float = 0.1,
    weight_decay: float = 1e-4,
) -> torch.Tensor:
    """Logistic regression trained on several labelled sets at once, each scored on the test set.

    Logistic regression is one linear layer whose ten outputs go through
    softmax and cross-entropy, as in lesson 04; here it is trained by
    full-batch Adam for a fixed number of steps from zero weights. The ``R``
    training sets are stacked on a first axis and trained together as one
    batched model (``torch.bmm``): ``R`` independent classifiers in the time
    of one.

    Parameters
    ----------
    train_features : torch.Tensor, (R, M, D)
        ``R`` training sets of ``M`` feature rows each.
    train_labels : torch.Tensor, (R, M)
        Their labels, class numbers ``0 .. C-1``.
    test_features : torch.Tensor, (T, D)
        The test rows, shared by all ``R`` classifiers.
    test_labels : torch.Tensor, (T,)
        Their labels.
    steps, lr, weight_decay : int, float, float
        Full-batch Adam steps, its learning rate, and the L2 penalty on the
        weights (added to the mean cross-entropy).

    Returns
    -------
    torch.Tensor
        float32 ``(R,)``: each classifier's test accuracy (0 to 1).
    """
    if train_features.ndim != 3 or train_labels.shape != train_features.shape[:2]:
        raise ValueError(
            f"train_features must be (R, M, D) and train_labels (R, M); got {tuple(train_features.shape)} "
            f"and {tuple(train_labels.shape)}."
        )
    if test_features.ndim != 2 or test_features.shape[1] != train_features.shape[2]:
        raise ValueError(f"test_features must be (T, {train_features.shape[2]}); got {tuple(test_features.shape)}.")
    classes = int(max(train_labels.max(), test_labels.max())) + 1
    draws, _, width = train_features.shape
    device = train_features.device
    weight = torch.zeros(draws, width, classes, device=device, requires_grad=True)
    bias = torch.zeros(draws, 1, classes, device=device, requires_grad=True)
    optimizer = torch.optim.Adam([weight, bias], lr=lr)
    with one_cpu_thread(device), torch.enable_grad():  # small steps: one thread (see core)
        for _ in range(steps):
            logits = torch.bmm(train_features, weight) + bias  # (R, M, C)
            loss = F.cross_entropy(logits.flatten(0, 1), train_labels.flatten(), reduction="mean")
            loss = loss * draws + weight_decay * (weight**2).sum()  # each classifier: its own mean loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        predicted = (torch.einsum("td,rdc->rtc", test_features, weight) + bias).argmax(2)  # (R, T)
        return (predicted == test_labels).float().mean(1)
