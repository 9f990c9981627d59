"""Tests for lesson 06's helpers: helpers.activations (feature maps, receptive fields, top patches),
helpers.explain (optimised inputs, saliency) and their figures in helpers.plots, all through
helpers.visualize, the names the lesson uses.

Models and inputs live on ``pick_device()`` (the CPU here; CUDA in the gpu suite, which sets
``COURSE_DEVICE=cuda``), and every result is compared on the CPU.
"""

import matplotlib.colors as mcolors
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import activations, explain, plots
from helpers import visualize as V
from helpers.core import one_cpu_thread, pick_device, to_input
from helpers.data import load_mnist
from helpers.models import mnist_cnn
from helpers.training import fit

DEVICE = pick_device()


class SmallCNN(nn.Module):
    """Two 3x3 conv layers with max-pooling, written with functional calls (no pooling modules)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 7 * 7, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


def sequential_cnn() -> nn.Module:
    """The same kind of model as an nn.Sequential, with in-place ReLUs and a strided, unpadded conv."""
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 5, stride=2),
        nn.ReLU(inplace=True),
        nn.Flatten(),
        nn.Linear(6 * 5 * 5, 10),
    )


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """These tests push tiny batches through a small model: one thread is faster than several
    (and far faster when other processes share the cores). Restored afterwards."""
    with one_cpu_thread():
        yield


@pytest.fixture(scope="session")
def mnist():
    return load_mnist()


@pytest.fixture(scope="session")
def trained(mnist):
    """The lesson's CNN trained briefly (one epoch on 3,000 images, a few seconds): meaningful channels."""
    model = mnist_cnn()
    fit(model, mnist.train_images[:3000], mnist.train_labels[:3000], epochs=1, progress=False, device="cpu")
    model.zero_grad(set_to_none=True)
    return model.to(DEVICE).eval()


def all_activations(model, layer, images):
    """Reference: the layer's whole output (on the CPU), by running the Sequential's layers up to it by hand."""
    x = to_input(images, DEVICE)
    with torch.no_grad():
        for name, module in model.named_children():
            x = module(x)
            if name == layer:
                return x.cpu()
    raise KeyError(layer)


# --- the package follows the ideas -------------------------------------------------------------


def test_visualize_gathers_the_lesson_names_from_the_modules_split_by_idea():
    design_api = ["feature_maps", "top_patches", "maximize_activation", "saliency"]
    assert set(design_api) <= set(V.__all__)
    for name in V.__all__:
        assert hasattr(V, name), name
    for name in ["conv_layers", "feature_maps", "receptive_field", "top_units", "top_patches", "channel_activation"]:
        assert getattr(V, name) is getattr(activations, name), "what a layer computes: helpers.activations"
    for name in ["maximize_activation", "saliency"]:
        assert getattr(V, name) is getattr(explain, name), "what an optimised input or saliency shows: helpers.explain"
    for name in ["show_patches", "show_feature_maps"]:
        assert getattr(V, name) is getattr(plots, name), "figures beside the other plots"
    assert activations.LESSON == explain.LESSON == V.LESSON == 6


# --- layers and receptive fields -------------------------------------------------------------


def test_conv_layers_in_order():
    assert V.conv_layers(mnist_cnn()) == ["conv1", "conv2", "conv3"]
    assert V.conv_layers(SmallCNN()) == ["conv1", "conv2"]
    assert V.conv_layers(sequential_cnn()) == ["0", "3"]


def test_unknown_layer_names_the_choices():
    with pytest.raises(KeyError, match=r"got 'conv9'.*'conv1', 'conv2', 'fc'"):
        V.top_patches(SmallCNN(), "conv9", np.zeros((3, 28, 28), np.uint8), 0)


