"""helpers.animation: a FuncAnimation as small, self-contained HTML, figure closed."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from helpers.animation import animate


def _moving_dot():
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.set_xlim(0, 1)
    (dot,) = ax.plot([0], [0], "o")
    return fig, lambda t: dot.set_data([t], [t])


def test_animation_is_html_and_the_figure_is_closed():
    fig, draw = _moving_dot()
    player = animate(fig, draw, np.linspace(0, 1, 5))
    assert not plt.fignum_exists(fig.number)  # no duplicate still below the player
    assert player.frames == 5
    html = player._repr_html_()
    assert "<script" in html and html.count("data:image/png;base64") == 5
    assert "ffmpeg" not in html
    assert 0 < player.kilobytes < 100
    assert "5 frames" in repr(player)


def test_every_frame_is_drawn():
    fig, ax = plt.subplots(figsize=(2, 2))
    seen = []
    animate(fig, seen.append, 4)
    assert set(seen) == {0, 1, 2, 3}


def test_lower_dpi_is_smaller():
    sizes = []
    for dpi in (40, 80):
        fig, draw = _moving_dot()
        sizes.append(animate(fig, draw, 3, dpi=dpi).kilobytes)
    assert sizes[0] < sizes[1]


def test_bad_input_is_explained():
    with pytest.raises(TypeError, match="matplotlib Figure as fig; got Axes"):
        animate(plt.subplots()[1], print, 3)
    fig, draw = _moving_dot()
    with pytest.raises(ValueError, match="at least one frame; got 0"):
        animate(fig, draw, [])
