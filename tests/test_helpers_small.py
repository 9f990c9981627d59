"""helpers.exercises, helpers.plots and helpers.check."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.check import environment_checks, run_checks
from helpers.exercises import CheckResult, check
from helpers.plots import confusion_matrix, plot_confusion_matrix, show_images, show_signed, slider_explorer


def test_check_right_wrong_undone_and_broken(capsys):
    assert check("sum", 4, lambda a: a == 4) == True  # noqa: E712 - it compares like a bool
    assert "✅ sum" in capsys.readouterr().out
    assert not check("sum", 5, lambda a: a == 4, hint="2 + 2")
    assert "❌ sum: not yet. 2 + 2" in capsys.readouterr().out
    assert not check("sum", ..., lambda a: a == 4)
    assert "⏳ sum: not done yet" in capsys.readouterr().out
    assert not check("shape", np.zeros(3), lambda a: a.reshape(2, 2).sum() == 0)
    assert "ValueError" in capsys.readouterr().out
    assert repr(CheckResult(True)) == "CheckResult(passed=True)"


def test_confusion_matrix_counts_in_the_given_order():
    counts = confusion_matrix([8, 8, 1, 1, 1], [8, 1, 1, 1, 8], labels=[8, 1])
    np.testing.assert_array_equal(counts, [[1, 1], [1, 2]])
    np.testing.assert_array_equal(confusion_matrix([0, 2], [2, 2]), [[0, 1], [0, 1]])
    with pytest.raises(ValueError, match=r"label 4 is not in labels=\[3, 5\]"):
        confusion_matrix([3, 4], [3, 3], labels=[3, 5])
    with pytest.raises(ValueError, match="same length; got 2 and 1"):
        confusion_matrix([3, 4], [3])
    with pytest.raises(ValueError, match="distinct"):
        confusion_matrix([3], [3], labels=[3, 3])


def test_signed_pictures_are_centred_on_zero():
    fig = show_signed(np.array([[[-1.0, 3.0]], [[0.5, 0.0]]]), titles=["a", "b"], values=True)
    image = fig.axes[0].images[0]
    assert image.get_clim() == (-3.0, 3.0)
    assert image.get_cmap().name == "RdBu_r"
    with pytest.raises(ValueError, match=r"\(N, H, W\) or \(H, W\) arrays; got shape \(3,\)"):
        show_signed(np.zeros(3))


def test_show_images_and_confusion_plot():
    fig = show_images(np.zeros((12, 28, 28), dtype=np.uint8), titles=list(range(12)), ncols=6)
    assert sum(ax.has_data() for ax in fig.axes) == 12
    ax = plot_confusion_matrix(np.array([[5, 1], [0, 7]]), [8, 1])
    assert [t.get_text() for t in ax.texts] == ["5", "1", "0", "7"]


def test_slider_explorer_draws_the_static_row():
    seen = []

    def draw(ax, size):
        seen.append(size)
        ax.plot([0, size])

    widget = slider_explorer(draw, static=[{"size": 2}, {"size": 5}], size=(1, 9, 1))
    assert seen[:2] == [2, 5]
    assert widget is not None and widget.children[0].description == "size"
    assert widget.children[0].value == 2 and seen[-1] == 2, "the live slider starts at the first static picture"


def test_controls_the_static_row_leaves_out_start_at_draws_defaults():
    def draw(ax, size, colour="red", image=3):
        ax.set_title(f"{size} {colour} {image}")

    widget = slider_explorer(draw, static=[{"size": 4}], size=(1, 9, 1), image=(0, 99, 1))
    assert (controls(widget)["size"].value, controls(widget)["image"].value) == (4, 3)


def controls(widget):
    """The explorer's controls by name (ipywidgets 7.7 and 8: ``children`` and ``description``)."""
    return {child.description: child for child in widget.children if getattr(child, "description", "")}


