"""The model's top-3 for image files, in a terminal: ``python -m helpers.predict FILE [FILE ...]``.

Introduced in lesson 08, for instructors (a quick check before a demo) and for
anyone without the web page. Each file is read and prepared exactly as the
service does (``helpers.picture.read_image`` with the same limits, then
``read_digit`` and ``judge``) and scored by the augmented model
(``data/mnist_cnn_robust.pt``, trained first when missing). It prints one line
per file, for example::

    seven.png: 7 (97.1%), then 1 (1.8%), then 2 (0.4%)

and, for a picture that was not read as one digit, why, on the next line::

    three.png: 1 (58.0%), then 7 (30.2%), then 4 (5.1%)
        not read as one digit: there are 3 marks of about the same size: ...

A file that cannot be used gets a line saying why (on stderr), and the exit
code is 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

LESSON = 8

__all__ = ["describe", "main"]


def describe(predictions: list[tuple[int, float]]) -> str:
    """``[(7, 0.971), (1, 0.018)]`` as ``"7 (97.1%), then 1 (1.8%)"``."""
    return ", then ".join(f"{digit} ({probability:.1%})" for digit, probability in predictions)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the digit model's top-3 guesses for image files.")
    parser.add_argument("files", nargs="+", type=Path, help="PNG, JPEG, GIF, BMP or WebP files, one digit each")
    parser.add_argument("-k", type=int, default=3, help="how many guesses (1-10); default 3")
    parser.add_argument("--weights", type=Path, help="a weights file for mnist_cnn (default: the augmented model)")
    args = parser.parse_intermixed_args(argv)
    if not 1 <= args.k <= 10:
        parser.error(f"-k must be from 1 to 10; got {args.k}")

    import torch

    from helpers.augment import ROBUST_WEIGHTS_PATH, trained_robust_cnn
    from helpers.core import pick_device
    from helpers.demo import top_k
    from helpers.models import mnist_cnn
    from helpers.picture import DigitImageError, judge, read_digit, read_image
    from helpers.training import load_weights

    torch.set_num_threads(1)  # a few small images: more threads only add overhead
    device = pick_device()
    if args.weights is not None:
        model = load_weights(mnist_cnn(), args.weights).to(device).eval()
    else:
        if not ROBUST_WEIGHTS_PATH.is_file():
            print("No data/mnist_cnn_robust.pt yet: training the augmented model first.", file=sys.stderr)
        model = trained_robust_cnn(device=device)
    failures = 0
    for path in args.files:
        try:
            prepared, readable, reason = read_digit(read_image(path.read_bytes()))
        except (OSError, DigitImageError) as problem:
            print(f"{path}: {problem}", file=sys.stderr)
            failures += 1
            continue
        predictions = top_k(model, prepared, max(args.k, 1))
        readable, reason = judge(readable, reason, predictions)
        print(f"{path}: {describe(predictions)}")
        if not readable:
            print(f"    not read as one digit: {reason}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
