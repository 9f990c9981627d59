"""Lesson 09's claim measured: accuracy from 50 labelled digits, over several draws of the 50.

Run from the repository root (each part writes ``benchmarks/bench_fifty_labels_<part>.json``,
which lesson 09 reads; the command that made it is stored in the file)::

    python -m benchmarks.bench_fifty_labels --part notebook   # the lesson's recipe, 5 draws
    python -m benchmarks.bench_fifty_labels --part long       # the longer FixMatch run, 5 draws
    python -m benchmarks.bench_fifty_labels --part additions  # what each addition is worth
    python -m benchmarks.bench_fifty_labels --part labels     # labelled images per digit

The data are ``load_mnist()``'s (the bundled sample offline: 10,000 training images) split as
the lesson splits them: a validation split of 10% (labelled, only scored), the labelled images
drawn from the rest with ``pick_labelled(labels, per_class, seed=draw)``, and all of the rest
used without their labels. Every accuracy is on the official 10,000 test images, scored once at
the end of each method. Each draw starts from the same ``mnist_cnn()`` weights; the draw's
seed picks the labelled images and the order of the unlabelled ones.

* ``notebook``: per draw, the 50 labels alone (without and with augmentation), self-training
  (2 rounds from the augmented model) and FixMatch for the lesson's ``FIXMATCH["steps"]``.
* ``long``: FixMatch for ``--steps`` (default 1,000) steps, per draw.
* ``additions``: FixMatch for ``--steps`` with one addition at a time (a slowly averaged
  teacher, distribution alignment, cut-out, all three), for the draws given.
* ``labels``: 1, 5, 10, 100 labels per digit, the labels alone (augmented) and FixMatch.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from helpers.core import pick_device, split_validation
from helpers.data import load_mnist
from helpers.models import mnist_cnn
from helpers.semisupervised import FIXMATCH, fixmatch, pick_labelled, self_train, train_supervised
from helpers.training import accuracy

HERE = Path(__file__).resolve().parent

ADDITIONS = {
    "plain": {},
    "teacher (ema 0.99)": {"ema": 0.99},
    "distribution alignment": {"align": True},
    "cut-out 12 px": {"cut_out": 12},
    "all three": {"ema": 0.99, "align": True, "cut_out": 12},
}


def results_path(part: str) -> Path:
    return HERE / f"bench_fifty_labels_{part}.json"


def _timed(function, *args, **kwargs):
    start = time.perf_counter()
    out = function(*args, **kwargs)
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("notebook", "long", "additions", "labels"), default="notebook")
    parser.add_argument("--draws", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device()
    data = load_mnist()
    (train_images, train_labels), valid = split_validation(data.train_images, data.train_labels)
    test = data.test_images, data.test_labels
    out = {
        "command": "python -m benchmarks.bench_fifty_labels " + " ".join(sys.argv[1:]),
        "data": data.source,
        "training_images": len(train_images),
        "validation_images": len(valid[1]),
        "test_images": len(test[1]),
        "device": str(device),
        "cpu_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, busy (shared with other jobs)",
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rows": [],
    }
    path = results_path(args.part)

    def record(row: dict) -> None:
        out["rows"].append(row)
        print(json.dumps(row), flush=True)
        path.write_text(json.dumps(out, indent=1) + "\n")

    def test_accuracy(model) -> float:
        return round(accuracy(model, *test), 4)

    if args.part == "notebook":
        for draw in args.draws:
            picked = pick_labelled(train_labels, 5, seed=draw)
            images, labels = train_images[picked], train_labels[picked]
            row = {"draw": draw, "per_class": 5}
            model = mnist_cnn()
            _, row["seconds_alone"] = _timed(train_supervised, model, images, labels, progress=False)
            row["alone"] = test_accuracy(model)
            model = mnist_cnn()
            _, row["seconds_augmented"] = _timed(train_supervised, model, images, labels, augment=True, progress=False)
            row["augmented"] = test_accuracy(model)
            _, row["seconds_self_training"] = _timed(
                self_train, model, images, labels, train_images, rounds=2, epochs=2, seed=draw, progress=False
            )
            row["self_training"] = test_accuracy(model)
            model = mnist_cnn()
            history, row["seconds_fixmatch"] = _timed(
                fixmatch, model, images, labels, train_images, valid=valid, seed=draw, progress=False
            )
            row["fixmatch"] = test_accuracy(model)
            row["fixmatch_steps"] = FIXMATCH["steps"]
            row["fixmatch_valid"] = round(history[-1]["valid_accuracy"], 4)
            row["fixmatch_used"] = round(history[-1]["used"], 4)
            record(row)
    elif args.part == "long":
        for draw in args.draws:
            picked = pick_labelled(train_labels, 5, seed=draw)
            model = mnist_cnn()
            history, seconds = _timed(
                fixmatch,
                model,
                train_images[picked],
                train_labels[picked],
                train_images,
                valid=valid,
                steps=args.steps,
                evaluate_every=250,
                seed=draw,
                progress=False,
            )
            record(
                {
                    "draw": draw,
                    "per_class": 5,
                    "steps": args.steps,
                    "fixmatch": test_accuracy(model),
                    "seconds": round(seconds, 1),
                    "valid_curve": [(h["step"], round(h["valid_accuracy"], 4)) for h in history],
                }
            )
    elif args.part == "additions":
        for draw in args.draws:
            picked = pick_labelled(train_labels, 5, seed=draw)
            for name, options in ADDITIONS.items():
                model = mnist_cnn()
                _, seconds = _timed(
                    fixmatch,
                    model,
                    train_images[picked],
                    train_labels[picked],
                    train_images,
                    steps=args.steps,
                    seed=draw,
                    progress=False,
                    **options,
                )
                record(
                    {
                        "draw": draw,
                        "recipe": name,
                        "options": options,
                        "steps": args.steps,
                        "fixmatch": test_accuracy(model),
                        "seconds": round(seconds, 1),
                    }
                )
    else:
        for per_class in (1, 10, 100, 5):
            for draw in args.draws:
                picked = pick_labelled(train_labels, per_class, seed=draw)
                images, labels = train_images[picked], train_labels[picked]
                model = mnist_cnn()
                train_supervised(model, images, labels, augment=True, progress=False)
                row = {"draw": draw, "per_class": per_class, "augmented": test_accuracy(model)}
                model = mnist_cnn()
                _, seconds = _timed(
                    fixmatch, model, images, labels, train_images, steps=args.steps, seed=draw, progress=False
                )
                row.update(fixmatch=test_accuracy(model), steps=args.steps, seconds=round(seconds, 1))
                record(row)

    for key in ("alone", "augmented", "self_training", "fixmatch"):
        values = [row[key] for row in out["rows"] if key in row]
        if values:
            print(f"{key}: median {statistics.median(values):.4f}, range {min(values):.4f}-{max(values):.4f}")


if __name__ == "__main__":
    main()
