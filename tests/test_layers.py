"""helpers.layers: every numpy layer equals its PyTorch counterpart (float64, relative error <= 1e-6).

Forward passes against ``torch.nn.functional``; backward passes against autograd (on the course's
device) and against a numerical gradient; and a small CNN trained with the numpy backward passes
alone against the same CNN trained by PyTorch.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import layers
from helpers.core import pick_device
from helpers.experiments import numerical_gradient

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


# ---------------------------------------------------------------------------------------------
# Backward passes: each against autograd (float64, on the course's device) and against a
# numerical gradient, to a relative error of 1e-6.
# ---------------------------------------------------------------------------------------------

DEVICE = pick_device() if pick_device().type != "mps" else torch.device("cpu")  # MPS has no float64


def on_device(a: np.ndarray, requires_grad: bool = False) -> torch.Tensor:
    return torch.tensor(np.asarray(a, dtype=np.float64), device=DEVICE, requires_grad=requires_grad)


def autograd(forward, arrays, dout) -> list[np.ndarray]:
    """The gradients autograd gives for ``sum(forward(*arrays) * dout)``, as numpy arrays."""
    tensors = [on_device(a, requires_grad=True) for a in arrays]
    forward(*tensors).backward(on_device(dout))
    return [tensor.grad.cpu().numpy() for tensor in tensors]


def assert_close(ours, theirs) -> None:
    assert len(ours) == len(theirs)
    for mine, reference in zip(ours, theirs, strict=True):
        assert mine.shape == reference.shape
        assert layers.relative_error(mine, reference) <= TOL


@pytest.mark.parametrize(("shape", "kernel", "stride", "padding"), CONV_CASES)
def test_conv2d_backward_equals_autograd_and_numerical_gradient(shape, kernel, stride, padding):
    rng = np.random.default_rng(10)
    x = rng.normal(size=shape)
    weight, bias = rng.normal(size=(kernel[0], shape[1], *kernel[1:])), rng.normal(size=kernel[0])
    dout = rng.normal(size=layers.conv2d(x, weight, bias, stride=stride, padding=padding).shape)
    ours = layers.conv2d_backward(dout, x, weight, stride, padding)
    assert [g.shape for g in ours] == [x.shape, weight.shape, bias.shape]
    assert_close(
        ours, autograd(lambda a, w, b: F.conv2d(a, w, b, stride=stride, padding=padding), (x, weight, bias), dout)
    )

    def conv(a, w, b):
        return layers.conv2d(a, w, b, stride=stride, padding=padding)

    # Linear in each argument: any nudge gives the exact slope, and a larger one rounds less.
    numerical = [
        numerical_gradient(lambda a: conv(a, weight, bias), x, dout, eps=1e-3),
        numerical_gradient(lambda w: conv(x, w, bias), weight, dout, eps=1e-3),
        numerical_gradient(lambda b: conv(x, weight, b), bias, dout, eps=1e-3),
    ]
    assert_close(ours, numerical)


def test_conv2d_backward_by_hand_and_single_image():
    # One 1x3x3 input, one 2x2 filter of ones, dout all ones: each input pixel's gradient counts
    # the windows it belongs to; the filter's gradient adds up each window position's pixels.
    x = np.arange(9.0).reshape(1, 3, 3)
    dx, dweight, dbias = layers.conv2d_backward(np.ones((1, 2, 2)), x, np.ones((1, 1, 2, 2)))
    np.testing.assert_array_equal(dx, [[[1, 2, 1], [2, 4, 2], [1, 2, 1]]])
    np.testing.assert_array_equal(dweight, [[[[8, 12], [20, 24]]]])  # 0+1+3+4, 1+2+4+5, ...
    np.testing.assert_array_equal(dbias, [4])


def test_conv2d_backward_keeps_float32():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(2, 3, 6, 6)).astype(np.float32)
    weight = rng.normal(size=(4, 3, 3, 3)).astype(np.float32)
    dout = rng.normal(size=(2, 4, 6, 6)).astype(np.float32)
    assert all(g.dtype == np.float32 for g in layers.conv2d_backward(dout, x, weight, padding=1))


@pytest.mark.parametrize(
    ("dout_shape", "x_shape", "w_shape", "kwargs", "match"),
    [
        ((2, 4, 8, 8), (2, 3, 8, 8), (4, 3, 3, 3), {}, r"forward output, \(2, 4, 6, 6\).*got shape \(2, 4, 8, 8\)"),
        ((2, 4, 8, 8), (2, 3, 8, 8), (4, 3, 3, 3), {"stride": 2, "padding": 1}, r"\(2, 4, 4, 4\)"),
        ((4, 6, 6), (2, 3, 8, 8), (4, 3, 3, 3), {}, r"forward output, \(2, 4, 6, 6\)"),
        ((2, 4, 6, 6), (2, 2, 8, 8), (4, 3, 3, 3), {}, "expects 3 input channels"),
        ((2, 4, 6, 6), (8, 8), (4, 1, 3, 3), {}, r"\(N, C, H, W\) or \(C, H, W\)"),
        ((2, 4, 6, 6), (2, 3, 8, 8), (4, 3, 3), {}, r"weight must have shape \(C_out, C_in, kH, kW\)"),
        ((1, 1, 1, 1), (1, 1, 2, 2), (1, 1, 3, 3), {}, "larger than the padded input"),
        ((2, 4, 6, 6), (2, 3, 8, 8), (4, 3, 3, 3), {"stride": 0}, "stride must be an integer >= 1"),
    ],
)
def test_conv2d_backward_bad_shapes(dout_shape, x_shape, w_shape, kwargs, match):
    with pytest.raises(ValueError, match=match):
        layers.conv2d_backward(np.zeros(dout_shape), np.zeros(x_shape), np.zeros(w_shape), **kwargs)


@pytest.mark.parametrize(("shape", "size", "stride"), [*POOL_CASES, ((2, 2, 9, 9), 3, 1), ((1, 1, 8, 8), 2, 3)])
def test_max_pool2d_backward_equals_autograd_and_numerical_gradient(shape, size, stride):
    """Including overlapping windows (stride < size) and gaps between them (stride > size)."""
    rng = np.random.default_rng(12)
    x = rng.normal(size=shape)
    dout = rng.normal(size=layers.max_pool2d(x, size, stride).shape)
    ours = layers.max_pool2d_backward(dout, x, size, stride)
    assert ours.shape == x.shape
    kernel_stride = size if stride is None else stride
    assert_close([ours], autograd(lambda a: F.max_pool2d(a, size, kernel_stride), (x,), dout))
    assert_close([ours], [numerical_gradient(lambda a: layers.max_pool2d(a, size, stride), x, dout)])


def test_max_pool2d_backward_by_hand():
    x = np.array([[1, 2, 0, 0], [0, 1, 3, 1], [2, 0, 5, 2], [0, 2, 1, 4]], dtype=float)[None, None]
    dx = layers.max_pool2d_backward(np.array([[[[10.0, 20.0], [30.0, 40.0]]]]), x)
    # Each window's gradient lands on its maximum; the bottom-left window's 2s tie: the first wins.
    np.testing.assert_array_equal(dx[0, 0], [[0, 10, 0, 0], [0, 0, 20, 0], [30, 0, 40, 0], [0, 0, 0, 0]])
    # Overlapping 3x3 windows with stride 1: the 5 is the maximum of all four, so it gets all four.
    dx = layers.max_pool2d_backward(np.ones((1, 1, 2, 2)), x, size=3, stride=1)
    assert dx[0, 0, 2, 2] == 4 and dx.sum() == 4


@pytest.mark.parametrize(
    ("dout_shape", "x_shape", "kwargs", "match"),
    [
        ((1, 2, 4, 4), (1, 2, 8, 8), {"size": 3}, r"forward output, \(1, 2, 2, 2\).*got shape \(1, 2, 4, 4\)"),
        ((1, 2, 4, 4), (8, 8), {}, r"\(N, C, H, W\) or \(C, H, W\)"),
        ((1, 1, 1, 1), (1, 1, 2, 2), {"size": 3}, "larger than the input"),
    ],
)
def test_max_pool2d_backward_bad_shapes(dout_shape, x_shape, kwargs, match):
    with pytest.raises(ValueError, match=match):
        layers.max_pool2d_backward(np.zeros(dout_shape), np.zeros(x_shape), **kwargs)


@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (6,), (1, 1, 1, 1)])
def test_relu_backward_equals_autograd_and_numerical_gradient(shape):
    rng = np.random.default_rng(13)
    x, dout = rng.normal(size=shape), rng.normal(size=shape)
    ours = layers.relu_backward(dout, x)
    assert_close([ours], autograd(F.relu, (x,), dout))
    assert_close([ours], [numerical_gradient(layers.relu, x, dout)])
    np.testing.assert_array_equal(layers.relu_backward(np.ones(3), np.array([-1.0, 0.0, 2.0])), [0, 0, 1])
    with pytest.raises(ValueError, match=r"dout must have the shape of the forward output, \(3,\)"):
        layers.relu_backward(np.ones(4), np.zeros(3))


@pytest.mark.parametrize("x_shape", [(5, 7), (7,), (2, 3, 7)])
def test_linear_backward_equals_autograd_and_numerical_gradient(x_shape):
    rng = np.random.default_rng(14)
    x, weight, bias = rng.normal(size=x_shape), rng.normal(size=(4, 7)), rng.normal(size=4)
    dout = rng.normal(size=(*x_shape[:-1], 4))
    ours = layers.linear_backward(dout, x, weight)
    assert [g.shape for g in ours] == [x.shape, weight.shape, bias.shape]
    assert_close(ours, autograd(F.linear, (x, weight, bias), dout))
    numerical = [
        numerical_gradient(lambda a: layers.linear(a, weight, bias), x, dout, eps=1e-3),
        numerical_gradient(lambda w: layers.linear(x, w, bias), weight, dout, eps=1e-3),
        numerical_gradient(lambda b: layers.linear(x, weight, b), bias, dout, eps=1e-3),
    ]
    assert_close(ours, numerical)


def test_linear_backward_bad_shapes():
    with pytest.raises(ValueError, match=r"forward output, \(2, 4\).*got shape \(2, 3\)"):
        layers.linear_backward(np.zeros((2, 3)), np.zeros((2, 7)), np.zeros((4, 7)))
    with pytest.raises(ValueError, match="expects inputs with 7 features"):
        layers.linear_backward(np.zeros((2, 4)), np.zeros((2, 6)), np.zeros((4, 7)))
    with pytest.raises(ValueError, match=r"weight must have shape \(out_features, in_features\)"):
        layers.linear_backward(np.zeros((2, 4)), np.zeros((2, 7)), np.zeros(7))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("batch", [True, False])
def test_softmax_cross_entropy_backward_equals_autograd_and_numerical_gradient(reduction, batch):
    rng = np.random.default_rng(15)
    logits = rng.normal(size=(6, 10) if batch else 10)
    labels = rng.integers(0, 10, size=6) if batch else np.int64(3)
    ours = layers.softmax_cross_entropy_backward(logits, labels, reduction)
    logits_t = on_device(logits, requires_grad=True)
    F.cross_entropy(logits_t, torch.as_tensor(labels, device=DEVICE), reduction=reduction).backward()
    assert_close([ours], [logits_t.grad.cpu().numpy()])
    numerical = numerical_gradient(lambda z: layers.cross_entropy(z, labels, reduction), logits, eps=1e-5)
    assert_close([ours], [numerical])


def test_softmax_cross_entropy_backward_by_hand_and_bad_input():
    # Equal logits for 4 classes, true class 2: probabilities 1/4, minus 1 at the true class.
    np.testing.assert_allclose(layers.softmax_cross_entropy_backward(np.zeros(4), 2), [0.25, 0.25, -0.75, 0.25])
    # A batch of two: each row divided by 2 for the mean.
    grads = layers.softmax_cross_entropy_backward(np.zeros((2, 2)), np.array([0, 1]))
    np.testing.assert_allclose(grads, [[-0.25, 0.25], [0.25, -0.25]])
    with pytest.raises(ValueError, match=r"one label per row of logits, shape \(3,\)"):
        layers.softmax_cross_entropy_backward(np.zeros((3, 10)), np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match="reduction must be 'mean' or 'sum'"):
        layers.softmax_cross_entropy_backward(np.zeros((2, 3)), np.zeros(2, dtype=int), reduction="none")


# ---------------------------------------------------------------------------------------------
# A small CNN trained with nothing but these numpy passes equals the same CNN trained by PyTorch.
# ---------------------------------------------------------------------------------------------


def numpy_forward_backward(p: dict, x: np.ndarray, y: np.ndarray) -> tuple[float, dict]:
    """Lesson 04's small CNN: conv -> ReLU -> pool -> conv (stride 2) -> ReLU -> pool -> FC."""
    conv1 = layers.conv2d(x, p["conv1.weight"], p["conv1.bias"], padding=1)
    relu1 = layers.relu(conv1)
    pool1 = layers.max_pool2d(relu1, 3, 2)  # overlapping windows
    conv2 = layers.conv2d(pool1, p["conv2.weight"], p["conv2.bias"], stride=2, padding=1)
    relu2 = layers.relu(conv2)
    pool2 = layers.max_pool2d(relu2)
    flat = layers.flatten(pool2)
    logits = layers.linear(flat, p["fc.weight"], p["fc.bias"])
    g = {}
    dflat, g["fc.weight"], g["fc.bias"] = layers.linear_backward(
        layers.softmax_cross_entropy_backward(logits, y), flat, p["fc.weight"]
    )
    dconv2 = layers.relu_backward(layers.max_pool2d_backward(dflat.reshape(pool2.shape), relu2), conv2)
    dpool1, g["conv2.weight"], g["conv2.bias"] = layers.conv2d_backward(dconv2, pool1, p["conv2.weight"], 2, 1)
    dconv1 = layers.relu_backward(layers.max_pool2d_backward(dpool1, relu1, 3, 2), conv1)
    _, g["conv1.weight"], g["conv1.bias"] = layers.conv2d_backward(dconv1, x, p["conv1.weight"], 1, 1)
    return layers.cross_entropy(logits, y), g


