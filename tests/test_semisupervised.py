"""helpers.semisupervised (lesson 09): picking the labelled images, pseudo-labels, FixMatch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.core import one_cpu_thread
from helpers.models import mnist_cnn
from helpers.semisupervised import (
    FIXMATCH,
    cut_out,
    fixmatch,
    pick_labelled,
    pseudo_labels,
    self_train,
    train_supervised,
)
from helpers.training import accuracy
from tests.trained import briefly_trained_cnn


@pytest.fixture(scope="module")
def digits():
    from helpers.data import load_mnist

    mnist = load_mnist()
    return mnist.train_images[:3000], mnist.train_labels[:3000]


def test_pick_labelled_draws_that_many_of_each_digit_with_the_seed(digits):
    _, labels = digits
    picked = pick_labelled(labels, 5, seed=3)
    assert picked.dtype == np.int64 and picked.shape == (50,)
    assert np.bincount(labels[picked], minlength=10).tolist() == [5] * 10
    assert len(set(picked.tolist())) == 50
    assert np.array_equal(picked, pick_labelled(labels, 5, seed=3))
    assert not np.array_equal(picked, pick_labelled(labels, 5, seed=4))
    assert np.array_equal(pick_labelled(torch.as_tensor(labels), 5, seed=3), picked)


def test_pick_labelled_is_the_lessons_loop(digits):
    _, labels = digits
    rng = np.random.default_rng(0)
    by_hand = np.concatenate(
        [np.sort(rng.choice(np.flatnonzero(labels == d), size=2, replace=False)) for d in range(10)]
    )
    assert np.array_equal(pick_labelled(labels, 2, seed=0), by_hand)


def test_pick_labelled_says_which_digit_is_short():
    labels = np.array([0, 0, 1] + list(range(2, 10)) * 3)
    with pytest.raises(ValueError, match="digit 1 has only 1"):
        pick_labelled(labels, 2)
    with pytest.raises(ValueError, match="whole number"):
        pick_labelled(labels, 0)


def test_pseudo_labels_keeps_only_what_the_model_is_sure_of(digits):
    images, labels = digits
    model = briefly_trained_cnn()
    positions, guesses = pseudo_labels(model, images[:500], 0.95)
    loose, _ = pseudo_labels(model, images[:500], 0.5)
    assert positions.dtype == np.int64 and guesses.dtype == np.int64
    assert 0 < len(positions) < len(loose) <= 500
    assert np.mean(guesses == labels[:500][positions]) > 0.9
    assert len(pseudo_labels(model, images[:500], 1.0)[0]) <= len(positions)


def test_cut_out_blanks_one_square_per_image():
    x = torch.ones(4, 1, 28, 28)
    out = cut_out(x, 6, torch.Generator().manual_seed(0))
    blanked = (out != 1).flatten(1).sum(1)
    assert (blanked > 0).all() and (blanked <= 36).all()
    assert cut_out(x, 0, torch.Generator()) is x


def test_fixmatch_trains_in_place_and_reports_what_the_lesson_plots(digits):
    images, labels = digits
    picked = pick_labelled(labels, 5, seed=0)
    model = mnist_cnn()
    with one_cpu_thread():
        history = fixmatch(
            model,
            images[picked],
            labels[picked],
            images[:2000],
            valid=(images[2000:2500], labels[2000:2500]),
            steps=30,
            unlabelled_batch=64,
            evaluate_every=10,
            progress=False,
        )
    assert [row["step"] for row in history] == [10, 20, 30]
    for row in history:
        assert {"step", "loss", "used", "seconds", "valid_accuracy"} <= set(row)
        assert 0 <= row["used"] <= 1 and 0 <= row["valid_accuracy"] <= 1
    assert history[-1]["seconds"] >= history[0]["seconds"] > 0
    assert not model.training
    assert history[-1]["valid_accuracy"] > 0.4  # 50 labels, 30 steps: far above chance (0.1)


def test_fixmatch_options_run_and_the_teacher_ends_in_the_model(digits):
    images, labels = digits
    picked = pick_labelled(labels, 1, seed=0)
    model = mnist_cnn()
    with one_cpu_thread():
        history = fixmatch(
            model,
            images[picked],
            labels[picked],
            images[:500],
            steps=4,
            unlabelled_batch=32,
            ema=0.9,
            align=True,
            cut_out=8,
            threshold=0.5,
            progress=False,
        )
    assert "valid_accuracy" not in history[-1] and history[-1]["step"] == 4
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_fixmatch_refuses_bad_settings(digits):
    images, labels = digits
    with pytest.raises(ValueError, match="threshold"):
        fixmatch(mnist_cnn(), images[:10], labels[:10], images[:10], threshold=0, progress=False)
    with pytest.raises(ValueError, match="steps"):
        fixmatch(mnist_cnn(), images[:10], labels[:10], images[:10], steps=0, progress=False)
    with pytest.raises(ValueError, match="labels must"):
        fixmatch(mnist_cnn(), images[:10], labels[:10] + 20, images[:10], steps=1, progress=False)


def test_the_lessons_recipe_is_the_default():
    import inspect

    defaults = inspect.signature(fixmatch).parameters
    for name in ("steps", "threshold", "unlabelled_batch", "lr", "ema", "align", "cut_out"):
        assert defaults[name].default == FIXMATCH[name]
    assert FIXMATCH["threshold"] == 0.95


def test_train_supervised_and_self_train_learn_from_few_labels(digits):
    images, labels = digits
    picked = pick_labelled(labels, 10, seed=0)
    model = mnist_cnn()
    with one_cpu_thread():
        history = train_supervised(
            model,
            images[picked],
            labels[picked],
            steps=40,
            valid=(images[2000:2500], labels[2000:2500]),
            progress=False,
        )
        assert history[-1]["valid_accuracy"] > 0.4
        before = accuracy(model, images[2000:2500], labels[2000:2500])
        rounds = self_train(
            model,
            images[picked],
            labels[picked],
            images[:1000],
            rounds=1,
            epochs=1,
            threshold=0.5,
            valid=(images[2000:2500], labels[2000:2500]),
            progress=False,
        )
    assert rounds[0]["round"] == 1 and 0 < rounds[0]["used"] <= 1
    assert len(rounds[0]["pseudo_positions"]) == len(rounds[0]["pseudo_labels"])
    assert rounds[0]["valid_accuracy"] > before - 0.2
