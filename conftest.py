"""Test-wide settings: offline data and reproducible CPU arithmetic.

``tests.run_notebooks.ENVIRONMENT`` is put into the environment here, before
any test imports PyTorch, so the unit tests and the notebook kernels nbval
starts (they inherit this environment) run exactly as the committed notebooks
were executed: ``MNIST_OFFLINE=1`` makes ``helpers.data.load_mnist`` use the
bundled sample without touching the network, and the CPU pins make training
give the same weights on x86-64 machines with AVX2 (see that module).
"""

from tests.run_notebooks import apply_environment

apply_environment()
