"""helpers.training: device, seeds, model input, and lesson 05's fit/accuracy/predict/save/load."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import helpers.training as training
from helpers.core import one_cpu_thread
from helpers.data import load_mnist
from helpers.models import mnist_cnn
from helpers.training import (
    DEFAULTS,
    MNIST_MEAN,
    MNIST_STD,
    WeightsFileError,
    accuracy,
    describe_record,
    fit,
    load_weights,
    pick_device,
    predict,
    probabilities,
    read_record,
    retrain_reason,
    save_weights,
    seed_everything,
    split_validation,
    to_input,
    trained_mnist_cnn,
    training_record,
)


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


@pytest.fixture(scope="module")
def small(mnist):
    """384 training and 256 held-out images: enough to see learning in a second or two."""
    return (mnist.train_images[:384], mnist.train_labels[:384]), (mnist.test_images[:256], mnist.test_labels[:256])


QUICK = {"epochs": 2, "batch_size": 64, "progress": False}


class Constant(nn.Module):
    """A 'model' that always predicts the same class: its accuracy is easy to work out by hand."""

    def __init__(self, label: int):
        super().__init__()
        self.label = label
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        logits = torch.zeros(len(x), 10, device=x.device) + self.dummy
        logits[:, self.label] = 1.0
        return logits


# --- kept from lesson 03 -------------------------------------------------------------------


def test_pick_device_is_a_device_and_cpu_here():
    device = pick_device()
    assert isinstance(device, torch.device)
    if not torch.cuda.is_available():
        assert device.type in ("cpu", "mps")


def test_seed_everything_repeats_draws():
    seed_everything(3)
    a = (np.random.rand(), torch.rand(2))  # noqa: NPY002
    seed_everything(3)
    b = (np.random.rand(), torch.rand(2))  # noqa: NPY002
    assert a[0] == b[0] and torch.equal(a[1], b[1])


def test_to_input_scales_and_normalises():
    images = np.array([[[0, 255]]], dtype=np.uint8).repeat(28, 1).repeat(14, 2)
    x = to_input(images)
    assert x.shape == (1, 1, 28, 28) and x.dtype == torch.float32
    assert x.min().item() == pytest.approx(-MNIST_MEAN / MNIST_STD)
    assert x.max().item() == pytest.approx((1 - MNIST_MEAN) / MNIST_STD)


# --- fit -------------------------------------------------------------------------------------


def test_fit_defaults_are_the_lessons_settings():
    assert DEFAULTS == {
        "epochs": 4,
        "batch_size": 128,
        "lr": 0.01,
        "optimizer": "adamw",
        "weight_decay": 1e-4,
        "schedule": "onecycle",
        "seed": 0,
    }


def test_fit_returns_one_row_per_epoch_and_learns(small):
    (images, labels), valid = small
    model = mnist_cnn()
    before = accuracy(model, *valid)
    history = fit(model, images, labels, valid=valid, **QUICK)
    assert [row["epoch"] for row in history] == [1, 2]
    for row in history:
        assert {"epoch", "loss", "train_accuracy", "lr", "seconds", "valid_loss", "valid_accuracy"} <= row.keys()
        assert 0 <= row["valid_accuracy"] <= 1
    assert 0 < history[0]["seconds"] < history[1]["seconds"], "seconds are cumulative"
    assert history[1]["loss"] < history[0]["loss"]
    assert history[-1]["valid_accuracy"] == pytest.approx(accuracy(model, *valid))
    assert accuracy(model, *valid) > max(before, 0.6)
    assert history[-1]["lr"] < DEFAULTS["lr"] / 10, "one-cycle ends near zero"
    assert not model.training, "fit leaves the model ready for evaluation"
    assert all(p.is_contiguous() for p in model.parameters()), "and in the usual memory layout"


def test_channels_last_changes_rounding_only(small):
    (images, labels), valid = small
    a, b = mnist_cnn(), mnist_cnn()
    one_step = {"epochs": 1, "batch_size": 64, "optimizer": "sgd", "schedule": "constant", "progress": False}
    fit(a, images[:64], labels[:64], channels_last=True, device="cpu", **one_step)
    fit(b, images[:64], labels[:64], channels_last=False, device="cpu", **one_step)
    assert not torch.equal(a.conv1.weight, mnist_cnn().conv1.weight), "a step was taken"
    start = mnist_cnn().state_dict()
    for name, p in a.state_dict().items():
        if p.is_floating_point():
            step = (b.state_dict()[name] - start[name]).abs().max()
            # Max-pool may pick another of several equal values, so not exactly equal; but close.
            assert (p - b.state_dict()[name]).abs().max() <= 0.05 * step + 1e-7, name
    torch.testing.assert_close(a(to_input(valid[0])), b(to_input(valid[0])), rtol=1e-3, atol=1e-3)


def test_fit_without_valid_has_no_valid_keys(small):
    (images, labels), _ = small
    history = fit(mnist_cnn(), images[:64], labels[:64], epochs=1, progress=False)
    assert "valid_accuracy" not in history[0]


def test_same_seed_same_weights_on_the_cpu(small):
    (images, labels), _ = small
    a, b = mnist_cnn(), mnist_cnn()
    fit(a, images, labels, device="cpu", **QUICK)
    fit(b, images, labels, device="cpu", **QUICK)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    c = mnist_cnn()
    fit(c, images, labels, device="cpu", seed=1, **QUICK)
    assert not torch.equal(a.conv1.weight, c.conv1.weight)


def test_fit_accepts_tensors_and_model_input(small):
    (images, labels), _ = small
    a, b = mnist_cnn(), mnist_cnn()
    fit(a, images[:64], labels[:64], epochs=1, progress=False)
    fit(b, to_input(images[:64]), torch.as_tensor(labels[:64]), epochs=1, progress=False)
    assert torch.equal(a.conv1.weight, b.conv1.weight)


@pytest.mark.parametrize(
    ("optimizer", "schedule"), [("adam", "constant"), ("momentum", "onecycle"), ("sgd", "constant")]
)
def test_other_optimisers_and_schedules_run(small, optimizer, schedule):
    (images, labels), _ = small
    history = fit(
        mnist_cnn(), images[:128], labels[:128], epochs=1, optimizer=optimizer, schedule=schedule, progress=False
    )
    assert np.isfinite(history[0]["loss"])
    if schedule == "constant":
        assert history[0]["lr"] == DEFAULTS["lr"]


def test_amp_is_never_used_off_cuda(small):
    (images, labels), _ = small
    a, b = mnist_cnn(), mnist_cnn()
    fit(a, images[:64], labels[:64], epochs=1, amp=True, device="cpu", progress=False)
    fit(b, images[:64], labels[:64], epochs=1, amp=False, device="cpu", progress=False)
    assert torch.equal(a.conv1.weight, b.conv1.weight)
    assert a.conv1.weight.dtype == torch.float32


def test_autocast_choice_on_cuda(monkeypatch):
    assert training._amp_type(torch.device("cpu"), True) is None
    assert training._amp_type(torch.device("cpu"), None) is None
    assert training._amp_type(torch.device("cuda"), False) is None
    assert not training._autocast(torch.device("cpu"), None)._enabled
    for capability, dtype in (((8, 0), torch.bfloat16), ((9, 0), torch.bfloat16), ((7, 5), torch.float16)):
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None, c=capability: c)
        assert training._amp_type(torch.device("cuda"), None) == dtype
        assert training._amp_type(torch.device("cpu"), None, capability) == dtype, "forced on any device"
        with pytest.warns(UserWarning) if not torch.cuda.is_available() else _nothing():
            context = training._autocast(torch.device("cuda"), dtype)
        assert context.fast_dtype == dtype


@pytest.mark.parametrize(
    ("capability", "dtype", "scaled"),
    [((7, 5), torch.float16, True), ((8, 0), torch.bfloat16, False)],
    ids=["t4-float16", "a100-bfloat16"],
)
def test_mixed_precision_branches_train_on_the_cpu(mnist, capability, dtype, scaled, monkeypatch):
    """The T4's branch (float16 autocast + gradient scaler) and the bf16 branch, run for real on the CPU."""
    seen, scales = [], []
    real_autocast, real_scaler = torch.autocast, torch.amp.GradScaler

    def autocast(*args, **kwargs):
        seen.append(kwargs.get("dtype"))
        return real_autocast(*args, **kwargs)

    def scaler(*args, **kwargs):
        scales.append(kwargs.get("enabled"))
        return real_scaler(*args, **kwargs)

    monkeypatch.setattr(torch, "autocast", autocast)
    monkeypatch.setattr(torch.amp, "GradScaler", scaler)
    model = mnist_cnn()
    start = time.perf_counter()
    with one_cpu_thread():
        history = fit(
            model, mnist.train_images[:2000], mnist.train_labels[:2000], epochs=1, batch_size=64, device="cpu",
            progress=False, valid=(mnist.test_images[:2000], mnist.test_labels[:2000]), _amp_capability=capability,
        )
    seconds = time.perf_counter() - start
    assert dtype in seen and scales == [scaled]
    assert model.conv1.weight.dtype == torch.float32, "autocast computes in low precision, keeps float32 weights"
    score = history[0]["valid_accuracy"]
    print(f"{dtype} autocast on the CPU, 1 epoch of 2,000 images: {score:.1%} in {seconds:.1f} s")
    assert history[0]["valid_accuracy"] >= 0.90


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *args):
        return False


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"labels": np.zeros(5, dtype=np.int64)}, ValueError, "got 64 images but 5 labels"),
        ({"labels": np.zeros(64, dtype=np.float32)}, ValueError, "integer class numbers 0-9; got dtype"),
        ({"labels": np.full(64, 10)}, ValueError, "must lie in 0-9; got values from 10 to 10"),
        ({"images": np.zeros((64, 28, 28), dtype=np.float32)}, TypeError, "expects uint8 pixel values"),
        ({"images": np.zeros((64, 32, 32), dtype=np.uint8)}, ValueError, r"expected 28x28 images.*\(64, 1, 32, 32\)"),
        ({"optimizer": "adagrad"}, ValueError, "optimizer must be one of .*got 'adagrad'"),
        ({"schedule": "cosine"}, ValueError, "schedule must be one of .*got 'cosine'"),
        ({"epochs": 0}, ValueError, "epochs must be a whole number >= 1; got 0"),
        ({"batch_size": 0}, ValueError, "batch_size must be a whole number >= 1; got 0"),
        ({"lr": -1.0}, ValueError, "lr must be positive; got -1.0"),
        ({"valid": (np.zeros((2, 28, 28), np.uint8),)}, ValueError, r"valid must be a pair \(images, labels\)"),
        ({"model": "cnn"}, TypeError, "expects a torch.nn.Module as model; got str"),
    ],
)
def test_fit_rejects_bad_input_clearly(small, kwargs, error, message):
    (images, labels), _ = small
    arguments = {"model": mnist_cnn(), "images": images[:64], "labels": labels[:64], **kwargs}
    model, images, labels = arguments.pop("model"), arguments.pop("images"), arguments.pop("labels")
    with pytest.raises(error, match=message):
        fit(model, images, labels, progress=False, **arguments)


