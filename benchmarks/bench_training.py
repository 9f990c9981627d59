"""Lesson 05's training setup against the classic PyTorch MNIST example, side by side.

Run from the repository root::

    python -m benchmarks.bench_training            # 3 runs each, median
    python -m benchmarks.bench_training --runs 1   # quicker, noisier

Both recipes train on the same images (``load_mnist()``: the full set when it
is there, the bundled sample with ``MNIST_OFFLINE=1``) on the same device
(``pick_device()``), one after the other in this process. For each run we
record the training time (the clock stops while the test set is scored) until
the test accuracy first reaches the target (98%), then report the median over
the runs and the ratio, as a markdown table. Each recipe's test accuracy is
checked at the end of every epoch (its natural unit; the headline ratio). The
classic recipe is also checked every quarter epoch, which favours it (its time
is found 4 times more finely than the lesson's); that ratio is reported too.

* (a) this lesson: ``fit(mnist_cnn(), ...)`` with its defaults.
* (b) the classic recipe (pytorch/examples ``mnist/main.py``): two 3x3 convs
  (32, 64), max-pool, dropout 0.25, FC 9216->128, dropout 0.5, FC 128->10,
  Adadelta lr 1.0 with StepLR gamma 0.7 per epoch, batch 64, a DataLoader
  whose dataset turns each image into a PIL image and applies
  ``ToTensor()`` + ``Normalize((0.1307,), (0.3081,))`` one image at a time.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from helpers.core import pick_device, sync
from helpers.data import load_mnist
from helpers.models import mnist_cnn
from helpers.training import accuracy, fit


class ClassicNet(nn.Module):
    """The network of pytorch/examples mnist/main.py, unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        return F.log_softmax(self.fc2(x), dim=1)


class ArrayMNIST(Dataset):
    """Like torchvision.datasets.MNIST: each item becomes a PIL image, then goes through the transform."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        image = Image.fromarray(self.images[index])  # uint8 (28, 28): a greyscale "L" image
        return self.transform(image), int(self.labels[index])


@dataclass
class Run:
    seconds_to_target: float | None  # None: never reached (checked at the end of each epoch)
    final_accuracy: float
    epochs: float  # epochs trained until the target (or in all)
    quarter_seconds: float | None = None  # classic only: checked every quarter epoch


def run_lesson(data, device: torch.device, seed: int, target: float) -> Run:
    model = mnist_cnn(seed=seed)
    history = fit(
        model,
        data.train_images,
        data.train_labels,
        valid=(data.test_images, data.test_labels),
        seed=seed,
        device=device,
        progress=False,
    )
    reached = next((row for row in history if row["valid_accuracy"] >= target), None)
    return Run(
        seconds_to_target=reached["seconds"] if reached else None,
        final_accuracy=history[-1]["valid_accuracy"],
        epochs=reached["epoch"] if reached else history[-1]["epoch"],
    )


def run_classic(data, device: torch.device, seed: int, target: float, max_epochs: int) -> Run:
    torch.manual_seed(seed)
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    loader_options = {"batch_size": 64, "shuffle": True}
    if device.type == "cuda":
        loader_options |= {"num_workers": 1, "pin_memory": True}
    loader = DataLoader(ArrayMNIST(data.train_images, data.train_labels, transform), **loader_options)
    model = ClassicNet().to(device)
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    checks = {round(len(loader) * q / 4) for q in (1, 2, 3, 4)}  # batch counts after which we score
    seconds, acc, quarter_seconds = 0.0, 0.0, None
    for epoch in range(1, max_epochs + 1):
        model.train()
        sync(device)
        start = time.perf_counter()
        for step, (x, y) in enumerate(loader, start=1):
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = F.nll_loss(model(x), y)
            loss.backward()
            optimizer.step()
            if step in checks:
                sync(device)
                seconds += time.perf_counter() - start
                acc = accuracy(model, data.test_images, data.test_labels)  # the clock is stopped
                if acc >= target and quarter_seconds is None:
                    quarter_seconds = seconds
                model.train()
                start = time.perf_counter()
        scheduler.step()
        sync(device)
        seconds += time.perf_counter() - start
        if acc >= target:  # the last check was at the end of this epoch
            return Run(seconds, acc, epoch, quarter_seconds)
    return Run(None, acc, max_epochs, quarter_seconds)


def _median(runs: list[Run], field: str = "seconds_to_target") -> float | None:
    times = [getattr(r, field) for r in runs]
    return None if any(t is None for t in times) else statistics.median(times)


def _fmt(seconds: float | None) -> str:
    return "not reached" if seconds is None else f"{seconds:.1f} s"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each recipe (median reported)")
    parser.add_argument("--target", type=float, default=0.98, help="test accuracy to reach")
    parser.add_argument("--max-epochs", type=int, default=14, help="give the classic recipe up after this many")
    args = parser.parse_args(argv)

    data = load_mnist()
    device = pick_device()
    load_before = os.getloadavg()
    print(
        f"device: {device}; torch {torch.__version__}, {torch.get_num_threads()} CPU threads; "
        f"{len(data.train_images):,} training images ({data.source}), {len(data.test_images):,} test images; "
        f"load average before: {load_before[0]:.2f}",
        flush=True,
    )
    lesson, classic = [], []
    for seed in range(args.runs):
        lesson.append(run_lesson(data, device, seed, args.target))
        print(f"run {seed + 1} lesson : {_fmt(lesson[-1].seconds_to_target)}, {lesson[-1]}", flush=True)
        classic.append(run_classic(data, device, seed, args.target, args.max_epochs))
        print(f"run {seed + 1} classic: {_fmt(classic[-1].seconds_to_target)}, {classic[-1]}", flush=True)
    load_after = os.getloadavg()
    a, b, b_quarter = _median(lesson), _median(classic), _median(classic, "quarter_seconds")
    ratio = f"{b / a:.1f}x" if a and b else "n/a"
    ratio_quarter = f"{b_quarter / a:.1f}x" if a and b_quarter else "n/a"
    target = f"{args.target:.0%}"
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores" if device.type == "cpu" else ""
    print()
    print(
        f"Time to {target} test accuracy, median of {args.runs} run(s), on {device} {machine}; "
        f"{len(data.train_images):,} training images ({data.source}); "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after."
    )
    print()
    print(f"| recipe | time to {target} | epochs to {target} | test accuracy when stopped | lesson's speed-up |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, runs, seconds, speedup, per_epoch in (
        ("this lesson: `fit(mnist_cnn(), ...)` defaults", lesson, a, "1.0x", True),
        ("classic PyTorch MNIST example", classic, b, ratio, True),
        ("classic, checked every quarter epoch", classic, b_quarter, ratio_quarter, False),
    ):
        epochs = f"{statistics.median(r.epochs for r in runs):g}" if per_epoch else "-"
        final = statistics.median(r.final_accuracy for r in runs)
        print(f"| {name} | {_fmt(seconds)} | {epochs} | {final:.2%} | {speedup} |")
    return {"lesson": lesson, "classic": classic, "ratio": (b / a) if a and b else None}


if __name__ == "__main__":
    main()
