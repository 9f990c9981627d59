"""The course's helper package: code the lessons use more than once, unit-tested.

Each module says which lesson introduced it:

- ``helpers.core`` (00): device choice (``COURSE_DEVICE``), seeds, ``to_input``, the validation split, mixed precision.
- ``helpers.data`` (00): ``load_mnist``, full set (mirrors tried in turn) or bundled sample, md5-verified.
- ``helpers.check`` (00): the environment pre-flight, ``python -m helpers.check``.
- ``helpers.filters`` (01): hand-made edge filters, correlation, max pooling, fingerprints.
- ``helpers.plots`` (01): digits, signed filters, confusion matrices, sliders with a static fallback.
- ``helpers.exercises`` (01): the exercises' self-checks.
- ``helpers.linefit``, ``helpers.animation`` (02): fitting a line by gradient descent, animations.
- ``helpers.learnable`` (03): the lesson-01 pipeline with learnable filters.
- ``helpers.layers``, ``helpers.experiments`` (04): CNN layers in numpy, forward and backward;
  the sigmoid-vs-ReLU experiment.
- ``helpers.models``, ``helpers.training`` (05): the lesson's CNN, a fast training loop, saved weights.
- ``helpers.activations``, ``helpers.explain``, ``helpers.visualize`` (06): feature maps, top patches,
  optimised inputs, saliency (``visualize`` re-exports the lesson's names).
- ``helpers.features`` (07): deep features (``embed``) and image search (``nearest``).
- ``helpers.picture`` (08): reading a picture and preparing it MNIST-style (``read_digit``: photos, pages,
  screenshots; an honest "cannot read this").
- ``helpers.demo``, ``helpers.augment``, ``helpers.serve``, ``helpers.predict`` (08): the gallery and widgets,
  augmentation, the web service and the terminal prediction.
- ``helpers.semisupervised`` (09): learning from 50 labels and the unlabelled images (pseudo-labels, FixMatch).
"""