# --- accuracy, predict, probabilities -------------------------------------------------------


def test_accuracy_of_a_constant_model_is_that_labels_share(mnist):
    labels = mnist.test_labels[:1000]
    for label in (1, 7):
        assert accuracy(Constant(label), mnist.test_images[:1000], labels) == pytest.approx(np.mean(labels == label))


def test_predict_and_probabilities_agree(small, mnist):
    model = mnist_cnn()
    images = mnist.test_images[:3000]  # more than one evaluation batch
    probs = probabilities(model, images)
    assert probs.shape == (3000, 10) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-5)
    predicted = predict(model, images)
    assert predicted.shape == (3000,) and predicted.dtype == np.int64
    np.testing.assert_array_equal(predicted, probs.argmax(1))
    with torch.no_grad():
        reference = torch.softmax(model.eval()(to_input(images[:10])), 1).numpy()
    np.testing.assert_allclose(probs[:10], reference, rtol=1e-4, atol=1e-6)


def test_evaluation_keeps_the_models_mode_and_needs_no_gradients(mnist):
    model = mnist_cnn().train()
    accuracy(model, mnist.test_images[:10], mnist.test_labels[:10])
    assert model.training
    running_mean = model.norm1.running_mean.clone()
    predict(model, mnist.test_images[:10])
    assert torch.equal(model.norm1.running_mean, running_mean), "evaluation must not update batch-norm statistics"


