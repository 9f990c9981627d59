"""helpers.learnable: lesson 03's learnable-filter pipeline and its training loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers.core import one_cpu_thread, to_input
from helpers.filters import edge_filters, fingerprints
from helpers.learnable import (
    LearnableFilters,
    accuracy,
    data_fingerprint,
    loss_function,
    predict,
    review_trained_model,
    same_data,
    train,
    two_digits,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These tiny convolutions run fastest on one thread, and do not fight other processes for cores."""
    with one_cpu_thread():
        yield


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


def test_two_digits():
    images = np.arange(6 * 28 * 28, dtype=np.int64).reshape(6, 28, 28).astype(np.uint8)
    labels = np.array([8, 1, 3, 1, 8, 7])
    kept, targets = two_digits(images, labels)
    np.testing.assert_array_equal(kept, images[[0, 1, 3, 4]])
    np.testing.assert_array_equal(targets, [1, 0, 0, 1])  # 1 means "is an 8"
    with pytest.raises(ValueError, match="two different digits"):
        two_digits(images, labels, yes=1, no=1)


def test_one_validation_split_lives_in_core():
    """Lesson 03 uses helpers.core's split; its own copy is gone."""
    import helpers.learnable

    assert not hasattr(helpers.learnable, "validation_split")


def test_frozen_filters_stay_and_only_the_read_out_learns():
    images, labels = _toy_images(64)
    torch.manual_seed(0)
    model = LearnableFilters(n_filters=4)
    filters = model.filters.detach().clone()
    readout = model.readout.weight.detach().clone()
    model.filters.requires_grad_(False)
    history = train(model, images, labels, steps=30, batch_size=32, lr=0.1, every=10, progress=False)
    torch.testing.assert_close(model.filters, filters, rtol=0, atol=0)
    assert not torch.equal(model.readout.weight, readout)
    assert history[-1]["loss"] < history[0]["loss"]
    # the read-out moved exactly as plain descent on the read-out alone would move it
    torch.manual_seed(0)
    same = LearnableFilters(n_filters=4)
    same.filters.requires_grad_(False)
    loss = loss_function(same(images[:16]), torch.from_numpy(labels[:16]))
    grads = torch.autograd.grad(loss, [same.readout.weight, same.readout.bias])
    before = same.readout.weight.detach().clone()
    train(same, images[:16], labels[:16], steps=1, batch_size=16, lr=0.5, progress=False)
    torch.testing.assert_close(same.readout.weight.detach(), before - 0.5 * grads[0])
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    with pytest.raises(ValueError, match="every parameter of the model is frozen"):
        train(model, images, labels, steps=1, progress=False)


def test_predict_and_accuracy_mean_what_lesson_05s_do():
    """The predicted class per image; the fraction right, 0 to 1 (as helpers.training, for any model)."""
    from helpers import training

    images, labels = _toy_images(40)
    torch.manual_seed(2)
    ten = LearnableFilters(n_filters=2, n_outputs=10)
    np.testing.assert_array_equal(predict(ten, images), training.predict(ten, images))
    classes = labels * 7
    assert accuracy(ten, images, classes) == pytest.approx(training.accuracy(ten, images, classes))
    one = LearnableFilters(n_filters=2)
    with torch.no_grad():
        scores = one(images)
    guesses = predict(one, images)
    assert guesses.dtype == np.int64 and guesses.shape == (40,)
    np.testing.assert_array_equal(guesses, (scores > 0).long().numpy())  # 1 = "yes", 0 = "no"
    right = (guesses == labels).mean()
    assert accuracy(one, images, labels) == pytest.approx(right)
    assert accuracy(one, images, torch.from_numpy(labels)) == pytest.approx(right)  # tensors too
    assert 0 <= right <= 1
    with pytest.raises(ValueError, match="at least one image"):
        accuracy(one, images[:0], labels[:0])


def _trained(images, labels, **shape):
    torch.manual_seed(0)
    model = LearnableFilters(**shape)
    history = train(model, images, labels, steps=60, batch_size=32, lr=0.1, progress=False)
    return model, history