@pytest.mark.parametrize(
    ("make", "layer", "expected"),
    [
        (SmallCNN, "conv1", (3, 1, -1)),  # 3x3, padding 1
        (SmallCNN, "conv2", (8, 2, -3)),  # + 2x2 pool, then 3x3 padding 1: rows 2i-3 .. 2i+4
        (sequential_cnn, "0", (3, 1, -1)),
        (sequential_cnn, "3", (12, 4, -1)),  # 5x5 stride 2 after the pool: rows 4i-1 .. 4i+10
        (mnist_cnn, "conv3", (18, 4, -7)),  # 8x8 at stride 2, pooled to 10 at stride 4, + 3x3: 10 + 2 * 4
    ],
)
def test_receptive_field_matches_the_architecture(make, layer, expected):
    torch.manual_seed(0)
    assert V.receptive_field(make(), layer) == expected


def test_receptive_field_of_a_layer_with_zero_weights():
    """Measured on random weights: a trained weight that is exactly 0 does not shrink the field."""
    model = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1, bias=False))
    with torch.no_grad():
        model[0].weight.zero_()
    assert V.receptive_field(model, "0") == (3, 1, -1)
    with pytest.raises(ValueError, match="not the model's output"):
        V.receptive_field(model, "")


# --- feature maps ----------------------------------------------------------------------------


def test_feature_maps_are_conv_outputs_before_relu(trained, mnist):
    maps = V.feature_maps(trained, mnist.test_images[0])
    assert list(maps) == ["conv1", "conv2", "conv3"]
    assert [tuple(m.shape) for m in maps.values()] == [(16, 28, 28), (32, 14, 14), (64, 7, 7)]
    for layer in maps:
        expected = all_activations(trained, layer, mnist.test_images[:1])[0]
        torch.testing.assert_close(maps[layer], expected)
    assert (maps["conv2"] < 0).any(), "a conv output before its ReLU has negative values"


def test_feature_maps_survive_in_place_relu(mnist):
    torch.manual_seed(0)
    model = sequential_cnn().to(DEVICE).eval()
    maps = V.feature_maps(model, to_input(mnist.test_images[:1]))  # a CPU input goes to the model's device
    with torch.no_grad():
        expected = model[0](to_input(mnist.test_images[:1], DEVICE))[0].cpu()
    torch.testing.assert_close(maps["0"], expected)
    assert (maps["0"] < 0).any()


@pytest.mark.parametrize("make", [SmallCNN, lambda: mnist_cnn().eval()])
def test_a_forward_hook_by_hand_keeps_what_feature_maps_gives(make, mnist):
    """The lesson's hand-written hook (keep one conv layer's output for one image) equals the helper."""
    torch.manual_seed(0)
    model = make().to(DEVICE)
    kept = {}

    def keep_output(layer, inputs, output):
        kept["conv2"] = output.detach()

    handle = model.conv2.register_forward_hook(keep_output)
    with torch.no_grad():
        model(to_input(mnist.test_images[5], DEVICE))
    handle.remove()
    maps = V.feature_maps(model, mnist.test_images[5])
    assert maps["conv2"].device.type == "cpu", "feature maps come back on the CPU, ready for numpy"
    np.testing.assert_allclose(kept["conv2"][0].cpu().numpy(), maps["conv2"].numpy(), rtol=1e-5, atol=1e-6)
    assert not model.conv2._forward_hooks, "the helper removes its hooks"


def test_feature_maps_wants_one_image(trained, mnist):
    with pytest.raises(ValueError, match="expected one image; got 2"):
        V.feature_maps(trained, mnist.test_images[:2])
    with pytest.raises(ValueError, match=r"got a float tensor of shape \(2, 28, 28\)"):
        V.feature_maps(trained, torch.zeros(2, 28, 28))


# --- top patches -----------------------------------------------------------------------------


