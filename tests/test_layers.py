"""helpers.layers: every numpy layer equals its PyTorch counterpart (float64, relative error <= 1e-6)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import layers

TOL = 1e-6


def rel(ours, theirs) -> float:
    """Relative error of our numpy result against PyTorch's float64 result."""
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    assert np.shape(ours) == theirs.shape, (np.shape(ours), theirs.shape)
    return layers.relative_error(ours, theirs)


def t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


CONV_CASES = [
    # (N, C_in, H, W), (C_out, kH, kW), stride, padding
    ((2, 3, 9, 7), (4, 3, 3), 1, 0),
    ((3, 2, 10, 13), (5, 3, 3), 2, 1),
    ((1, 1, 28, 28), (8, 5, 5), 1, 2),
    ((2, 4, 11, 8), (3, 2, 4), (2, 3), (1, 2)),
    ((1, 3, 6, 6), (2, 6, 6), 1, 0),  # kernel as large as the image: one output pixel
    ((2, 2, 7, 9), (3, 1, 1), 3, 0),  # 1x1 kernels with stride
]


@pytest.mark.parametrize(("shape", "kernel", "stride", "padding"), CONV_CASES)
@pytest.mark.parametrize("with_bias", [True, False])
def test_conv2d_equals_torch(shape, kernel, stride, padding, with_bias):
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape)
    weight = rng.normal(size=(kernel[0], shape[1], *kernel[1:]))
    bias = rng.normal(size=kernel[0]) if with_bias else None
    ours = layers.conv2d(x, weight, bias, stride=stride, padding=padding)
    theirs = F.conv2d(t(x), t(weight), None if bias is None else t(bias), stride=stride, padding=padding)
    assert rel(ours, theirs) <= TOL


def test_conv2d_single_image_and_dtype():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 8, 8)).astype(np.float32)
    weight = rng.normal(size=(2, 3, 3, 3)).astype(np.float32)
    ours = layers.conv2d(x, weight, padding=1)
    assert ours.shape == (2, 8, 8)
    assert ours.dtype == np.float32
    theirs = F.conv2d(t(x)[None], t(weight), padding=1)[0]
    assert rel(ours, theirs) <= 1e-5  # float32 arithmetic on our side


def test_conv2d_by_hand():
    # One 2-channel 3x3 input, one 2x2 filter of ones on channel 0, of -1 on channel 1.
    x = np.stack([np.arange(9).reshape(3, 3), np.ones((3, 3))])
    weight = np.stack([np.ones((2, 2)), -np.ones((2, 2))])[None]
    out = layers.conv2d(x, weight, bias=np.array([0.5]))
    # Top-left window of channel 0: 0+1+3+4 = 8; channel 1 gives -4; bias 0.5.
    np.testing.assert_allclose(out, [[[4.5, 8.5], [16.5, 20.5]]])


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "kwargs", "match"),
    [
        ((2, 3, 8, 8), (4, 2, 3, 3), {}, "expects 2 input channels"),
        ((8, 8), (4, 1, 3, 3), {}, r"\(N, C, H, W\) or \(C, H, W\)"),
        ((1, 1, 8, 8), (1, 3, 3), {}, r"weight must have shape \(C_out, C_in, kH, kW\)"),
        ((1, 1, 2, 2), (1, 1, 3, 3), {}, "larger than the padded input"),
        ((1, 1, 8, 8), (1, 1, 3, 3), {"stride": 0}, "stride must be an integer >= 1"),
        ((1, 1, 8, 8), (1, 1, 3, 3), {"padding": -1}, "padding must be an integer >= 0"),
        ((1, 1, 8, 8), (2, 1, 3, 3), {"bias": np.zeros(3)}, r"bias must have shape \(2,\)"),
    ],
)
def test_conv2d_bad_shapes(x_shape, w_shape, kwargs, match):
    with pytest.raises(ValueError, match=match):
        layers.conv2d(np.zeros(x_shape), np.zeros(w_shape), **kwargs)


def test_conv2d_rejects_non_numbers():
    with pytest.raises(TypeError, match="real numbers"):
        layers.conv2d(np.array([["a"]]), np.zeros((1, 1, 1, 1)))