def test_numpy_training_equals_pytorch_training():
    from helpers.core import to_input
    from helpers.data import load_mnist

    mnist = load_mnist()
    images, labels = to_input(mnist.train_images[:1280]).numpy().astype(np.float64), mnist.train_labels[:1280]
    torch.manual_seed(0)
    net = torch.nn.Sequential()
    net.add_module("conv1", torch.nn.Conv2d(1, 4, 3, padding=1))
    net.add_module("relu1", torch.nn.ReLU())
    net.add_module("pool1", torch.nn.MaxPool2d(3, 2))  # 28 -> 13
    net.add_module("conv2", torch.nn.Conv2d(4, 6, 3, stride=2, padding=1))  # 13 -> 7
    net.add_module("relu2", torch.nn.ReLU())
    net.add_module("pool2", torch.nn.MaxPool2d(2))  # 7 -> 3
    net.add_module("flatten", torch.nn.Flatten())
    net.add_module("fc", torch.nn.Linear(6 * 3 * 3, 10))
    net = net.to(DEVICE, torch.float64)
    params = {name: p.detach().cpu().numpy().copy() for name, p in net.named_parameters()}
    batches = np.random.default_rng(0).permutation(len(images)).reshape(40, 32)  # 40 steps of 32
    lr = 0.2

    numpy_losses = []
    for index in batches:
        loss, grads = numpy_forward_backward(params, images[index], labels[index])
        for name in params:
            params[name] -= lr * grads[name]
        numpy_losses.append(loss)

    x, y = on_device(images), torch.as_tensor(labels, device=DEVICE)
    torch_losses = []
    for index in batches:
        index = torch.as_tensor(index, device=DEVICE)
        loss = F.cross_entropy(net(x[index]), y[index])
        net.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in net.parameters():
                p -= lr * p.grad
        torch_losses.append(loss.item())

    numpy_losses, torch_losses = np.array(numpy_losses), np.array(torch_losses)
    assert layers.relative_error(numpy_losses, torch_losses) <= 1e-10  # float64 rounding only
    for name, p in net.named_parameters():
        assert layers.relative_error(params[name], p.detach().cpu().numpy()) <= 1e-8
    assert numpy_losses[-5:].mean() < numpy_losses[:5].mean() - 0.2  # it learned
