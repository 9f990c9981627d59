"""helpers.models: the lesson-05 CNN, its layer names, shapes and parameter count."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers.models import layer_shapes, mnist_cnn, parameter_count


def test_output_is_ten_logits_per_image():
    model = mnist_cnn().eval()
    with torch.no_grad():
        out = model(torch.randn(5, 1, 28, 28))
    assert out.shape == (5, 10)
    assert out.dtype == torch.float32


def test_conv_layers_are_named_and_the_first_is_3x3_on_one_channel():
    model = mnist_cnn()
    convs = {name: m for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    assert list(convs) == ["conv1", "conv2", "conv3"]
    assert convs["conv1"].in_channels == 1
    assert convs["conv1"].kernel_size == (3, 3)
    assert convs["conv1"].weight.shape == (16, 1, 3, 3)


def test_same_seed_same_weights_and_global_generator_untouched():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a, b = mnist_cnn(), mnist_cnn()
    assert torch.equal(torch.random.get_rng_state(), before), "mnist_cnn(seed) must not disturb the global seed"
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    c = mnist_cnn(seed=1)
    assert not torch.equal(a.conv1.weight, c.conv1.weight)


def test_seed_none_draws_from_the_global_generator():
    torch.manual_seed(5)
    a = mnist_cnn(seed=None)
    torch.manual_seed(5)
    b = mnist_cnn(seed=None)
    assert torch.equal(a.conv1.weight, b.conv1.weight)
    assert not torch.equal(a.conv1.weight, mnist_cnn(seed=None).conv1.weight)


def test_layer_shapes_walk_the_model():
    rows = layer_shapes(mnist_cnn())
    shapes = {row["name"]: row["output_shape"] for row in rows}
    assert shapes["conv1"] == (1, 16, 28, 28)
    assert shapes["pool1"] == (1, 16, 14, 14)
    assert shapes["conv2"] == (1, 32, 14, 14)
    assert shapes["pool3"] == (1, 64, 3, 3)
    assert shapes["flatten"] == (1, 576)
    assert rows[-1] == {**rows[-1], "name": "fc", "output_shape": (1, 10), "parameters": 576 * 10 + 10}
    assert sum(row["parameters"] for row in rows) == parameter_count(mnist_cnn())


def test_parameter_count_by_hand():
    convs = 16 * 1 * 9 + 32 * 16 * 9 + 64 * 32 * 9  # no conv biases: batch norm follows
    norms = 2 * (16 + 32 + 64)
    fc = 576 * 10 + 10
    assert parameter_count(mnist_cnn()) == convs + norms + fc == 29_178


def test_layer_shapes_restores_training_mode_and_rejects_other_models():
    model = mnist_cnn().train()
    layer_shapes(model)
    assert model.training
    with pytest.raises(TypeError, match="expects an nn.Sequential model; got Linear"):
        layer_shapes(nn.Linear(2, 2))
