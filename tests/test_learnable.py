"""helpers.learnable: lesson 03's learnable-filter pipeline and its training loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers.filters import edge_filters, fingerprints
from helpers.learnable import (
    LearnableFilters,
    accuracy,
    loss_function,
    predict,
    train,
    two_digits,
    validation_split,
)
from helpers.training import to_input


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These tiny convolutions run fastest on one thread, and do not fight other processes for cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _toy_images(n=64, seed=0):
    """Vertical bars (label 1) and horizontal bars (label 0) on noise: easy to tell apart."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 40, size=(n, 28, 28)).astype(np.uint8)
    labels = np.arange(n) % 2
    for i, label in enumerate(labels):
        where = rng.integers(4, 24)
        if label:
            images[i, 4:24, where : where + 3] = 255
        else:
            images[i, where : where + 3, 4:24] = 255
    return images, labels.astype(np.int64)


def test_shapes_and_parameters():
    torch.manual_seed(0)
    model = LearnableFilters()
    images = np.zeros((5, 28, 28), dtype=np.uint8)
    assert model.filters.shape == (8, 1, 3, 3)
    assert model.responses(images).shape == (5, 8, 28, 28)
    assert model.fingerprints(images).shape == (5, 8, 4, 4)
    assert model(images).shape == (5,)
    assert sum(p.numel() for p in model.parameters()) == 8 * 9 + 8 * 16 + 1
    ten = LearnableFilters(n_filters=4, size=5, pool=4, n_outputs=10)
    assert ten(images).shape == (5, 10)
    assert ten.fingerprints(images).shape == (5, 4, 7, 7)
    assert LearnableFilters(pool=1).fingerprints(images).shape == (5, 8, 28, 28)


def test_the_pipeline_is_lesson_01s_with_these_filters():
    """With lesson 01's filters, the fingerprints equal helpers.filters.fingerprints (on to_input's scale)."""
    images, _ = _toy_images(6)
    model = LearnableFilters()
    with torch.no_grad():
        model.filters.copy_(torch.from_numpy(edge_filters())[:, None])
    x = to_input(images)
    expected = fingerprints(x[:, 0].numpy(), edge_filters())
    np.testing.assert_allclose(model.fingerprints(images).detach().numpy(), expected, atol=1e-5)
    # and the read-out is a plain linear layer on the flattened fingerprint
    scores = model(images).detach()
    manual = model.readout(torch.from_numpy(expected).flatten(1))[:, 0].detach()
    torch.testing.assert_close(scores, manual, atol=1e-5, rtol=1e-5)


def test_seeded_start_is_reproducible():
    torch.manual_seed(3)
    first = LearnableFilters().filters.detach().clone()
    torch.manual_seed(3)
    torch.testing.assert_close(LearnableFilters().filters.detach(), first)


def test_bad_settings_and_inputs_are_explained():
    with pytest.raises(ValueError, match="size must be odd .* got 4"):
        LearnableFilters(size=4)
    with pytest.raises(ValueError, match="pool must divide the image size 28 evenly; got 5"):
        LearnableFilters(pool=5)
    with pytest.raises(ValueError, match="n_filters must be a positive whole number; got 0"):
        LearnableFilters(n_filters=0)
    with pytest.raises(ValueError, match=r"28x28 pixels.*got shape \(2, 32, 32\)"):
        LearnableFilters()(np.zeros((2, 32, 32), dtype=np.uint8))
    with pytest.raises(TypeError, match="uint8 pixel values"):
        LearnableFilters()(np.zeros((2, 28, 28)))
    images, labels = _toy_images(8)
    with pytest.raises(ValueError, match=r"one label per image, shape \(8,\); got labels of shape \(7,\)"):
        train(LearnableFilters(), images, labels[:7], steps=1, progress=False)
    with pytest.raises(ValueError, match="lr > 0"):
        train(LearnableFilters(), images, labels, lr=0, progress=False)
    with pytest.raises(TypeError, match="LearnableFilters model; got Linear"):
        train(torch.nn.Linear(2, 1), images, labels, progress=False)


