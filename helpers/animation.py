"""Animations that play anywhere: JupyterLab, Colab and exported HTML, offline, without ffmpeg.

Introduced in lesson 02 (the line moving onto the data). Each frame is drawn
with matplotlib and stored as a small PNG (reduced to a palette of a few dozen
colours, which line plots barely need) inside one self-contained piece of HTML:

* the first frame is a plain ``<img>``, so it shows before any script runs, and
  also where scripts never run (an untrusted notebook, GitHub, a printout);
* the controls (first, previous, play/pause, next, last, a frame slider) are
  HTML buttons with inline SVG icons, driven by a short inline script: nothing
  is fetched from the network, no font, no icon set, no library.

The figure is closed afterwards, so the notebook does not also show a
duplicate still of its last frame.
"""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import json
from collections.abc import Callable, Iterable
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from PIL import Image

LESSON = 2

__all__ = ["AnimationHTML", "animate"]

#: Colours kept per frame: anti-aliased lines and text on white need no more.
PALETTE_COLOURS = 64

_ids = itertools.count(1)

# 16x16 icons, drawn in the button's text colour.
_ICONS = {
    "first": '<path d="M3 3h2v10H3zM13 3v10L6 8z"/>',
    "previous": '<path d="M12 3v10L5 8z"/>',
    "play": '<path d="M4 2.5v11L13.5 8z"/>',
    "pause": '<path d="M4 3h3v10H4zM9 3h3v10H9z"/>',
    "next": '<path d="M4 3v10l7-5z"/>',
    "last": '<path d="M11 3h2v10h-2zM3 3v10l7-5z"/>',
}
_LABELS = {
    "first": "first frame",
    "previous": "previous frame",
    "play": "play",
    "next": "next frame",
    "last": "last frame",
}

# The player: finds its own <div> (the script's parent), reads the frames from the JSON
# block beside it, and wires the buttons. Written for any browser and for JupyterLab, where
# an output's scripts may run while the cell is off screen or before it is attached.
_PLAYER_JS = """
(function (root) {
  if (!root || root.getAttribute("data-ready")) { return; }
  var frames = JSON.parse(root.querySelector("script.course-animation-frames").textContent);
  var img = root.querySelector("img.course-animation-frame");
  var slider = root.querySelector("input.course-animation-slider");
  var counter = root.querySelector(".course-animation-counter");
  var play = root.querySelector("button[data-action=play]");
  var interval = Number(root.getAttribute("data-interval")) || 100;
  var loop = root.getAttribute("data-loop") === "1";
  var current = 0, timer = null;
  function show(i) {
    current = Math.max(0, Math.min(frames.length - 1, i));
    img.src = frames[current];
    img.alt = "frame " + (current + 1) + " of " + frames.length;
    slider.value = current;
    counter.textContent = (current + 1) + " / " + frames.length;
    root.setAttribute("data-frame", current);
  }
  function playing(on) {
    play.querySelector(".icon-play").style.display = on ? "none" : "";
    play.querySelector(".icon-pause").style.display = on ? "" : "none";
    play.setAttribute("aria-label", on ? "pause" : "play");
    play.title = on ? "pause" : "play";
  }
  function stop() { if (timer) { clearInterval(timer); timer = null; } playing(false); }
  function start() {
    if (current === frames.length - 1) { show(0); }
    timer = setInterval(function () {
      if (current < frames.length - 1) { show(current + 1); }
      else if (loop) { show(0); }
      else { stop(); }
    }, interval);
    playing(true);
  }
  root.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-action]");
    if (!button) { return; }
    var action = button.getAttribute("data-action");
    if (action === "play") { if (timer) { stop(); } else { start(); } return; }
    stop();
    if (action === "first") { show(0); }
    else if (action === "previous") { show(current - 1); }
    else if (action === "next") { show(current + 1); }
    else if (action === "last") { show(frames.length - 1); }
  });
  slider.addEventListener("input", function () { stop(); show(Number(slider.value)); });
  root.querySelector(".course-animation-controls").style.display = "flex";
  root.setAttribute("data-ready", "1");
})(document.currentScript ? document.currentScript.parentNode : document.getElementById("%(id)s"));
"""