def test_the_channel_slider_follows_the_layer():
    """Lesson 06's explorer: conv1 has 16 channels, conv2 32, conv3 64; the slider never offers more."""
    seen = []

    def draw(ax, layer, channel):
        seen.append((layer, channel))
        ax.set_title(f"{layer} ch {channel}")

    last = {"conv1": 15, "conv2": 31, "conv3": 63}
    widget = slider_explorer(
        draw,
        static=[{"layer": "conv1", "channel": 40}, {"layer": "conv3", "channel": 40}],
        limits={"channel": ("layer", last)},
        layer=list(last),
        channel=(0, 63, 1),
    )
    assert seen[:2] == [("conv1", 15), ("conv3", 40)], "the static row keeps within each layer's channels"
    layer, channel = controls(widget)["layer"], controls(widget)["channel"]
    assert (layer.value, channel.max) == ("conv1", 15), "the slider starts with conv1's 16 channels"
    assert channel.value == 15 and seen[-1] == ("conv1", 15), "it starts at the first static picture, within range"
    layer.value = "conv3"
    assert channel.max == 63
    channel.value = 40
    assert seen[-1] == ("conv3", 40)
    layer.value = "conv2"
    assert (channel.max, channel.value) == (31, 31), "channel 40 does not exist in conv2: the slider moves to 31"
    assert seen[-1] == ("conv2", 31), "the figure shows the channel the slider says"
    assert all(c <= last[name] for name, c in seen), "draw never sees a channel the layer does not have"
    layer.value = "conv1"
    assert (channel.max, channel.value) == (15, 15) and seen[-1] == ("conv1", 15)


def test_limits_must_name_controls_and_cover_every_choice():
    with pytest.raises(ValueError, match="limits names controls that do not exist"):
        slider_explorer(lambda ax, size: None, static=[], limits={"size": ("layer", {})}, size=(1, 9, 1))
    with pytest.raises(ValueError, match=r"gives no maximum for layer='conv3'"):
        slider_explorer(
            lambda ax, layer, channel: None,
            static=[],
            limits={"channel": ("layer", {"conv1": 15})},
            layer=["conv1", "conv3"],
            channel=(0, 63, 1),
        )


def test_environment_check_passes_here(capsys):
    names = [c.name for c in environment_checks()]
    assert names == ["Python", "PyTorch", "torchvision", "device", "MNIST", "widgets"]
    assert run_checks() is True
    assert capsys.readouterr().out.strip().endswith("Ready.")


def _checks_in_fake_colab(monkeypatch, widgets_version: str, device: str) -> dict:
    import sys
    import types

    import ipywidgets
    import torch

    import helpers.core

    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(ipywidgets, "__version__", widgets_version)
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    monkeypatch.setattr(helpers.core, "pick_device", lambda: torch.device(device))
    return {c.name: c for c in environment_checks()}


def test_colab_with_ipywidgets_8_is_a_fix_line_with_its_command(monkeypatch):
    checks = _checks_in_fake_colab(monkeypatch, "8.1.5", "cpu")
    widgets = checks["widgets"]
    assert not widgets.ok and str(widgets).startswith("FIX")
    assert '!pip install --quiet "ipywidgets>=7.7,<8"' in widgets.detail and "Restart session" in widgets.detail
    assert _checks_in_fake_colab(monkeypatch, "7.7.1", "cpu")["widgets"].ok


def test_colab_without_a_gpu_is_a_fix_line_saying_where_to_switch_it_on(monkeypatch):
    device = _checks_in_fake_colab(monkeypatch, "7.7.1", "cpu")["device"]
    assert not device.ok and "Runtime > Change runtime type" in device.detail


def test_outside_colab_ipywidgets_8_and_a_cpu_are_fine(monkeypatch):
    import ipywidgets

    monkeypatch.setattr(ipywidgets, "__version__", "8.1.5")
    checks = {c.name: c for c in environment_checks()}
    assert checks["widgets"].ok and checks["device"].ok
