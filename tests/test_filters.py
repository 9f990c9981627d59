"""helpers.filters: lesson 01's filters, correlation, pooling and the fingerprint classifier."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndimage
import torch
import torch.nn.functional as F

from helpers.core import pick_device
from helpers.data import load_mnist
from helpers.filters import (
    DIAGONAL,
    TOP_EDGE,
    FingerprintClassifier,
    convolve,
    correlate,
    edge_filters,
    filter_names,
    fingerprints,
    max_pool,
)


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


def test_top_edge_and_the_eight_filters():
    np.testing.assert_array_equal(TOP_EDGE, [[-1, -1, -1], [1, 1, 1], [0, 0, 0]])
    filters = edge_filters()
    assert filters.shape == (8, 3, 3) and filters.dtype == np.float32
    for k in range(4):
        np.testing.assert_array_equal(filters[k], np.rot90(TOP_EDGE, k))
        np.testing.assert_array_equal(filters[4 + k], np.rot90(DIAGONAL, k))
    np.testing.assert_array_equal(filters[1], [[-1, 1, 0], [-1, 1, 0], [-1, 1, 0]])  # left edge
    assert len(filter_names()) == 8
    assert len({f.tobytes() for f in filters}) == 8  # all different


@pytest.mark.parametrize("function, reference", [(correlate, ndimage.correlate), (convolve, ndimage.convolve)])
def test_agrees_with_scipy_on_real_digits(mnist, function, reference):
    images = mnist.train_images[:20]
    ours = function(images, edge_filters())
    assert ours.shape == (20, 8, 28, 28) and ours.dtype == np.float32
    expected = np.stack(
        [[reference(image / 255.0, f.astype(np.float64), mode="constant") for f in edge_filters()] for image in images]
    )
    np.testing.assert_allclose(ours, expected, atol=1e-5)


@pytest.mark.parametrize("size", [1, 3, 5, 7])
def test_agrees_with_scipy_for_float64_and_odd_sizes(size):
    rng = np.random.default_rng(size)
    images = rng.normal(size=(3, 11, 9))
    filters = rng.normal(size=(2, size, size))
    ours = correlate(images, filters)
    assert ours.dtype == np.float64
    expected = np.stack([[ndimage.correlate(i, f, mode="constant") for f in filters] for i in images])
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-12)
    expected = np.stack([[ndimage.convolve(i, f, mode="constant") for f in filters] for i in images])
    np.testing.assert_allclose(convolve(images, filters), expected, rtol=1e-10, atol=1e-12)


def test_squeezed_shapes(mnist):
    image = mnist.train_images[0]
    assert correlate(image, TOP_EDGE).shape == (28, 28)
    assert correlate(image, edge_filters()).shape == (8, 28, 28)
    assert correlate(mnist.train_images[:3], TOP_EDGE).shape == (3, 28, 28)


def test_convolution_is_correlation_with_the_filter_turned(mnist):
    image = mnist.train_images[0]
    np.testing.assert_array_equal(convolve(image, TOP_EDGE), correlate(image, np.rot90(TOP_EDGE, 2)))
    assert not np.allclose(convolve(image, TOP_EDGE), correlate(image, TOP_EDGE))


def test_hand_computed_response():
    image = np.zeros((5, 5), dtype=np.float64)
    image[2:, :] = 1.0  # dark above, bright below: a top edge between rows 1 and 2
    response = correlate(image, TOP_EDGE.astype(np.float64))
    # Centred on row 2 the filter sees -1*0*3 + 1*1*3 + 0 = 3 away from the sides, 2 at the borders.
    np.testing.assert_array_equal(response[2], [2, 3, 3, 3, 2])
    np.testing.assert_array_equal(response[0], [0, 0, 0, 0, 0])


def test_max_pool():
    x = np.arange(16, dtype=float).reshape(4, 4)
    np.testing.assert_array_equal(max_pool(x, 2), [[5, 7], [13, 15]])
    responses = np.random.default_rng(0).normal(size=(2, 8, 28, 28))
    pooled = max_pool(responses, 7)
    assert pooled.shape == (2, 8, 4, 4)
    assert pooled[1, 3, 2, 1] == responses[1, 3, 14:21, 7:14].max()


def test_fingerprints_shape(mnist):
    prints = fingerprints(mnist.train_images[:5])
    assert prints.shape == (5, 8, 4, 4)
    # One image alone and five at once may reach conv2d's float32 sums in another order: last-bit differences.
    expected = max_pool(correlate(mnist.train_images[2], edge_filters()), 7)
    np.testing.assert_allclose(prints[2], expected, rtol=1e-6, atol=1e-6)


def test_classifier_on_eights_and_ones(mnist):
    train = np.isin(mnist.train_labels, [1, 8])
    test = np.isin(mnist.test_labels, [1, 8])
    model = FingerprintClassifier().fit(mnist.train_images[train], mnist.train_labels[train])
    assert model.labels_.tolist() == [1, 8]
    assert model.means_.shape == (2, 8, 4, 4)
    # The mean fingerprint is the mean of the fingerprints.
    eights = mnist.train_images[train][mnist.train_labels[train] == 8]
    np.testing.assert_allclose(model.means_[1], fingerprints(eights).mean(axis=0), rtol=1e-5)
    accuracy = model.score(mnist.test_images[test], mnist.test_labels[test])
    assert accuracy >= 0.98  # the original lesson: 96.1%


def test_tensors_on_any_device_give_the_same_numpy_results(mnist):
    """A lesson may hand over tensors on its device (COURSE_DEVICE=cuda in the gpu suite): same numbers, numpy out."""
    device = pick_device()
    images, labels = mnist.train_images[:300], mnist.train_labels[:300]
    on_device = torch.from_numpy(images).to(device)
    filters = torch.from_numpy(edge_filters()).to(device)
    responses = correlate(on_device, filters)
    assert isinstance(responses, np.ndarray)
    np.testing.assert_array_equal(responses, correlate(images, edge_filters()))
    np.testing.assert_array_equal(convolve(on_device[0], filters[0]), convolve(images[0], TOP_EDGE))
    np.testing.assert_array_equal(max_pool(torch.from_numpy(responses).to(device), 7), max_pool(responses, 7))
    model = FingerprintClassifier(filters=filters).fit(on_device, torch.from_numpy(labels).to(device))
    reference = FingerprintClassifier().fit(images, labels)
    np.testing.assert_array_equal(model.means_, reference.means_)
    assert model.score(on_device, torch.from_numpy(labels).to(device)) == reference.score(images, labels)


def test_works_whatever_the_default_device():
    """The tensors the helpers make are CPU tensors even when PyTorch's default device is elsewhere."""
    image = np.random.default_rng(0).random((28, 28))
    expected = correlate(image, edge_filters())
    with torch.device("meta"):  # a device that holds no numbers: anything made there would fail .numpy()
        np.testing.assert_array_equal(correlate(image, edge_filters()), expected)
        assert fingerprints(image).shape == (8, 4, 4)