class AnimationHTML:
    """The HTML of an animation; a notebook shows it as the player.

    Attributes
    ----------
    html : str
        The self-contained HTML: the first frame as an ``<img>``, the other
        frames as data, the controls and their inline script.
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


def _png(fig: Figure, dpi: float) -> tuple[str, tuple[int, int]]:
    """The figure as it is now: a palette PNG as a data URL, and its size in pixels."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    picture = Image.open(buffer).convert("RGB")
    small = io.BytesIO()
    picture.quantize(PALETTE_COLOURS, dither=Image.Dither.NONE).save(small, format="png", optimize=True)
    return "data:image/png;base64," + base64.b64encode(small.getvalue()).decode("ascii"), picture.size


def _button(action: str) -> str:
    icons = _svg(_ICONS[action], "icon-" + action)
    if action == "play":
        icons += _svg(_ICONS["pause"], "icon-pause", hidden=True)
    return (
        f'<button type="button" data-action="{action}" title="{_LABELS[action]}" '
        f'aria-label="{_LABELS[action]}" style="display:inline-flex;align-items:center;'
        "justify-content:center;width:30px;height:26px;padding:0;margin:0;cursor:pointer;"
        'color:#333;background:#f4f4f4;border:1px solid #bbb;border-radius:4px">'
        f"{icons}</button>"
    )


def _svg(path: str, name: str, hidden: bool = False) -> str:
    style = ' style="display:none"' if hidden else ""
    return (
        f'<svg class="{name}" viewBox="0 0 16 16" width="16" height="16" fill="currentColor" '
        f'aria-hidden="true"{style}>{path}</svg>'
    )


def _player(frames: list[str], size: tuple[int, int], interval: int, loop: bool) -> str:
    """The HTML of the player for these frames (data URLs)."""
    digest = hashlib.sha1("".join(frames).encode("ascii")).hexdigest()[:10]
    element_id = f"course-animation-{next(_ids)}-{digest}"
    width, height = size
    buttons = "".join(_button(action) for action in ("first", "previous", "play", "next", "last"))
    # "</" never appears in base64 or JSON of data URLs, but escape it anyway so the data
    # block cannot end the <script> early.
    data = json.dumps(frames).replace("</", "<\\/")
    return (
        f'<div class="course-animation" id="{element_id}" data-interval="{interval}" '
        f'data-loop="{int(loop)}" data-frames="{len(frames)}" data-frame="0" '
        'style="display:inline-block;font:13px sans-serif;color:#333">'
        f'<img class="course-animation-frame" src="{frames[0]}" width="{width}" height="{height}" '
        f'alt="frame 1 of {len(frames)}" style="display:block;max-width:100%;height:auto">'
        # Hidden until the script runs: where scripts do not run, the first frame stands alone.
        '<div class="course-animation-controls" style="display:none;align-items:center;gap:4px;'
        f'margin-top:4px">{buttons}'
        f'<input class="course-animation-slider" type="range" min="0" max="{len(frames) - 1}" '
        'value="0" step="1" aria-label="frame" style="flex:1;min-width:60px;margin:0 4px">'
        f'<span class="course-animation-counter" style="min-width:4.5em;text-align:right">'
        f"1 / {len(frames)}</span></div>"
        f'<script type="application/json" class="course-animation-frames">{data}</script>'
        f"<script>{_PLAYER_JS % {'id': element_id}}</script>"
        "</div>"
    )


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
        Resolution of each frame; 72 keeps a 40-frame line plot to a couple of hundred kB.
    loop : bool
        Start again from the first frame after the last, instead of stopping.

    Returns
    -------
    AnimationHTML
        Shown as the player when it is the last expression of a notebook cell;
        its first frame is visible before any script runs.
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
        pictures = []
        for frame in frame_list:
            draw(frame)
            pictures.append(_png(fig, dpi))
    finally:
        plt.close(fig)
    sizes = {size for _, size in pictures}
    if len(sizes) != 1:
        raise ValueError(f"every frame must have the same size in pixels; got {sorted(sizes)}.")
    html = _player([url for url, _ in pictures], sizes.pop(), interval, loop)
    return AnimationHTML(html, len(frame_list))
