"""helpers.core: device choice, mixed-precision choice, model input, validation split."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import core


def test_pick_device_follows_course_device(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert core.pick_device() == torch.device("cpu")
    monkeypatch.setenv("COURSE_DEVICE", " CPU ")
    assert core.pick_device().type == "cpu"


def test_pick_device_without_the_variable_prefers_a_gpu(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert core.pick_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(core, "_mps_available", lambda: True)
    assert core.pick_device().type == "mps"
    monkeypatch.setattr(core, "_mps_available", lambda: False)
    assert core.pick_device().type == "cpu"


def test_pick_device_says_what_is_wrong(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "tpu")
    with pytest.raises(ValueError, match="cpu, cuda, mps.*'tpu'"):
        core.pick_device()
    monkeypatch.setenv("COURSE_DEVICE", "cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        core.pick_device()


@pytest.mark.parametrize(
    ("device_type", "capability", "dtype", "scaler"),
    [
        ("cuda", (7, 5), torch.float16, True),  # T4: Colab's free GPU; bf16 only emulated
        ("cuda", (7, 0), torch.float16, True),  # V100
        ("cuda", (8, 0), torch.bfloat16, False),  # A100
        ("cuda", (8, 6), torch.bfloat16, False),  # RTX 30xx
        ("cuda", (9, 0), torch.bfloat16, False),  # H100 / H200
        ("cpu", None, None, False),
        ("mps", None, None, False),
    ],
)
def test_amp_dtype_fits_the_gpu(device_type, capability, dtype, scaler):
    chosen = core.amp_dtype(device_type, capability)
    assert chosen == dtype
    assert core.needs_grad_scaler(chosen) is scaler


def test_amp_dtype_needs_the_capability_for_cuda():
    with pytest.raises(ValueError, match="compute capability"):
        core.amp_dtype("cuda")


def test_fit_uses_a_grad_scaler_exactly_for_float16(monkeypatch):
    """The scaler path of helpers.training, without a GPU: what fit would build for each capability."""
    from helpers import training

    for capability, enabled in [((7, 5), True), ((8, 0), False), ((9, 0), False)]:
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None, c=capability: c)
        dtype = training._amp_dtype(torch.device("cuda"))
        assert core.needs_grad_scaler(dtype) is enabled
    assert training._amp_dtype(torch.device("cpu")) is None


def test_to_input_scales_and_normalises():
    images = np.array([[[0, 255]]], dtype=np.uint8).repeat(2, axis=0)
    x = core.to_input(images)
    assert x.shape == (2, 1, 1, 2) and x.dtype == torch.float32
    np.testing.assert_allclose(x[0, 0, 0].numpy(), [-core.MNIST_MEAN / core.MNIST_STD, (1 - 0.1307) / 0.3081], 1e-6)
    with pytest.raises(TypeError, match="uint8"):
        core.to_input(np.zeros((2, 28, 28), np.float64))


def test_split_indices_and_validation():
    train, valid = core.split_indices(100, 0.2, seed=0)
    assert len(valid) == 20 and len(train) == 80
    assert sorted(np.concatenate([train, valid]).tolist()) == list(range(100))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(valid) > 0)
    np.testing.assert_array_equal(core.split_indices(100, 0.2, seed=0)[1], valid)
    assert not np.array_equal(core.split_indices(100, 0.2, seed=1)[1], valid)
    images, labels = np.arange(100)[:, None], np.arange(100) % 10
    (ti, tl), (vi, vl) = core.split_validation(images, labels, valid_size=20)
    np.testing.assert_array_equal(vi[:, 0], valid)
    np.testing.assert_array_equal(tl, train % 10)
    with pytest.raises(ValueError, match="both sides.*fraction between 0 and 1"):
        core.split_indices(10, 1.5)
    with pytest.raises(ValueError, match="both sides"):
        core.split_indices(10, 10)


def test_the_old_import_paths_still_work():
    from helpers import training

    assert training.to_input is core.to_input
    assert training.pick_device is core.pick_device
    assert training.split_validation is core.split_validation


def test_one_cpu_thread_runs_on_one_thread_and_restores_the_count():
    threads = torch.get_num_threads()
    with core.one_cpu_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == threads
    with pytest.raises(RuntimeError), core.one_cpu_thread("cpu"):
        raise RuntimeError("the count comes back after an error too")
    assert torch.get_num_threads() == threads


@pytest.mark.parametrize(("device", "when"), [("cuda", True), ("mps", True), ("cpu", False)])
def test_one_cpu_thread_leaves_other_devices_and_large_work_alone(device, when):
    threads = torch.get_num_threads()
    with core.one_cpu_thread(torch.device(device), when=when):
        assert torch.get_num_threads() == threads
