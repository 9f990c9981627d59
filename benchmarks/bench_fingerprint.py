"""Lesson 01 benchmark: the vectorised fingerprint classifier vs a per-image scipy loop.

Run from the repository root::

    python -m benchmarks.bench_fingerprint [--repeats 3]

Both sides fit the nearest-fingerprint classifier on every training 8 and 1 and
then predict all of them: correlate with the eight filters, 7x7 max-pool, mean
fingerprint per label, nearest mean by sum of squared errors. The baseline is
the straightforward version: a Python loop over images and filters calling
``scipy.ndimage.correlate``. Both must give the same predictions. Prints a
markdown table with the median of the repeats and the ratio.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import scipy.ndimage as ndimage
import torch

from helpers.data import load_mnist
from helpers.filters import FingerprintClassifier, edge_filters


def loop_fingerprints(images: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """One image and one filter at a time, with scipy: the baseline."""
    prints = []
    for image in images:
        scaled = image / 255.0
        responses = [ndimage.correlate(scaled, f, mode="constant") for f in filters]
        prints.append([r.reshape(4, 7, 4, 7).max(axis=(1, 3)) for r in responses])
    return np.array(prints)


def loop_fit_predict(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    filters = edge_filters().astype(np.float64)
    prints = loop_fingerprints(images, filters)
    classes = np.unique(labels)
    means = [prints[labels == c].mean(axis=0) for c in classes]
    prints = loop_fingerprints(images, filters)  # predict recomputes them, like the helper does
    predictions = []
    for fingerprint in prints:
        errors = [((fingerprint - mean) ** 2).sum() for mean in means]
        predictions.append(classes[int(np.argmin(errors))])
    return np.array(predictions)


def vectorised_fit_predict(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return FingerprintClassifier().fit(images, labels).predict(images)


def timed(function, *args) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    mnist = load_mnist()
    keep = np.isin(mnist.train_labels, [1, 8])
    images, labels = mnist.train_images[keep], mnist.train_labels[keep]
    print(f"{len(images):,} training 8s and 1s; {os.cpu_count()} CPU cores; torch threads {torch.get_num_threads()}")

    loop_times, fast_times = [], []
    for repeat in range(args.repeats):
        seconds, loop_predictions = timed(loop_fit_predict, images, labels)
        loop_times.append(seconds)
        seconds, fast_predictions = timed(vectorised_fit_predict, images, labels)
        fast_times.append(seconds)
        agree = float((loop_predictions == fast_predictions).mean())
        print(f"run {repeat + 1}: loop {loop_times[-1]:.2f} s, vectorised {fast_times[-1]:.3f} s, agree {agree:.2%}")
        if agree < 0.999:
            raise SystemExit("the two versions disagree: the benchmark is not comparing like with like")

    loop, fast = statistics.median(loop_times), statistics.median(fast_times)
    print()
    what = f"fit + predict, {len(images):,} images ({mnist.source} MNIST, {platform.machine()})"
    print(f"| {what} | seconds (median of {args.repeats}) |")
    print("| --- | --- |")
    print(f"| per-image loop, `scipy.ndimage.correlate` | {loop:.2f} |")
    print(f"| `helpers.filters.FingerprintClassifier` | {fast:.3f} |")
    print(f"| speed-up | **{loop / fast:.0f}x** |")


if __name__ == "__main__":
    main()