def test_loss_function_matches_the_formulas():
    scores = torch.tensor([2.0, -1.0, 0.5])
    targets = torch.tensor([1, 0, 0])
    p = torch.sigmoid(scores)
    by_hand = -(targets * p.log() + (1 - targets) * (1 - p).log()).mean()
    torch.testing.assert_close(loss_function(scores, targets), by_hand)
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.1, 0.2, 0.3]])
    classes = torch.tensor([0, 2])
    by_hand = -logits.log_softmax(dim=1)[[0, 1], classes].mean()
    torch.testing.assert_close(loss_function(logits, classes), by_hand)
    torch.testing.assert_close(loss_function(logits, classes), F.cross_entropy(logits, classes))


def test_one_step_is_plain_gradient_descent():
    images, labels = _toy_images(16)
    torch.manual_seed(0)
    model = LearnableFilters()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    loss = loss_function(model(images), torch.from_numpy(labels))
    grads = torch.autograd.grad(loss, list(model.parameters()))
    train(model, images, labels, steps=1, batch_size=16, lr=0.5, progress=False)  # one batch = all 16
    for (name, p), g in zip(model.named_parameters(), grads, strict=True):
        torch.testing.assert_close(p.detach(), before[name] - 0.5 * g)


def test_momentum_step_is_the_heavy_ball():
    images, labels = _toy_images(16)
    torch.manual_seed(0)
    plain, heavy = LearnableFilters(), LearnableFilters()
    heavy.load_state_dict(plain.state_dict())
    train(plain, images, labels, steps=1, batch_size=16, lr=0.5, progress=False)
    train(heavy, images, labels, steps=1, batch_size=16, lr=0.5, momentum=0.9, progress=False)
    torch.testing.assert_close(heavy.filters, plain.filters)  # the first step is the same
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\).*got 1.5"):
        train(plain, images, labels, momentum=1.5, progress=False)


def test_training_learns_and_keeps_the_best_on_validation():
    images, labels = _toy_images(256)
    torch.manual_seed(0)
    model = LearnableFilters(n_filters=4)
    history = train(
        model, images[:192], labels[:192], steps=150, batch_size=32, lr=0.1,
        valid=(images[192:], labels[192:]), every=25, progress=False,
    )  # fmt: skip
    assert [record["step"] for record in history] == [25, 50, 75, 100, 125, 150]
    assert {"step", "loss", "train_accuracy", "seconds", "valid_loss", "valid_accuracy"} <= history[0].keys()
    assert history[-1]["loss"] < history[0]["loss"]
    best = min(record["valid_loss"] for record in history)
    assert accuracy(model, images[192:], labels[192:]) == max(
        r["valid_accuracy"] for r in history if r["valid_loss"] == best
    )
    assert accuracy(model, images[192:], labels[192:]) >= 0.95


def test_training_is_reproducible_and_handles_ten_classes():
    images, labels = _toy_images(96)
    labels = (labels * 3 + np.arange(96) % 3).astype(np.int64)  # six classes, for the multi-class path
    results = []
    for _ in range(2):
        torch.manual_seed(1)
        model = LearnableFilters(n_filters=2, n_outputs=6)
        history = train(model, images, labels, steps=20, batch_size=40, lr=0.05, progress=False)
        results.append((history[-1]["loss"], model.filters.detach().clone()))
    assert results[0][0] == results[1][0]
    torch.testing.assert_close(results[0][1], results[1][1])
    assert predict(model, images).shape == (96,)
    assert set(np.unique(predict(model, images))) <= set(range(6))


def test_two_digits_and_validation_split():
    images = np.arange(6 * 28 * 28, dtype=np.int64).reshape(6, 28, 28).astype(np.uint8)
    labels = np.array([8, 1, 3, 1, 8, 7])
    kept, targets = two_digits(images, labels)
    np.testing.assert_array_equal(kept, images[[0, 1, 3, 4]])
    np.testing.assert_array_equal(targets, [1, 0, 0, 1])
    with pytest.raises(ValueError, match="two different digits"):
        two_digits(images, labels, yes=1, no=1)
    train_index, valid_index = validation_split(100, 0.2, seed=0)
    assert len(valid_index) == 20 and len(train_index) == 80
    assert sorted(np.concatenate([train_index, valid_index]).tolist()) == list(range(100))
    np.testing.assert_array_equal(validation_split(100, 0.2, seed=0)[1], valid_index)
    with pytest.raises(ValueError, match="between 0 and 1"):
        validation_split(10, 1.5)
