"""The ``gpu`` suite: every helper test and every notebook again, on CUDA.

``pytest -m gpu`` runs it. With a CUDA GPU it starts one ``pytest`` process
over ``tests/`` and ``notebooks/`` with ``COURSE_DEVICE=cuda`` (so
``pick_device()`` and so every lesson, model and check use the GPU), without the
CPU pins and with a fresh data folder, and fails when anything there fails.
Without CUDA it is skipped, saying why. ``python -m tests.run_notebooks --device
cuda`` re-executes the notebooks the same way.
"""

from __future__ import annotations

import pytest
import torch

from tests.any_machine import run_suite


@pytest.mark.gpu
def test_every_helper_test_and_notebook_on_cuda(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("gpu suite: no CUDA GPU on this machine (PyTorch sees none); nothing to run")
    outcome = run_suite({"COURSE_DEVICE": "cuda"}, ["tests", "notebooks"], tmp_path, ["-m", "not gpu and not browser"])
    print(f"gpu suite: {outcome['summary']} in {outcome['seconds']:.0f} s")
    assert outcome["passed"], outcome["output"][-6000:]