@pytest.mark.parametrize("layer", ["conv1", "conv3"])
@pytest.mark.parametrize("one_per_image", [True, False])
def test_top_units_agree_with_brute_force(trained, mnist, layer, one_per_image):
    images = mnist.test_images[:700]
    channel, k = 3, 9
    index, rows, cols, values = V.top_units(
        trained, layer, images, channel, k, one_per_image=one_per_image, batch_size=256
    )
    maps = all_activations(trained, layer, images)[:, channel].numpy()
    if one_per_image:
        best = maps.reshape(len(maps), -1).max(axis=1)
        expected = np.sort(best)[::-1][:k]
        assert len(set(index.tolist())) == k, "one patch per image"
    else:
        expected = np.sort(maps.ravel())[::-1][:k]
    np.testing.assert_allclose(values, expected, rtol=1e-5)
    assert np.all(np.diff(values) <= 0), "strongest first"
    np.testing.assert_allclose(maps[index, rows, cols], values, rtol=1e-5)


def test_top_units_of_several_channels_at_once(trained, mnist):
    images = mnist.test_images[:500]
    together = V.top_units(trained, "conv2", images, [5, 1], k=4, batch_size=128)
    assert all(a.shape == (2, 4) for a in together)
    for row, channel in enumerate([5, 1]):
        alone = V.top_units(trained, "conv2", images, channel, k=4)
        for a, b in zip(together, alone, strict=True):
            np.testing.assert_allclose(a[row], b, rtol=1e-5)


@pytest.mark.parametrize(("layer", "size"), [("conv1", 3), ("conv2", 8), ("conv3", 18)])
def test_top_patches_are_the_receptive_fields(trained, mnist, layer, size):
    images = mnist.test_images[:500]
    crops, values = V.top_patches(trained, layer, images, 5, k=9)
    assert crops.shape == (9, size, size) and crops.dtype == np.uint8
    assert np.all(np.diff(values) <= 0), "strongest first"
    index, rows, cols, _ = V.top_units(trained, layer, images, 5, k=9)
    _, stride, offset = V.receptive_field(trained, layer)
    padded = np.pad(images, ((0, 0), (size, size), (size, size)))
    outside = np.pad(np.zeros((28, 28), bool), size, constant_values=True)
    assert isinstance(crops, np.ma.MaskedArray)
    for crop, i, r, c in zip(crops, index, rows, cols, strict=True):
        top, left = r * stride + offset + size, c * stride + offset + size
        np.testing.assert_array_equal(crop.filled(0), padded[i, top : top + size, left : left + size])
        np.testing.assert_array_equal(np.ma.getmaskarray(crop), outside[top : top + size, left : left + size])
    several, several_values = V.top_patches(trained, layer, images, [5, 0], k=9)
    assert several.shape == (2, 9, size, size)
    np.testing.assert_array_equal(several[0], crops)
    np.testing.assert_allclose(several_values[0], values, rtol=1e-5)


def test_top_patch_crops_are_zero_padded_at_the_border():
    # One channel that looks only at the bottom-right pixel of its 3x3 window: unit (0, 0) sees
    # pixel (1, 1), so lighting that pixel makes unit (0, 0) the best; its crop hangs over the border.
    model = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1, bias=False))
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].weight[0, 0, 2, 2] = 1.0
    images = np.zeros((2, 28, 28), np.uint8)
    images[1, 1, 1] = 255
    images[1, 0, 0] = 7  # inside the crop, too
    crops, values = V.top_patches(model, "0", images, 0, k=1)
    expected = np.zeros((3, 3), np.uint8)
    expected[2, 2] = 255
    expected[1, 1] = 7
    assert values[0] > 0
    np.testing.assert_array_equal(crops[0].filled(0), expected)
    # the top row and the left column of that crop lie outside the image: masked, not paper
    outside = np.zeros((3, 3), bool)
    outside[0, :] = outside[:, 0] = True
    np.testing.assert_array_equal(crops[0].mask, outside)
    np.testing.assert_array_equal(crops[0].data[outside], 0)


