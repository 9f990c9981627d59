"""Test-wide settings: offline data.

MNIST_OFFLINE=1 makes `helpers.data.load_mnist` use the bundled sample without
touching the network, here and in the notebook kernels nbval starts (they
inherit this environment), so checked outputs always come from the sample.
"""

import os

os.environ["MNIST_OFFLINE"] = "1"