def test_review_trained_model_names_each_slip():
    images, labels = _toy_images(192)
    model, history = _trained(images[64:], labels[64:], n_filters=2)  # scored on the other 64
    images, labels = images[:64], labels[:64]
    assert review_trained_model(model, images, labels, min_accuracy=0.9, n_filters=2) == (True, "")
    assert review_trained_model(..., images, labels, min_accuracy=0.9) == (False, "")

    def hint(answer, **expected):
        right, text = review_trained_model(answer, images, labels, min_accuracy=0.9, **expected)
        assert not right
        return text

    assert "the history that train(...) returns" in hint(history, n_filters=2)
    assert "Expected a trained LearnableFilters model; got Linear" in hint(torch.nn.Linear(2, 1))
    assert "Your model has n_filters=2; this exercise asks for n_filters=8" in hint(model, n_filters=8)
    assert "size=3; this exercise asks for size=5" in hint(model, size=5)
    assert "pool=7; this exercise asks for pool=1" in hint(model, pool=1)
    assert "never been through a training step" in hint(LearnableFilters(n_filters=2), n_filters=2)
    stuck = LearnableFilters(n_filters=2)
    train(stuck, images[:32], labels[:32], steps=1, progress=False)
    with torch.no_grad():
        stuck.readout.weight.zero_()
        stuck.readout.bias.fill_(5.0)  # says "yes" to everything, as an overshot model does
    assert "same answer for every image" in hint(stuck)
    right, text = review_trained_model(model, images, labels, min_accuracy=1.01)
    assert not right and "every seed reaches at least 101.0%" in text


def test_train_records_how_it_trained_and_the_fingerprint_ignores_the_form():
    images, labels = _toy_images(64)
    torch.manual_seed(0)
    model = LearnableFilters(n_filters=2)
    assert model.training_log == []
    model.filters.requires_grad_(False)
    train(model, images, labels, steps=5, batch_size=16, lr=0.05, progress=False)
    record = model.training_log[-1]
    assert (record["steps"], record["lr"], record["batch_size"], record["images"]) == (5, 0.05, 16, 64)
    assert record["frozen"] == ["filters"]
    assert same_data(record["data"], data_fingerprint(images))
    assert same_data(data_fingerprint(images), data_fingerprint(to_input(images)))  # uint8 or floats
    assert same_data(data_fingerprint(images), data_fingerprint(torch.from_numpy(images)))
    assert not same_data(data_fingerprint(images), data_fingerprint(images[:-1]))
    assert not same_data(data_fingerprint(images[:32]), data_fingerprint(images[32:]))


def test_review_trained_model_checks_the_method_not_only_the_score():
    images, labels = _toy_images(160)
    train_x, train_y, valid_x, valid_y = images[:96], labels[:96], images[96:128], labels[96:128]
    test_x = images[128:]

    def model_trained(x, y, *, steps=60, lr=0.1, calls=1, frozen=False):
        torch.manual_seed(0)
        model = LearnableFilters(n_filters=2)
        if frozen:
            model.filters.requires_grad_(False)
        for _ in range(calls):
            train(model, x, y, steps=steps // calls, batch_size=32, lr=lr, progress=False)
        return model

    def review(model, **asked):
        return review_trained_model(
            model,
            valid_x,
            valid_y,
            min_accuracy=0.9,
            n_filters=2,
            steps=60,
            trained_on=train_x,
            held_out={"the test images (X_test)": test_x},
            **asked,
        )

    assert review(model_trained(train_x, train_y)) == (True, "")
    assert review(model_trained(train_x, train_y, calls=3)) == (True, "")  # 60 steps in three calls
    assert review(model_trained(train_x, train_y), lr=0.1) == (True, "")
    cases = [
        (model_trained(valid_x, valid_y), {}, "trained on the validation split"),
        (model_trained(test_x, labels[128:]), {}, "the test images (X_test)"),
        (model_trained(images[:128], labels[:128]), {}, "the training and the validation images together"),
        (model_trained(train_x[:50], train_y[:50]), {}, "50 images, fewer than the 96"),
        (model_trained(train_x, train_y, steps=6), {}, "trained for 6 steps; the exercise asks for 60"),
        (model_trained(train_x, train_y, steps=120, calls=2), {}, "120 steps in all"),
        (model_trained(train_x, train_y, frozen=True), {}, "filters were frozen"),
        (model_trained(train_x, train_y), {"lr": 0.01}, "asks for a learning rate of 0.01"),
    ]
    for model, asked, words in cases:
        right, text = review(model, **asked)
        assert not right and words in text, (words, text)
    own_loop = LearnableFilters(n_filters=2)
    own_loop(train_x[:8]).sum().backward()
    right, text = review(own_loop)
    assert not right and "a loop of your own" in text