def test_show_patches_draws_ink_dark_paper_white_and_the_outside_in_its_own_colour():
    """As in every lesson: pixel 255 (ink) dark, 0 (paper) white; no pixel there: OUTSIDE_COLOUR."""
    crop = np.ma.MaskedArray(np.array([[0, 0, 0], [0, 255, 0], [0, 128, 0]], np.uint8), mask=np.zeros((3, 3), bool))
    crop.mask[0, :] = True  # the top row hangs over the border
    fig = V.show_patches([np.ma.stack([crop, crop])], ["ch 0"])
    image = fig.axes[0].images[0]
    rgba = image.to_rgba(image.get_array())
    ink, paper, grey, outside = rgba[1, 1], rgba[1, 0], rgba[2, 1], rgba[0, 1]
    assert ink[:3].max() < 0.05, "ink is dark"
    assert paper[:3].min() > 0.95, "paper is white"
    assert 0.3 < grey[:3].mean() < 0.7
    np.testing.assert_allclose(outside, mcolors.to_rgba(plots.OUTSIDE_COLOUR), atol=1e-6)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["outside the image (the layers pad with zeros there)"]
    plain = V.show_patches([np.zeros((2, 3, 3), np.uint8)])
    assert not plain.legends, "no legend when nothing lies outside the image"


def test_optimised_inputs_shown_with_ink_dark_as_in_every_lesson():
    """to_pixels turns the model input of full ink (about +2.8) into 1, which show_images draws dark."""
    paper, ink = V.pixel_range()
    assert paper == pytest.approx(-0.4242, abs=1e-3) and ink == pytest.approx(2.8215, abs=1e-3)
    x = torch.full((1, 1, 28, 28), paper)
    x[0, 0, 10:18, 10:18] = ink
    pixels = V.to_pixels(x)
    np.testing.assert_allclose([pixels[0, 0, 0, 0], pixels[0, 0, 12, 12]], [0, 1], atol=1e-6)
    fig = plots.show_images(pixels)
    image = fig.axes[0].images[0]
    rgba = image.to_rgba(image.get_array())
    assert rgba[12, 12, :3].max() < 0.05 and rgba[0, 0, :3].min() > 0.95, "ink dark on white paper"


def test_top_patches_errors(trained, mnist):
    with pytest.raises(ValueError, match=r"channel must be between 0 and 15 for layer 'conv1'; got 16"):
        V.top_patches(trained, "conv1", mnist.test_images[:10], 16)
    with pytest.raises(ValueError, match=r"k must be between 1 and the number of images \(10\); got 11"):
        V.top_patches(trained, "conv1", mnist.test_images[:10], 0, k=11)
    with pytest.raises(TypeError, match="uint8"):
        V.top_patches(trained, "conv1", mnist.test_images[:10].astype(np.int32), 0)
    with pytest.raises(ValueError, match="non-empty sequence of ints; got \\[\\]"):
        V.top_patches(trained, "conv1", mnist.test_images[:10], [])


# --- optimised inputs ------------------------------------------------------------------------


def test_optimised_input_beats_real_digits_blank_and_noise(trained, mnist):
    """The acceptance check: on the last conv layer (before its ReLU), for several channels."""
    layer = V.conv_layers(trained)[-1]
    rng = np.random.default_rng(0)
    blank = np.zeros((1, 28, 28), np.uint8)
    noise = rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)
    real_digits = mnist.test_images[:2000]
    channels = [0, 1, 2, 3]
    optimised = V.maximize_activation(trained, layer, channels)
    assert optimised.shape == (len(channels), 1, 28, 28)
    for channel, x in zip(channels, optimised, strict=True):
        real = V.channel_activation(trained, layer, real_digits, channel, reduce="mean")
        others = V.channel_activation(trained, layer, np.concatenate([blank, noise]), channel, reduce="mean")
        best = max(real.max(), others.max())
        reached = V.channel_activation(trained, layer, x[None], channel, reduce="mean")[0]
        assert reached > best + 0.5 * (real.max() - real.min()), (channel, reached, best)


