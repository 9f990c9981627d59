"""helpers.experiments: the lesson-04 CNN, gradient norms, training steps and the numerical gradient."""

import numpy as np
import pytest
import torch

from helpers import experiments


def batch(n=16, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 28, 28, generator=generator), torch.randint(0, 10, (n,), generator=generator)


@pytest.mark.parametrize("activation", sorted(experiments.ACTIVATIONS))
def test_small_cnn_shapes_names_and_activation(activation):
    model = experiments.small_cnn(activation)
    images, _ = batch()
    assert model(images).shape == (16, 10)
    names = [name for name, _ in model.named_children()]
    assert names[:2] == ["conv1", "act1"] and names[-2:] == ["act5", "fc2"]
    assert isinstance(model.act3, experiments.ACTIVATIONS[activation])


def test_small_cnn_parameter_count():
    model = experiments.small_cnn("relu", channels=(8, 16), hidden=32)
    by_hand = (9 + 1) * 8 + (8 * 9 + 1) * 8 + (8 * 9 + 1) * 16 + (16 * 9 + 1) * 16 + (16 * 49 + 1) * 32 + 33 * 10
    assert sum(p.numel() for p in model.parameters()) == by_hand


def test_same_seed_same_weights_for_every_activation():
    torch.manual_seed(3)
    relu = experiments.small_cnn("relu")
    torch.manual_seed(3)
    sigmoid = experiments.small_cnn("sigmoid")
    for a, b in zip(relu.parameters(), sigmoid.parameters(), strict=True):
        assert torch.equal(a, b)


def test_small_cnn_bad_arguments():
    with pytest.raises(ValueError, match="activation must be one of"):
        experiments.small_cnn("softplus")
    with pytest.raises(ValueError, match="channels must be two positive integers"):
        experiments.small_cnn("relu", channels=(8,))


def test_gradient_norms_match_autograd_and_leave_no_gradients():
    torch.manual_seed(0)
    model = experiments.small_cnn("sigmoid")
    images, labels = batch()
    norms = experiments.gradient_norms(model, images, labels)
    assert list(norms) == ["conv1", "conv2", "conv3", "conv4", "fc1", "fc2"]
    assert all(p.grad is None for p in model.parameters())
    torch.nn.functional.cross_entropy(model(images), labels).backward()
    assert norms["conv1"] == pytest.approx(float(model.conv1.weight.grad.norm()))
    # The point of the lesson: with sigmoids the first layer's gradient is far smaller than the last's.
    assert norms["conv1"] < norms["fc2"] / 100


def test_gradient_norms_bad_input():
    model = experiments.small_cnn()
    with pytest.raises(TypeError, match="float tensor"):
        experiments.gradient_norms(model, np.zeros((2, 1, 28, 28)), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"one label per image, shape \(2,\)"):
        experiments.gradient_norms(model, torch.zeros(2, 1, 28, 28), torch.zeros(3, dtype=torch.long))


def test_train_steps_learns_and_is_reproducible():
    images, labels = batch(64)
    losses = []
    for _ in range(2):
        torch.manual_seed(0)
        model = experiments.small_cnn("relu")
        losses.append(experiments.train_steps(model, images, labels, steps=40, batch_size=16, momentum=0.9, seed=1))
    assert losses[0] == losses[1]
    assert len(losses[0]) == 40
    # Random labels on 64 images: a ReLU CNN memorises some of them, so the loss falls.
    assert np.mean(losses[0][-5:]) < np.mean(losses[0][:5])
    with pytest.raises(ValueError, match="steps and batch_size must be positive"):
        experiments.train_steps(model, images, labels, steps=0)


def test_train_steps_is_plain_sgd_by_default():
    """One step with the defaults is lesson 02's update: parameter -= lr * gradient."""
    images, labels = batch(8)
    torch.manual_seed(0)
    model = experiments.small_cnn("relu")
    before = [p.detach().clone() for p in model.parameters()]
    index = torch.randint(len(images), (1, 4), generator=torch.Generator().manual_seed(5))[0]
    torch.nn.functional.cross_entropy(model(images[index]), labels[index]).backward()
    expected = [b - 0.05 * p.grad for b, p in zip(before, model.parameters(), strict=True)]
    model.zero_grad()
    experiments.train_steps(model, images, labels, steps=1, batch_size=4, lr=0.05, seed=5)
    for after, wanted in zip(model.parameters(), expected, strict=True):
        torch.testing.assert_close(after.detach(), wanted)


def test_numerical_gradient_matches_calculus():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    grad = experiments.numerical_gradient(lambda a: float(np.sum(a**3)), x)
    np.testing.assert_allclose(grad, 3 * x**2, rtol=1e-6)
    assert x[0, 0] == 1.0  # not modified


def test_numerical_gradient_of_an_array_output_weighted_by_dout():
    # f(x) = x**2 elementwise; the gradient of sum(f(x) * dout) is 2 * x * dout.
    x, dout = np.array([1.0, -2.0, 0.5]), np.array([3.0, 1.0, -2.0])
    grad = experiments.numerical_gradient(lambda a: a**2, x, dout)
    np.testing.assert_allclose(grad, 2 * x * dout, rtol=1e-7)
    # Outputs the nudged entry does not touch cancel exactly: a huge untouched output adds no error.
    big = np.array([1.0, 1e12])
    grad = experiments.numerical_gradient(lambda a: a * np.array([3.0, 1.0]), big, np.array([1.0, 0.0]))
    np.testing.assert_allclose(grad, [3.0, 0.0], rtol=1e-9)


def test_numerical_gradient_bad_output():
    with pytest.raises(ValueError, match=r"returned an array of shape \(2,\); return one number, or pass dout"):
        experiments.numerical_gradient(lambda a: a, np.zeros(2))
    with pytest.raises(ValueError, match=r"f returned shape \(2,\) but dout has shape \(3,\)"):
        experiments.numerical_gradient(lambda a: a, np.zeros(2), np.zeros(3))


def test_draw_pipeline():
    fig = experiments.draw_pipeline([("a", "1"), ("b", "2"), ("c", "3")], [("first", 0, 1), ("second", 2, 2)])
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert {"a", "b", "c", "first", "second"} <= set(texts)
    with pytest.raises(ValueError, match=r"must span boxes within 0..2; got 1..3"):
        experiments.draw_pipeline([("a", "1"), ("b", "2"), ("c", "3")], [("bad", 1, 3)])