@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (4,), (1, 1, 1, 1)])
def test_relu_and_sigmoid_equal_torch(shape):
    rng = np.random.default_rng(2)
    x = rng.normal(scale=5, size=shape)
    assert rel(layers.relu(x), F.relu(t(x))) <= TOL
    assert rel(layers.sigmoid(x), torch.sigmoid(t(x))) <= TOL


def test_relu_keeps_positives_zeroes_negatives():
    np.testing.assert_array_equal(layers.relu(np.array([-2.0, -0.5, 0.0, 0.5, 3.0])), [0, 0, 0, 0.5, 3])


def test_sigmoid_is_stable_for_large_inputs():
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # no overflow warning
        out = layers.sigmoid(x)
    assert np.all(np.isfinite(out))
    assert rel(out, torch.sigmoid(t(x))) <= TOL
    assert out[2] == 0.5


POOL_CASES = [
    ((2, 3, 8, 8), 2, None),
    ((1, 2, 9, 7), 2, None),  # odd sizes: the last row/column is dropped, as in PyTorch
    ((3, 1, 10, 12), 3, 2),  # overlapping windows
    ((2, 2, 7, 11), (2, 3), (1, 2)),  # non-square window and stride
    ((4, 6, 6), 2, 1),  # one image without a batch axis
]


@pytest.mark.parametrize(("shape", "size", "stride"), POOL_CASES)
def test_pooling_equals_torch(shape, size, stride):
    rng = np.random.default_rng(3)
    x = rng.normal(size=shape)
    assert rel(layers.max_pool2d(x, size, stride), F.max_pool2d(t(x), size, stride)) <= TOL
    assert rel(layers.avg_pool2d(x, size, stride), F.avg_pool2d(t(x), size, stride)) <= TOL


def test_pooling_by_hand():
    x = np.array([[1, 2, 0, 0], [0, 1, 3, 1], [2, 0, 5, 2], [0, 2, 1, 4]], dtype=float)[None, None]
    np.testing.assert_array_equal(layers.max_pool2d(x), [[[[2, 3], [2, 5]]]])
    np.testing.assert_array_equal(layers.avg_pool2d(x), [[[[1, 1], [1, 3]]]])


@pytest.mark.parametrize("pool", [layers.max_pool2d, layers.avg_pool2d])
def test_pooling_bad_input(pool):
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) or \(C, H, W\)"):
        pool(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="larger than the input"):
        pool(np.zeros((1, 1, 3, 3)), 4)
    with pytest.raises(ValueError, match="size must be an integer >= 1"):
        pool(np.zeros((1, 1, 4, 4)), 0)


FLATTEN_CASES = [((2, 3, 4, 5), 1), ((2, 2, 2), 0), ((3, 4, 5), -2), ((5,), 0)]


@pytest.mark.parametrize(("shape", "start_dim"), FLATTEN_CASES)
def test_flatten_equals_torch(shape, start_dim):
    x = np.random.default_rng(4).normal(size=shape)
    assert rel(layers.flatten(x, start_dim), torch.flatten(t(x), start_dim)) <= TOL


def test_flatten_order_and_errors():
    x = np.arange(8).reshape(1, 2, 2, 2)
    np.testing.assert_array_equal(layers.flatten(x), [[0, 1, 2, 3, 4, 5, 6, 7]])
    with pytest.raises(ValueError, match="start_dim must be an axis"):
        layers.flatten(x, 4)