def test_maximize_activation_is_repeatable_and_a_real_picture(trained):
    low, high = V.pixel_range()
    first = V.maximize_activation(trained, "conv1", 2, steps=20)
    again = V.maximize_activation(trained, "conv1", 2, steps=20)
    assert first.shape == (1, 28, 28)
    assert first.device == next(trained.parameters()).device, "on the model's device, ready for model(...)"
    torch.testing.assert_close(first, again)
    assert first.min() >= low - 1e-6 and first.max() <= high + 1e-6
    other_seed = V.maximize_activation(trained, "conv1", 2, steps=20, seed=1)
    assert not torch.equal(first, other_seed)


def test_maximize_class_logit(trained):
    """For the output layer the logit of the class rises well above where it started."""
    start = V.maximize_activation(trained, "", [0, 7], steps=1, lr=0.0)
    optimised = V.maximize_activation(trained, "", [0, 7])
    with torch.no_grad():
        before, after = trained(start), trained(optimised)
    assert after[0, 0] > before[0, 0] + 5 and after[1, 7] > before[1, 7] + 5
    assert after.argmax(dim=1).tolist() == [0, 7]


def test_maximize_leaves_the_model_alone(trained):
    trained.train()
    weights = trained.conv1.weight.clone()
    try:
        V.maximize_activation(trained, "conv2", 0, steps=5)
        assert trained.training, "the model's mode is restored"
        torch.testing.assert_close(trained.conv1.weight, weights)
        assert trained.conv1.weight.grad is None
    finally:
        trained.eval()


def test_maximize_errors(trained):
    with pytest.raises(ValueError, match=r"channel must be between 0 and 9 for layer ''; got 10"):
        V.maximize_activation(trained, "", 10, steps=1)
    with pytest.raises(ValueError, match="steps must be at least 1; got 0"):
        V.maximize_activation(trained, "conv1", 0, steps=0)
    with pytest.raises(ValueError, match="reduce must be 'mean', 'max' or 'centre'; got 'median'"):
        V.maximize_activation(trained, "conv1", 0, steps=1, objective="median")


def test_channel_activation_reductions(trained, mnist):
    images = mnist.test_images[:50]
    maps = all_activations(trained, "conv2", images)[:, 4]
    np.testing.assert_allclose(
        V.channel_activation(trained, "conv2", images, 4), maps.flatten(1).amax(1).numpy(), rtol=1e-5
    )
    np.testing.assert_allclose(
        V.channel_activation(trained, "conv2", images, 4, reduce="mean"),
        maps.flatten(1).mean(1).numpy(),
        rtol=1e-5,
        atol=1e-6,
    )
    with torch.no_grad():
        logits = trained(to_input(images, DEVICE))[:, [3, 8]].cpu().numpy()
    np.testing.assert_allclose(V.channel_activation(trained, "", images, 3), logits[:, 0], rtol=1e-5)
    np.testing.assert_allclose(V.channel_activation(trained, "", images, [3, 8], batch_size=16), logits, rtol=1e-5)
    several = V.channel_activation(trained, "conv2", images, [0, 4], reduce="mean")
    assert several.shape == (50, 2)
    np.testing.assert_allclose(several[:, 1], maps.flatten(1).mean(1).numpy(), rtol=1e-5, atol=1e-6)


# --- saliency --------------------------------------------------------------------------------


