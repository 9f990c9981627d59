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


def test_blocks_are_conv_pool_norm_relu():
    names = [name for name, _ in mnist_cnn().named_children()]
    assert names[:4] == ["conv1", "pool1", "norm1", "relu1"]
    assert names == [f"{kind}{i}" for i in (1, 2, 3) for kind in ("conv", "pool", "norm", "relu")] + ["flatten", "fc"]


def test_relu_and_max_pool_commute():
    """Lesson 05: pooling before the ReLU computes what lesson 04's ReLU-then-pool does."""
    maps = torch.randn(4, 8, 14, 14, generator=torch.Generator().manual_seed(1))
    assert torch.equal(torch.relu(nn.functional.max_pool2d(maps, 2)), nn.functional.max_pool2d(torch.relu(maps), 2))


def test_pool3_drops_the_last_row_and_column_of_conv3():
    """Lesson 05: a 2x2 max-pool of a 7x7 map gives 3x3; row 7 and column 7 are never looked at."""
    pool3 = mnist_cnn().pool3
    maps = torch.randn(1, 64, 7, 7, generator=torch.Generator().manual_seed(2))
    changed = maps.clone()
    changed[..., 6, :] = 100.0
    changed[..., :, 6] = 100.0
    assert pool3(maps).shape == (1, 64, 3, 3)
    assert torch.equal(pool3(maps), pool3(changed))
