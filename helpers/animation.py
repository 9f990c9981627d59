"""Animations that play anywhere: JupyterLab, Colab and exported HTML, without ffmpeg.

Introduced in lesson 02 (the line moving onto the data). A matplotlib
``FuncAnimation`` is rendered with ``to_jshtml()``: every frame becomes a small
PNG embedded in a self-contained HTML player, so nothing beyond matplotlib is
needed. The figure is closed afterwards, so the notebook does not also show
a duplicate still of its last frame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
from matplotlib.animation import FuncAnimation
from matplotlib.figure import Figure

LESSON = 2

__all__ = ["animate"]


class AnimationHTML:
    """The HTML of an animation; a notebook shows it as the player.

    Attributes
    ----------
    html : str
        The self-contained HTML (JavaScript player with the frames embedded).
    frames : int
        How many frames it holds.
    """

    def __init__(self, html: str, frames: int) -> None:
        self.html = html
        self.frames = frames

    @property
    def kilobytes(self) -> float:
        """Size of the HTML in kB (what it adds to the notebook)."""
        return len(self.html.encode("utf-8")) / 1000

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return f"<animation: {self.frames} frames, {self.kilobytes:.0f} kB of HTML>"


def animate(
    fig: Figure,
    draw: Callable[[Any], Any],
    frames: int | Iterable[Any],
    *,
    interval: int = 100,
    dpi: float = 72,
    loop: bool = False,
) -> AnimationHTML:
    """Turn a figure and a drawing function into a small HTML animation, then close the figure.

    Parameters
    ----------
    fig : Figure
        The figure to animate. Keep it modest (a few inches) so the frames stay small.
    draw : callable
        ``draw(frame)`` updates the figure's artists for one frame (e.g. with
        ``line.set_data(...)``); its return value is ignored.
    frames : int or iterable
        The number of frames (``draw`` gets 0, 1, ...) or the values to pass, one per frame.
    interval : int
        Milliseconds between frames.
    dpi : float
        Resolution of each frame; 72 keeps a 40-frame line plot to a few hundred kB.
    loop : bool
        Start the player in "loop" mode instead of "play once".

    Returns
    -------
    AnimationHTML
        Shown as the player when it is the last expression of a notebook cell.
    """
    if not isinstance(fig, Figure):
        raise TypeError(f"animate expects a matplotlib Figure as fig; got {type(fig).__name__}.")
    if not callable(draw):
        raise TypeError(f"animate expects a function draw(frame); got {type(draw).__name__}.")
    frame_list = list(range(frames)) if isinstance(frames, int) else list(frames)
    if not frame_list:
        raise ValueError("animate needs at least one frame; got 0.")
    if interval <= 0 or dpi <= 0:
        raise ValueError(f"interval and dpi must be positive; got interval={interval}, dpi={dpi}.")
    try:
        animation = FuncAnimation(
            fig, draw, frames=frame_list, interval=interval, blit=False, repeat=False, cache_frame_data=False
        )
        with mpl.rc_context({"savefig.dpi": dpi, "animation.frame_format": "png"}):
            html = animation.to_jshtml(default_mode="loop" if loop else "once")
    finally:
        plt.close(fig)
    return AnimationHTML(html, len(frame_list))
