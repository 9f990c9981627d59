"""What a trained CNN learned: lesson 06's helpers in one place.

Introduced in lesson 06 (``06_visualizing_filters.ipynb``), which imports this
module as ``V``. The code lives in modules split by idea:

* ``helpers.activations``: what a layer computes and which inputs excite it
  (``conv_layers``, ``feature_maps``, ``receptive_field``, ``top_units``,
  ``top_patches``, ``channel_activation``, ``cosine_similarity``,
  ``to_pixels``, ``pixel_range``);
* ``helpers.explain``: what an optimised input or a saliency map shows
  (``maximize_activation``, ``saliency`` with SmoothGrad);
* ``helpers.plots``: the figures, beside the other lessons' pictures
  (``show_patches``, ``show_feature_maps``, ``slider_explorer``).

A *layer* is a name from ``model.named_modules()`` and its activation is that
module's output (for a conv layer: before its ReLU). Images may be uint8 arrays
(``(N, 28, 28)`` or one ``(28, 28)``) or model inputs ``(N, 1, 28, 28)``.
"""

from __future__ import annotations

from helpers.activations import (
    channel_activation,
    conv_layers,
    cosine_similarity,
    feature_maps,
    pixel_range,
    receptive_field,
    to_pixels,
    top_patches,
    top_units,
)
from helpers.explain import maximize_activation, saliency
from helpers.plots import show_feature_maps, show_patches

LESSON = 6

__all__ = [
    "channel_activation",
    "conv_layers",
    "cosine_similarity",
    "feature_maps",
    "maximize_activation",
    "pixel_range",
    "receptive_field",
    "saliency",
    "show_feature_maps",
    "show_patches",
    "to_pixels",
    "top_patches",
    "top_units",
]
