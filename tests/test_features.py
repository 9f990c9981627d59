"""Tests for lesson 07's helpers (helpers.features): embed, nearest, precision_at_k, few-label probes.

Models and inputs live on ``pick_device()`` (the CPU here; CUDA in the gpu suite, which sets
``COURSE_DEVICE=cuda``); results are compared on the CPU. Cases that need two devices are
skipped, saying why, where there is no CUDA GPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers.core import pick_device, to_input
from helpers.data import load_mnist
from helpers.features import (
    draw_labelled,
    embed,
    last_layer,
    linear_probe_accuracy,
    nearest,
    precision_at_k,
)
from helpers.models import mnist_cnn

DEVICE = pick_device()
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (PyTorch sees none)")


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return load_mnist().test_images[:300]


@pytest.fixture(scope="module")
def model() -> nn.Module:
    return mnist_cnn().to(DEVICE).eval()


class FunctionalCNN(nn.Module):
    """A model whose forward uses functional calls: only conv1, conv2 and fc are modules."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 7 * 7, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


# ---------------------------------------------------------------------------
# embed


def test_last_layer_of_the_course_cnn_is_fc(model):
    assert last_layer(model) == "fc"


def test_embed_default_is_the_input_of_the_last_layer(model, images):
    features = embed(model, images)
    assert features.shape == (len(images), 64 * 3 * 3)
    assert features.dtype == torch.float32
    assert features.device.type == DEVICE.type
    with torch.no_grad():
        expected = model[:-1](to_input(images, DEVICE))  # every layer but fc
    assert torch.allclose(features.cpu(), expected.cpu(), atol=1e-5)
    logits = model.fc(features)
    with torch.no_grad():
        assert torch.allclose(logits.cpu(), model(to_input(images, DEVICE)).cpu(), atol=1e-4)


def test_embed_does_not_depend_on_the_batch_size(model, images):
    whole = embed(model, images, batch_size=1000)
    pieces = embed(model, images, batch_size=7)  # 300 = 42 * 7 + 6: a short last batch
    assert torch.allclose(whole.cpu(), pieces.cpu(), atol=1e-5)


def test_embed_a_named_layer_is_that_modules_output_flattened(model, images):
    features = embed(model, images[:20], layer="relu2")
    assert features.shape == (20, 32 * 7 * 7)
    with torch.no_grad():
        expected = model[:8](to_input(images[:20], DEVICE)).flatten(1)  # conv1 ... relu2
    assert torch.allclose(features.cpu(), expected.cpu(), atol=1e-5)
    assert (features >= 0).all()  # after a ReLU


def test_embed_accepts_model_input_one_image_and_tensors(model, images):
    from_uint8 = embed(model, images[:5])
    from_input = embed(model, to_input(images[:5]))
    from_tensor = embed(model, torch.as_tensor(images[:5]))
    one = embed(model, images[0])
    assert torch.allclose(from_uint8.cpu(), from_input.cpu())
    assert torch.allclose(from_uint8.cpu(), from_tensor.cpu())
    assert one.shape == (1, 576)
    assert torch.allclose(one.cpu(), from_uint8[:1].cpu(), atol=1e-5)


def test_embed_uses_evaluation_mode_and_restores_the_mode(images):
    model = mnist_cnn().to(DEVICE)
    model.train()
    a = embed(model, images[:10])
    b = embed(model, images[:10])  # batch norm in training mode would update its statistics
    assert torch.equal(a, b)
    assert model.training
    assert not any(module._forward_hooks or module._forward_pre_hooks for module in model.modules())


def test_embed_keeps_no_gradient(model, images):
    assert not embed(model, images[:4]).requires_grad


def test_embed_works_for_a_model_with_functional_calls(images):
    model = FunctionalCNN().to(DEVICE)
    assert last_layer(model) == "fc"
    features = embed(model, images[:6])
    assert features.shape == (6, 8 * 7 * 7)
    assert torch.allclose(
        model.fc(features).detach().cpu(), model(to_input(images[:6], DEVICE)).detach().cpu(), atol=1e-5
    )
    assert embed(model, images[:6], layer="conv2").shape == (6, 8 * 14 * 14)


@needs_cuda
def test_embed_on_cuda_equals_the_cpu(images):
    cpu = embed(mnist_cnn(), images[:50])
    gpu = embed(mnist_cnn().cuda(), images[:50])
    assert gpu.device.type == "cuda"
    assert torch.allclose(gpu.cpu(), cpu, rtol=1e-2, atol=1e-2)  # cuDNN may use TF32


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"layer": "conv9"}, ValueError, "named_modules"),
        ({"layer": ""}, ValueError, "named_modules"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": 2.5}, ValueError, "batch_size"),
    ],
)
def test_embed_bad_options_get_clear_errors(model, images, kwargs, error, words):
    with pytest.raises(error, match=words):
        embed(model, images[:3], **kwargs)