@pytest.mark.parametrize("x_shape", [(5, 7), (7,), (2, 3, 7)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_equals_torch(x_shape, with_bias):
    rng = np.random.default_rng(5)
    x, weight = rng.normal(size=x_shape), rng.normal(size=(4, 7))
    bias = rng.normal(size=4) if with_bias else None
    theirs = F.linear(t(x), t(weight), None if bias is None else t(bias))
    assert rel(layers.linear(x, weight, bias), theirs) <= TOL


def test_linear_bad_shapes():
    with pytest.raises(ValueError, match="expects inputs with 7 features"):
        layers.linear(np.zeros((2, 6)), np.zeros((4, 7)))
    with pytest.raises(ValueError, match=r"weight must have shape \(out_features, in_features\)"):
        layers.linear(np.zeros((2, 7)), np.zeros(7))
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\)"):
        layers.linear(np.zeros((2, 7)), np.zeros((4, 7)), np.zeros(7))


@pytest.mark.parametrize("scale", [1.0, 1000.0])
def test_softmax_equals_torch_and_is_stable(scale):
    rng = np.random.default_rng(6)
    z = rng.normal(scale=scale, size=(4, 10))
    z[0, 3] = 1e4 * scale  # huge logits: exp would overflow without the shift
    with np.errstate(over="raise"):
        ours = layers.softmax(z)
        ours_log = layers.log_softmax(z)
    assert np.all(np.isfinite(ours))
    assert rel(ours, F.softmax(t(z), dim=-1)) <= TOL
    assert rel(ours_log, F.log_softmax(t(z), dim=-1)) <= TOL
    np.testing.assert_allclose(ours.sum(axis=-1), 1.0)
    assert rel(layers.softmax(z, axis=0), F.softmax(t(z), dim=0)) <= TOL


@pytest.mark.parametrize("scale", [1.0, 30.0, 1000.0])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_equals_torch_and_is_stable(scale, reduction):
    rng = np.random.default_rng(7)
    logits = rng.normal(scale=scale, size=(6, 10))
    labels = rng.integers(0, 10, size=6)
    with np.errstate(over="raise"):
        ours = layers.cross_entropy(logits, labels, reduction=reduction)
    theirs = F.cross_entropy(t(logits), torch.from_numpy(labels), reduction=reduction)
    assert np.all(np.isfinite(ours))
    assert rel(ours, theirs) <= TOL


def test_cross_entropy_single_example_and_by_hand():
    # Equal logits for 4 classes: probability 1/4 each, loss log(4).
    assert layers.cross_entropy(np.zeros(4), 2) == pytest.approx(np.log(4))
    logits = np.array([2.0, -1.0, 0.5])
    theirs = F.cross_entropy(t(logits), torch.tensor(0))
    assert rel(layers.cross_entropy(logits, 0), theirs) <= TOL


def test_cross_entropy_bad_input():
    with pytest.raises(ValueError, match=r"one label per row of logits, shape \(3,\)"):
        layers.cross_entropy(np.zeros((3, 10)), np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match=r"labels must lie in 0..9; got 0..10"):
        layers.cross_entropy(np.zeros((2, 10)), np.array([0, 10]))
    with pytest.raises(TypeError, match="labels must be integers"):
        layers.cross_entropy(np.zeros((2, 10)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"logits of shape \(N, K\) or \(K,\)"):
        layers.cross_entropy(np.zeros((2, 3, 4)), np.zeros((2, 3), dtype=int))
    with pytest.raises(ValueError, match="reduction must be"):
        layers.cross_entropy(np.zeros((2, 3)), np.zeros(2, dtype=int), reduction="avg")


def test_relative_error():
    assert layers.relative_error(np.ones(3), np.ones(3)) == 0.0
    assert layers.relative_error([1.0], [3.0]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="same shape"):
        layers.relative_error(np.ones(3), np.ones(4))


def test_a_whole_forward_pass_equals_torch():
    """conv -> relu -> pool -> conv -> relu -> pool -> flatten -> linear -> softmax, as a network does."""
    rng = np.random.default_rng(8)
    x = rng.normal(size=(3, 1, 12, 12))
    w1, b1 = rng.normal(size=(4, 1, 3, 3)), rng.normal(size=4)
    w2, b2 = rng.normal(size=(6, 4, 3, 3)), rng.normal(size=6)
    w3, b3 = rng.normal(size=(10, 6 * 3 * 3)), rng.normal(size=10)
    h = layers.max_pool2d(layers.relu(layers.conv2d(x, w1, b1, padding=1)))
    h = layers.avg_pool2d(layers.relu(layers.conv2d(h, w2, b2, padding=1)))
    ours = layers.softmax(layers.linear(layers.flatten(h), w3, b3))
    g = F.max_pool2d(F.relu(F.conv2d(t(x), t(w1), t(b1), padding=1)), 2)
    g = F.avg_pool2d(F.relu(F.conv2d(g, t(w2), t(b2), padding=1)), 2)
    theirs = F.softmax(F.linear(torch.flatten(g, 1), t(w3), t(b3)), dim=-1)
    assert rel(ours, theirs) <= TOL