def test_saliency_shape_sign_and_default_target(trained, mnist):
    image = mnist.test_images[0]
    result = V.saliency(trained, image)
    assert result.shape == (28, 28) and result.dtype == np.float32
    assert all(p.grad is None for p in trained.parameters()), "the weights' .grad is left alone"
    assert (result >= 0).all() and result.max() > 0
    x = to_input(image, DEVICE).requires_grad_(True)  # the lesson's vanilla saliency, by hand
    logits = trained(x)
    logits[0, logits.argmax()].backward()
    trained.zero_grad(set_to_none=True)
    np.testing.assert_allclose(result, x.grad[0, 0].abs().cpu().numpy(), rtol=1e-5, atol=1e-7)
    batch = V.saliency(trained, mnist.test_images[:3], target=[1, 2, 3])
    assert batch.shape == (3, 28, 28)
    np.testing.assert_allclose(batch[1], V.saliency(trained, mnist.test_images[1], target=2), rtol=1e-4, atol=1e-7)


def test_smoothgrad_averages_noisy_copies(trained, mnist):
    image = mnist.test_images[4]
    smooth = V.saliency(trained, image, target=4, samples=8, noise=0.3)
    assert smooth.shape == (28, 28) and (smooth >= 0).all()
    np.testing.assert_array_equal(smooth, V.saliency(trained, image, target=4, samples=8, noise=0.3))
    assert not np.allclose(smooth, V.saliency(trained, image, target=4)), "noise changes the map"
    np.testing.assert_allclose(
        V.saliency(trained, image, target=4, samples=3, noise=0.0), V.saliency(trained, image, target=4), rtol=1e-5
    )
    with pytest.raises(ValueError, match="samples must be >= 1 and noise >= 0; got samples=0"):
        V.saliency(trained, image, samples=0)


def test_saliency_of_a_linear_model_is_its_weights():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10)).to(DEVICE)
    image = np.full((28, 28), 128, np.uint8)
    expected = model[1].weight[4].detach().abs().reshape(28, 28).cpu().numpy()
    np.testing.assert_allclose(V.saliency(model, image, target=4), expected, rtol=1e-6)
    # the gradient of a linear model is the same everywhere, so SmoothGrad changes nothing
    np.testing.assert_allclose(V.saliency(model, image, target=4, samples=5, noise=1.0), expected, rtol=1e-5)


def test_saliency_errors(trained, mnist):
    with pytest.raises(ValueError, match=r"target must be a class between 0 and 9; got 12"):
        V.saliency(trained, mnist.test_images[0], target=12)
    with pytest.raises(ValueError, match=r"one per image \(3\); got 2"):
        V.saliency(trained, mnist.test_images[:3], target=[1, 2])


# --- similarity and pictures -----------------------------------------------------------------


def test_cosine_similarity():
    filters = np.array([[[1.0, 0], [0, 0]], [[1.0, 1], [0, 0]]])
    similarity = V.cosine_similarity(filters, -2 * filters)
    np.testing.assert_allclose(similarity, [[-1, -1 / np.sqrt(2)], [-1 / np.sqrt(2), -1]])
    with pytest.raises(ValueError, match=r"same shape; got \(2, 2\) and \(3, 3\)"):
        V.cosine_similarity(filters, np.zeros((1, 3, 3)))


def test_pixels_round_trip(mnist):
    pixels = V.to_pixels(to_input(mnist.test_images[:2]))
    np.testing.assert_allclose(pixels[:, 0] * 255, mnist.test_images[:2], atol=1e-3)


def test_pictures(trained, mnist):
    crops, _ = V.top_patches(trained, "conv2", mnist.test_images[:100], 0, k=4)
    fig = V.show_patches([crops, crops], ["a", "b"])
    assert len(fig.axes) == 8
    fig = V.show_feature_maps(V.feature_maps(trained, mnist.test_images[0]), channels=6)
    assert len(fig.axes) == 3 * 6
    assert [ax.get_title() for ax in fig.axes[:6]] == [f"ch {c}" for c in range(6)], "channel numbers on top"
    assert fig.axes[0].images[0].get_cmap().name == "RdBu_r", "signed maps, centred on zero"
    low, high = fig.axes[0].images[0].get_clim()
    assert low == -high
    with pytest.raises(ValueError, match=r"list of \(k, s, s\) crops"):
        V.show_patches([np.zeros((3, 3))])