def test_embed_bad_images_get_clear_errors(model, images):
    with pytest.raises(TypeError, match="uint8"):
        embed(model, images[:3].astype(np.float64))
    with pytest.raises(ValueError, match="28x28"):
        embed(model, np.zeros((3, 32, 32), np.uint8))
    with pytest.raises(ValueError, match="at least one image"):
        embed(model, images[:0])
    with pytest.raises(TypeError, match="nn.Module"):
        embed(lambda x: x, images[:3])


# ---------------------------------------------------------------------------
# nearest


def brute_force(query: np.ndarray, gallery: np.ndarray, k: int, exclude_self: bool = False):
    """A plain loop: for each query, every gallery row's cosine, sorted."""
    indices, similarities = [], []
    for i, q in enumerate(query):
        scores = []
        for j, g in enumerate(gallery):
            if exclude_self and i == j:
                continue
            scores.append((float(q @ g / (np.linalg.norm(q) * np.linalg.norm(g))), j))
        scores.sort(reverse=True)
        indices.append([j for _, j in scores[:k]])
        similarities.append([s for s, _ in scores[:k]])
    return np.array(indices), np.array(similarities)


@pytest.fixture(scope="module")
def vectors():
    rng = np.random.default_rng(0)
    return rng.normal(size=(37, 6)).astype(np.float32), rng.normal(size=(53, 6)).astype(np.float32)


@pytest.mark.parametrize("chunk_size", [1, 5, 1024])
def test_nearest_agrees_with_a_loop(vectors, chunk_size):
    query, gallery = vectors
    indices, similarities = nearest(
        torch.as_tensor(query, device=DEVICE), torch.as_tensor(gallery, device=DEVICE), 4, chunk_size=chunk_size
    )
    expected_indices, expected_similarities = brute_force(query, gallery, 4)
    assert indices.shape == similarities.shape == (37, 4)
    assert indices.dtype == torch.int64 and similarities.dtype == torch.float32
    assert indices.device.type == similarities.device.type == DEVICE.type
    np.testing.assert_array_equal(indices.cpu().numpy(), expected_indices)
    np.testing.assert_allclose(similarities.cpu().numpy(), expected_similarities, atol=1e-5)


def test_nearest_excluding_self_agrees_with_a_loop(vectors):
    gallery = vectors[1]
    indices, similarities = nearest(gallery, gallery, 3, exclude_self=True, chunk_size=10)
    expected_indices, expected_similarities = brute_force(gallery, gallery, 3, exclude_self=True)
    np.testing.assert_array_equal(indices.numpy(), expected_indices)
    np.testing.assert_allclose(similarities.numpy(), expected_similarities, atol=1e-5)
    assert not (indices == torch.arange(len(gallery))[:, None]).any()


def test_nearest_without_exclusion_finds_itself_first(vectors):
    gallery = vectors[1]
    indices, similarities = nearest(gallery, gallery, 1)
    np.testing.assert_array_equal(indices[:, 0].numpy(), np.arange(len(gallery)))
    np.testing.assert_allclose(similarities.numpy(), 1.0, atol=1e-5)


def test_nearest_ignores_length_and_accepts_integers():
    gallery = np.array([[1, 0], [0, 3], [5, 5]], dtype=np.uint8)
    indices, similarities = nearest(np.array([[100.0, 1.0]]), gallery, 3)
    assert indices.tolist() == [[0, 2, 1]]
    assert similarities[0, 0] > 0.99


def test_nearest_zero_row_is_similar_to_nothing():
    indices, similarities = nearest(np.zeros((1, 3)), np.eye(3), 3)
    np.testing.assert_allclose(similarities.numpy(), 0.0)


def test_nearest_all_of_the_gallery_is_sorted(vectors):
    query, gallery = vectors
    _, similarities = nearest(query, gallery, len(gallery))
    assert (similarities[:, :-1] >= similarities[:, 1:]).all()


@needs_cuda
def test_nearest_on_cuda_works_where_the_gallery_is(vectors):
    query, gallery = vectors
    indices, similarities = nearest(query, torch.as_tensor(gallery).cuda(), 4)  # numpy query moves over
    assert indices.device.type == "cuda"
    expected_indices, _ = brute_force(query, gallery, 4)
    np.testing.assert_array_equal(indices.cpu().numpy(), expected_indices)