def test_accuracy_rejects_mismatched_labels(mnist):
    with pytest.raises(ValueError, match="got 10 images but 9 labels"):
        accuracy(mnist_cnn(), mnist.test_images[:10], mnist.test_labels[:9])


# --- split_validation -----------------------------------------------------------------------


def test_split_validation_is_disjoint_complete_and_repeatable():
    images = np.arange(100)[:, None, None].repeat(28, 1).repeat(28, 2).astype(np.uint8)
    labels = np.arange(100) % 10
    (ti, tl), (vi, vl) = split_validation(images, labels, valid_size=0.1)
    assert len(vi) == 10 and len(ti) == 90
    seen = np.concatenate([ti[:, 0, 0], vi[:, 0, 0]])
    assert sorted(seen) == list(range(100))
    np.testing.assert_array_equal(tl, ti[:, 0, 0] % 10)
    (_, _), (again, _) = split_validation(images, labels, valid_size=0.1)
    np.testing.assert_array_equal(vi, again)
    (_, _), (other, _) = split_validation(images, labels, valid_size=10, seed=1)
    assert not np.array_equal(vi, other)


@pytest.mark.parametrize("size", [0, 100, 1.0, 0.0])
def test_split_validation_rejects_empty_sides(size):
    with pytest.raises(ValueError, match="must leave images on both sides"):
        split_validation(np.zeros((100, 28, 28), np.uint8), np.zeros(100, np.int64), valid_size=size)


