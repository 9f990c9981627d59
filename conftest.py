"""Test-wide settings: offline data, and (by default) pinned CPU arithmetic.

``MNIST_OFFLINE=1`` is set unless the environment already says otherwise, so
``helpers.data.load_mnist`` uses the bundled sample without touching the network
(the ``full`` suite sets ``MNIST_OFFLINE=0`` for its notebook kernels). ``tests.run_notebooks.ENVIRONMENT``
(the CPU pins) is put into the environment here, before any test imports
PyTorch, so that the unit tests and the notebook kernels nbval starts run as the
committed notebooks were executed. The tests do not depend on the pins: with
``COURSE_PINS=0`` they run on the machine's own kernels and threads, and
``python -m tests.any_machine`` runs them that way under several arithmetic
settings (see that module).
"""

import os

from tests.run_notebooks import apply_environment

os.environ.setdefault("MNIST_OFFLINE", "1")
if os.environ.get("COURSE_PINS", "1") != "0":
    apply_environment()