def test_convolutions_run_on_one_thread_and_the_thread_count_comes_back(monkeypatch):
    """Small conv2d calls on several threads spin on a busy machine; the caller's setting is kept."""
    threads_seen, conv2d = [], F.conv2d

    def conv2d_spy(*args, **kwargs):
        threads_seen.append(torch.get_num_threads())
        return conv2d(*args, **kwargs)

    monkeypatch.setattr(F, "conv2d", conv2d_spy)
    before = torch.get_num_threads()
    images = np.random.default_rng(0).random((300, 28, 28))
    correlate(images, edge_filters())
    fingerprints(images)
    assert len(threads_seen) == 6 and set(threads_seen) == {1}  # 3 chunks of 128 images, twice
    assert torch.get_num_threads() == before


def test_prediction_is_the_nearest_mean():
    model = FingerprintClassifier(filters=np.ones((1, 1, 1)), pool=2)
    images = np.zeros((2, 4, 4))
    images[1] = 1.0
    model.fit(images, np.array([3, 5]))
    assert model.predict(np.full((1, 4, 4), 0.2)).tolist() == [3]
    assert model.predict(np.full((1, 4, 4), 0.7)).tolist() == [5]
    np.testing.assert_allclose(model.distances(np.full((1, 4, 4), 0.5)), [[1.0, 1.0]])


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: correlate(np.zeros(28), TOP_EDGE), ValueError, r"shape \(H, W\) or \(N, H, W\); got shape \(28,\)"),
        (lambda: correlate(np.zeros((1, 1, 28, 28)), TOP_EDGE), ValueError, r"got shape \(1, 1, 28, 28\)"),
        (lambda: correlate(np.zeros((28, 28)), np.zeros((3, 5))), ValueError, r"square with an odd size.*got 3x5"),
        (lambda: correlate(np.zeros((28, 28)), np.zeros((4, 4))), ValueError, r"odd size.*got 4x4"),
        (lambda: correlate(np.zeros((28, 28)), np.zeros(3)), ValueError, r"\(k, k\) or \(K, k, k\); got shape \(3,\)"),
        (lambda: correlate(np.array([["a"]]), TOP_EDGE), TypeError, r"uint8 0-255 or floats\); got dtype <U1"),
        (lambda: max_pool(np.zeros((28, 28)), 5), ValueError, r"size 5 must divide.*got 28x28"),
        (lambda: max_pool(np.zeros(28), 2), ValueError, r"at least 2 axes.*got shape \(28,\)"),
        (lambda: fingerprints(np.zeros((2, 28, 28)), pool=6), ValueError, r"pool size 6 must divide.*28x28"),
        (lambda: FingerprintClassifier().fit(np.zeros((0, 28, 28)), np.zeros(0)), ValueError, "got 0 images"),
        (
            lambda: FingerprintClassifier().fit(np.zeros((3, 28, 28)), np.zeros(2)),
            ValueError,
            r"one label per image: expected labels of shape \(3,\), got \(2,\)",
        ),
        (lambda: FingerprintClassifier().fit(np.zeros((28, 28)), np.zeros(1)), ValueError, r"\(N, H, W\); got"),
        (lambda: FingerprintClassifier().predict(np.zeros((1, 28, 28))), RuntimeError, "not fitted yet"),
        (lambda: FingerprintClassifier(filters=np.zeros((2, 2))), ValueError, "odd size"),
    ],
)
def test_bad_input_says_what_was_expected(call, error, message):
    with pytest.raises(error, match=message):
        call()
