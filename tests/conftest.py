"""Unit-test settings: plots are drawn off-screen and closed after each test; the ``full`` suite
runs only when asked for (``pytest -m full`` or ``COURSE_FULL=1``): it takes many minutes."""

import os

import matplotlib
import matplotlib.pyplot as plt
import pytest

matplotlib.use("Agg")


def pytest_collection_modifyitems(config, items):
    asked = "full" in (config.getoption("-m") or "") or os.environ.get("COURSE_FULL", "") not in ("", "0")
    if asked:
        return
    skip = pytest.mark.skip(reason="full suite: every lesson on 60,000 images; run it with pytest -m full")
    for item in items:
        if "full" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")