# --- save and load --------------------------------------------------------------------------


def test_saved_weights_reload_to_the_same_accuracy(tmp_path, small):
    (images, labels), (valid_images, valid_labels) = small
    model = mnist_cnn()
    fit(model, images, labels, epochs=1, progress=False)
    path = save_weights(model, tmp_path / "sub" / "model.pt")
    assert path.is_file()
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"], "no temporary file left behind"
    saved = torch.load(path, weights_only=True)
    assert all(t.device.type == "cpu" for t in saved["state_dict"].values())
    fresh = load_weights(mnist_cnn(seed=7), path)
    for (name, p), q in zip(model.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(p.cpu(), q), name
    assert accuracy(fresh, valid_images, valid_labels) == accuracy(model, valid_images, valid_labels)


def test_missing_weights_file_says_what_to_do(tmp_path):
    with pytest.raises(WeightsFileError, match="no saved weights at .*missing.pt: run lesson 05"):
        load_weights(mnist_cnn(), tmp_path / "missing.pt")


@pytest.mark.parametrize("content", [b"", b"not a pytorch file at all", "truncated"])
def test_corrupted_weights_file_is_reported(tmp_path, content):
    path = tmp_path / "model.pt"
    if content == "truncated":
        save_weights(mnist_cnn(), path)
        path.write_bytes(path.read_bytes()[:1000])
    else:
        path.write_bytes(content)
    with pytest.raises(WeightsFileError, match="is not a readable weights file .*save the weights again"):
        load_weights(mnist_cnn(), path)


def test_weights_of_another_model_are_reported(tmp_path):
    path = save_weights(nn.Linear(3, 2), tmp_path / "linear.pt")
    with pytest.raises(WeightsFileError, match="do not fit this model"):
        load_weights(mnist_cnn(), path)
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(WeightsFileError, match="holds a list, not a state_dict"):
        load_weights(mnist_cnn(), tmp_path / "list.pt")


def test_a_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = save_weights(mnist_cnn(), tmp_path / "model.pt")
    old = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        save_weights(mnist_cnn(seed=3), path)
    assert path.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


# --- trained_mnist_cnn ----------------------------------------------------------------------


class _Tiny:
    """Stands in for load_mnist()'s result, with few images so that training takes a moment."""

    def __init__(self, mnist, count=200, source="sample"):
        self.train_images, self.train_labels = mnist.train_images[:count], mnist.train_labels[:count]
        self.source = source


def test_trained_mnist_cnn_trains_saves_then_loads(tmp_path, mnist):
    path = tmp_path / "mnist_cnn.pt"
    trained = trained_mnist_cnn(path, data=_Tiny(mnist), progress=False, device="cpu")
    assert path.is_file() and not trained.training
    # The lesson's recipe by hand gives the same weights.
    (images, labels), valid = split_validation(mnist.train_images[:200], mnist.train_labels[:200])
    by_hand = mnist_cnn()
    fit(by_hand, images, labels, valid=valid, device="cpu", progress=False)
    for (name, p), q in zip(trained.state_dict().items(), by_hand.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    loaded = trained_mnist_cnn(path, data=_Tiny(mnist), device="cpu")
    assert torch.equal(loaded.conv1.weight, trained.conv1.weight)
    assert loaded.training_record == trained.training_record
    assert loaded.training_record["source"] == "sample" and loaded.training_record["train_images"] == 180


def test_a_record_round_trips_with_the_weights_only_loader(tmp_path, mnist):
    record = training_record(
        _Tiny(mnist), 180, recipe={"name": "lesson 05", "epochs": 4, "augmentation": False}, seed=0, device="cpu"
    )
    path = save_weights(mnist_cnn(), tmp_path / "model.pt", record=record)
    assert read_record(path) == record
    assert load_weights(mnist_cnn(), path).training_record == record
    assert record == {
        "source": "sample",
        "train_images": 180,
        "recipe": {"name": "lesson 05", "epochs": 4, "augmentation": False},
        "seed": 0,
        "device": "cpu",
        "torch": str(torch.__version__),
    }
    line = describe_record(record)
    assert line.startswith("trained on the bundled MNIST sample (180 training images), 4 epochs, seed 0, on cpu")
    augmented = {**record, "source": "full", "recipe": {"epochs": 16, "augmentation": True}}
    expected = "trained on full MNIST (180 training images), 16 epochs with augmentation"
    assert describe_record(augmented).startswith(expected)
    assert describe_record(None).startswith("trained on unknown data")


def test_a_model_trained_on_the_sample_is_retrained_when_the_full_set_is_in_use(tmp_path, mnist, capsys):
    path = tmp_path / "mnist_cnn.pt"
    on_sample = trained_mnist_cnn(path, data=_Tiny(mnist, count=100), progress=False, device="cpu")
    capsys.readouterr()
    on_full = trained_mnist_cnn(path, data=_Tiny(mnist, count=100, source="full"), progress=False, device="cpu")
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "Retraining lesson 05's model" in out
    assert "bundled MNIST sample" in out and "full MNIST" in out, out
    assert read_record(path)["source"] == "full" and on_full.training_record["source"] == "full"
    assert on_sample.training_record["source"] == "sample"
    # Loaded again with the full set: no retraining, no message.
    trained_mnist_cnn(path, data=_Tiny(mnist, count=100, source="full"), device="cpu")
    assert capsys.readouterr().out == ""
    # Another number of training images retrains too.
    assert retrain_reason(path, _Tiny(mnist, count=100, source="full"), 50) is not None


def test_an_old_file_without_a_record_is_retrained_with_a_message(tmp_path, mnist, capsys):
    path = tmp_path / "mnist_cnn.pt"
    torch.save(mnist_cnn(seed=5).state_dict(), path)  # as saved before records were kept
    assert read_record(path) is None
    assert load_weights(mnist_cnn(), path).training_record is None  # still loads by hand
    model = trained_mnist_cnn(path, data=_Tiny(mnist, count=100), progress=False, device="cpu")
    out = capsys.readouterr().out
    assert "has no record of what trained it" in out and "Retraining" in out
    assert not torch.equal(model.conv1.weight, mnist_cnn(seed=5).conv1.weight)
    assert read_record(path)["train_images"] == 90


def test_trained_mnist_cnn_lives_on_pick_device_by_default(tmp_path, mnist):
    path = tmp_path / "mnist_cnn.pt"
    trained = trained_mnist_cnn(path, data=_Tiny(mnist, count=100), progress=False)
    loaded = trained_mnist_cnn(path, data=_Tiny(mnist, count=100))
    for model in (trained, loaded):
        assert {p.device.type for p in model.parameters()} == {pick_device().type}
        assert {b.device.type for b in model.buffers()} == {pick_device().type}
        assert not model.training
    # Usable at once on its device: inputs made there, outputs read back with .cpu().
    x = to_input(mnist.test_images[:4], pick_device())
    with torch.no_grad():
        assert loaded(x).cpu().numpy().shape == (4, 10)
    assert 0 <= accuracy(loaded, mnist.test_images[:100], mnist.test_labels[:100]) <= 1


# --- the training loop by hand agrees with fit (lesson 05, section 4) ----------------------------


def _hand_loop_mean_loss(images, labels, lr: float, batch_size: int, seed: int) -> float:
    """Lesson 05's loop by hand: shuffled minibatches, forward, loss, backward, an SGD update, zero grads."""
    model = mnist_cnn()
    x, y = to_input(images), torch.as_tensor(labels)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    total = 0.0
    for first in range(0, len(x), batch_size):
        batch = order[first : first + batch_size]
        loss = F.cross_entropy(model(x[batch]), y[batch])
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p.add_(p.grad, alpha=-lr)  # p = p - lr * grad, as torch.optim.SGD computes it
                p.grad = None
        total += loss.item() * len(batch)
    return total / len(x)


@pytest.mark.parametrize(("count", "lr", "seed"), [(1000, 0.1, 0), (700, 0.05, 3)])
def test_hand_loop_and_fit_give_the_same_epoch_loss(mnist, count, lr, seed):
    images, labels = mnist.train_images[:count], mnist.train_labels[:count]
    by_hand = _hand_loop_mean_loss(images, labels, lr=lr, batch_size=128, seed=seed)
    history = fit(
        mnist_cnn(),
        images,
        labels,
        epochs=1,
        batch_size=128,
        lr=lr,
        optimizer="sgd",
        schedule="constant",
        weight_decay=0.0,
        seed=seed,
        channels_last=False,
        device="cpu",
        progress=False,
    )
    assert history[0]["loss"] == pytest.approx(by_hand, rel=1e-5)
    assert by_hand < 2.0, "and it learned something in one epoch (the loss starts near ln 10 = 2.3)"


def test_hand_loop_with_another_order_is_not_fit(mnist):
    """The agreement above is not trivial: a different batch order gives a different epoch loss."""
    images, labels = mnist.train_images[:1000], mnist.train_labels[:1000]
    by_hand = _hand_loop_mean_loss(images, labels, lr=0.1, batch_size=128, seed=1)
    options = {"optimizer": "sgd", "schedule": "constant", "weight_decay": 0.0, "channels_last": False}
    history = fit(mnist_cnn(), images, labels, epochs=1, lr=0.1, seed=0, device="cpu", progress=False, **options)
    assert history[0]["loss"] != pytest.approx(by_hand, rel=1e-3)