@pytest.mark.parametrize(
    ("query", "gallery", "k", "kwargs", "words"),
    [
        (np.ones(4), np.ones((5, 4)), 1, {}, r"2-D.*v\[None\]"),
        (np.ones((2, 4)), np.ones((5, 3)), 1, {}, "same length"),
        (np.ones((2, 4)), np.ones((5, 4)), 0, {}, "from 1 to 5"),
        (np.ones((2, 4)), np.ones((5, 4)), 6, {}, "from 1 to 5"),
        (np.ones((5, 4)), np.ones((5, 4)), 5, {"exclude_self": True}, "from 1 to 4"),
        (np.ones((2, 4)), np.ones((5, 4)), 1, {"exclude_self": True}, "same number of rows"),
        (np.ones((2, 4)), np.ones((5, 4)), 2.0, {}, "whole number"),
        (np.ones((2, 4)), np.ones((5, 4)), 1, {"chunk_size": 0}, "chunk_size"),
    ],
)
def test_nearest_bad_input_gets_a_clear_error(query, gallery, k, kwargs, words):
    with pytest.raises(ValueError, match=words):
        nearest(query, gallery, k, **kwargs)


def test_nearest_rejects_booleans():
    with pytest.raises(TypeError, match="real numbers"):
        nearest(np.ones((2, 3), bool), np.ones((4, 3)), 1)


# ---------------------------------------------------------------------------
# precision_at_k, draw_labelled, linear_probe_accuracy


def test_precision_at_k_agrees_with_a_loop(vectors):
    gallery = vectors[1]
    labels = np.arange(len(gallery)) % 3
    expected_indices, _ = brute_force(gallery, gallery, 5, exclude_self=True)
    expected = np.mean([np.mean(labels[row] == labels[i]) for i, row in enumerate(expected_indices)])
    assert precision_at_k(gallery, labels, 5) == pytest.approx(expected)


def test_precision_at_k_is_one_for_separated_classes():
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(4), 12)
    features = np.eye(4)[labels] + 0.01 * rng.normal(size=(48, 4))
    assert precision_at_k(torch.as_tensor(features, device=DEVICE), torch.as_tensor(labels), 10) == 1.0


def test_precision_at_k_needs_one_label_per_row():
    with pytest.raises(ValueError, match="one label per row"):
        precision_at_k(np.ones((5, 2)), np.zeros(4), 2)


def test_draw_labelled_gives_per_class_positions():
    labels = np.repeat(np.arange(10), 20)[::-1].copy()
    chosen = draw_labelled(labels, 3, draws=4, seed=0)
    assert chosen.shape == (4, 30)
    for row in chosen:
        assert len(set(row.tolist())) == 30
        np.testing.assert_array_equal(labels[row], np.repeat(np.arange(10), 3))
    assert not np.array_equal(chosen[0], chosen[1])
    np.testing.assert_array_equal(chosen, draw_labelled(labels, 3, draws=4, seed=0))


def test_draw_labelled_rejects_too_many_per_class():
    with pytest.raises(ValueError, match="from 1 to 20"):
        draw_labelled(np.repeat(np.arange(3), 20), 21, draws=1)


def test_linear_probe_batched_equals_one_at_a_time():
    rng = np.random.default_rng(2)
    centres = rng.normal(size=(3, 8))
    labels = np.repeat(np.arange(3), 10)
    train = torch.as_tensor(centres[labels] + 0.3 * rng.normal(size=(4, 30, 8)), dtype=torch.float32)
    train_labels = torch.as_tensor(np.tile(labels, (4, 1)))
    test_labels = torch.as_tensor(np.repeat(np.arange(3), 50))
    test = torch.as_tensor(centres[test_labels.numpy()] + 0.3 * rng.normal(size=(150, 8)), dtype=torch.float32)
    together = linear_probe_accuracy(train, train_labels, test, test_labels, steps=50)
    alone = torch.cat(
        [
            linear_probe_accuracy(train[r : r + 1], train_labels[r : r + 1], test, test_labels, steps=50)
            for r in range(4)
        ]
    )
    assert together.shape == (4,)
    torch.testing.assert_close(together, alone)
    assert (together > 0.9).all()  # separable enough that a linear model learns it


def test_linear_probe_checks_shapes():
    with pytest.raises(ValueError, match=r"\(R, M, D\)"):
        linear_probe_accuracy(
            torch.ones(5, 3), torch.zeros(5, dtype=torch.long), torch.ones(2, 3), torch.zeros(2, dtype=torch.long)
        )
    with pytest.raises(ValueError, match="test_features"):
        linear_probe_accuracy(
            torch.ones(1, 5, 3), torch.zeros(1, 5, dtype=torch.long), torch.ones(2, 4), torch.zeros(2, dtype=torch.long)
        )


def test_linear_probe_runs_on_one_cpu_thread_and_restores_the_count(monkeypatch):
    seen = []
    original = torch.bmm
    monkeypatch.setattr(torch, "bmm", lambda *args: seen.append(torch.get_num_threads()) or original(*args))
    threads = torch.get_num_threads()
    train = torch.randn(2, 6, 3)
    linear_probe_accuracy(
        train, torch.zeros(2, 6, dtype=torch.long), torch.randn(4, 3), torch.zeros(4, dtype=torch.long), steps=3
    )
    assert seen == [1, 1, 1]
    assert torch.get_num_threads() == threads
