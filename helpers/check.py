"""Environment check: the instructor's pre-flight before a live demo.

Introduced in lesson 00. Run it in a notebook (``helpers.check.run_checks()``)
or from a terminal::

    python -m helpers.check

It says which Python, PyTorch and torchvision are installed, which device the
lessons will use, which copy of MNIST is in use and whether its files verify,
and whether widgets can render. In Colab it also insists on what Colab needs: a
GPU runtime, and ipywidgets 7 (Colab draws no ipywidgets 8 widgets). The exit
code is 0 when everything needed works.
"""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass

LESSON = 0

__all__ = ["COLAB_WIDGETS_FIX", "Check", "environment_checks", "in_colab", "run_checks"]


@dataclass(frozen=True)
class Check:
    """One line of the pre-flight: what was checked, whether it is fine, and what we saw."""

    name: str
    ok: bool
    detail: str

    def __str__(self) -> str:
        return f"{'OK ' if self.ok else 'FIX'}  {self.name:<12} {self.detail}"


#: What fixes ipywidgets 8 in Colab: Colab's own widget manager draws ipywidgets 7 only.
COLAB_WIDGETS_FIX = '!pip install --quiet "ipywidgets>=7.7,<8"'


def in_colab() -> bool:
    """True inside Google Colab (its ``google.colab`` module is loaded)."""
    return "google.colab" in sys.modules


def _device_check() -> Check:
    import os

    import torch

    from helpers.core import DEVICE_VARIABLE, amp_dtype, pick_device

    try:
        device = pick_device()
    except (ValueError, RuntimeError) as error:
        return Check("device", False, str(error))
    forced = f" ({DEVICE_VARIABLE}={os.environ[DEVICE_VARIABLE]})" if os.environ.get(DEVICE_VARIABLE) else ""
    if device.type == "cuda":
        capability = torch.cuda.get_device_capability(device)
        dtype = amp_dtype("cuda", capability)
        precision = str(dtype).removeprefix("torch.")
        name = torch.cuda.get_device_name(device)
        detail = f"GPU: {name}, compute capability {capability[0]}.{capability[1]}, mixed precision {precision}"
        return Check("device", True, f"{detail} (lessons will use it){forced}")
    if device.type == "mps":
        return Check("device", True, f"Apple GPU (MPS) (lessons will use it){forced}")
    if in_colab() and not forced:
        return Check(
            "device",
            False,
            "CPU only: this Colab runtime has no GPU. Choose Runtime > Change runtime type > "
            "T4 GPU (or any GPU), save, then run the notebook again from the top.",
        )
    where = "CPU" if forced else "CPU only: no GPU found"
    return Check("device", True, f"{where}; every lesson still runs, training is slower.{forced}")


def _mnist_check() -> Check:
    import contextlib
    import io

    from helpers.data import MnistFileError, load_mnist

    said = io.StringIO()
    try:
        with contextlib.redirect_stdout(said):
            load_mnist()
    except MnistFileError as error:
        return Check("MNIST", False, str(error))
    return Check("MNIST", True, said.getvalue().strip().removeprefix("MNIST "))


def _widgets_check() -> Check:
    try:
        import ipywidgets
    except ImportError:
        return Check("widgets", False, "ipywidgets is not installed: sliders show as static figures only.")
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    version = ipywidgets.__version__
    if in_colab() and int(version.split(".")[0]) >= 8:
        return Check(
            "widgets",
            False,
            f"ipywidgets {version} does not render in Colab (it draws version 7 only): run "
            f"{COLAB_WIDGETS_FIX}, then Runtime > Restart session, and run the notebook again.",
        )
    where = "in this notebook" if shell is not None and "Kernel" in type(shell).__name__ else "in JupyterLab/Colab"
    return Check("widgets", True, f"ipywidgets {version}: sliders will render {where}.")


def environment_checks() -> list[Check]:
    """Run every check and return the results (nothing is printed)."""
    import torch
    import torchvision

    checks = [
        Check("Python", sys.version_info >= (3, 11), f"{platform.python_version()} (3.11 or newer needed)"),
        Check("PyTorch", True, torch.__version__),
        Check("torchvision", True, torchvision.__version__),
        _device_check(),
        _mnist_check(),
        _widgets_check(),
    ]
    return checks


def run_checks() -> bool:
    """Print the pre-flight, one line per check; return True when all are fine."""
    checks = environment_checks()
    for check in checks:
        print(check)
    ready = all(check.ok for check in checks)
    print("Ready." if ready else "Fix the lines marked FIX before the lesson.")
    return ready


if __name__ == "__main__":
    sys.exit(0 if run_checks() else 1)
