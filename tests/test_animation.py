"""helpers.animation: small, self-contained HTML whose first frame shows without any script."""

from __future__ import annotations

import base64
import io
import re

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from helpers.animation import animate


def _moving_dot():
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    (dot,) = ax.plot([0], [0], "o")
    return fig, lambda t: dot.set_data([t], [t])


def _frames(html: str) -> list[Image.Image]:
    urls = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)
    return [Image.open(io.BytesIO(base64.b64decode(url))) for url in urls]


def test_first_frame_is_a_plain_image_before_any_script():
    fig, draw = _moving_dot()
    player = animate(fig, draw, np.linspace(0, 1, 5))
    assert not plt.fignum_exists(fig.number)  # no duplicate still below the player
    html = player._repr_html_()
    first_script = html.index("<script")
    image = re.search(r'<img class="course-animation-frame" src="data:image/png;base64,[^"]+"', html)
    assert image and image.start() < first_script, "the first frame must be an <img> with its picture in src"
    # One frame in the <img>, five in the player's data (the first again).
    assert html.count("data:image/png;base64,") == 6
    assert player.frames == 5 and "5 frames" in repr(player)


def test_nothing_comes_from_the_network():
    fig, draw = _moving_dot()
    html = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:", animate(fig, draw, 3).html)
    assert not re.search(r"(src|href)=\"(https?:)?//|@import|<link", html)
    assert "cdn" not in html.lower() and "font-awesome" not in html
    assert html.count("<svg") == 6, "five buttons with inline icons (play also holds pause)"


def test_frames_are_the_drawn_frames_small_and_the_same_size():
    fig, draw = _moving_dot()
    frames = _frames(animate(fig, draw, [0.1, 0.5, 0.9]).html)[1:]
    assert len(frames) == 3
    assert len({frame.size for frame in frames}) == 1
    pixels = [np.asarray(frame.convert("RGB")) for frame in frames]
    assert not np.array_equal(pixels[0], pixels[1]) and not np.array_equal(pixels[1], pixels[2])
    assert all(frame.mode == "P" for frame in frames), "frames are palette PNGs"


def test_every_frame_is_drawn_in_order():
    fig, ax = plt.subplots(figsize=(2, 2))
    seen = []
    animate(fig, seen.append, 4)
    assert seen == [0, 1, 2, 3]


def test_lesson_02_sized_animation_stays_small():
    # The lesson's animation: a 4 x 3 inch line fit over 30 points, 41 frames.
    rng = np.random.default_rng(0)
    x = np.linspace(0, 10, 30)
    y = 3 * x + 8 + rng.normal(0, 1, 30)
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.scatter(x, y, s=15)
    (line,) = ax.plot(x, -x + 1, "C1", lw=2)
    title = ax.set_title("")
    fig.tight_layout()

    def draw(frame):
        line.set_ydata((-1 + 0.1 * frame) * x + 1 + 0.2 * frame)
        title.set_text(f"step {5 * frame}: loss {40 - frame:.2f}")

    player = animate(fig, draw, 41)
    assert player.kilobytes < 300, f"{player.kilobytes:.0f} kB"


def test_lower_dpi_is_smaller():
    sizes = []
    for dpi in (40, 80):
        fig, draw = _moving_dot()
        sizes.append(animate(fig, draw, 3, dpi=dpi).kilobytes)
    assert sizes[0] < sizes[1]


def test_same_input_same_html():
    htmls = []
    for _ in range(2):
        fig, draw = _moving_dot()
        html = animate(fig, draw, 3).html
        htmls.append(re.sub(r"course-animation-\d+-", "course-animation-N-", html))
    assert htmls[0] == htmls[1], "re-executing a notebook must not change its animation's HTML"


def test_bad_input_is_explained():
    with pytest.raises(TypeError, match="matplotlib Figure as fig; got Axes"):
        animate(plt.subplots()[1], print, 3)
    fig, draw = _moving_dot()
    with pytest.raises(ValueError, match="at least one frame; got 0"):
        animate(fig, draw, [])
    fig, draw = _moving_dot()
    with pytest.raises(ValueError, match="interval and dpi must be positive"):
        animate(fig, draw, 3, interval=0)


@pytest.mark.browser
def test_player_in_a_browser_offline(tmp_path):
    """Without scripts the first frame shows; with them the buttons step and play, offline."""
    from tests.browser import chromium, offline_context, screenshot

    fig, draw = _moving_dot()
    page_file = tmp_path / "player.html"
    page_file.write_text(f"<!DOCTYPE html><html><body>{animate(fig, draw, np.linspace(0, 1, 6)).html}</body></html>")
    with chromium() as browser:
        for scripts in (False, True):
            context, requests = offline_context(browser, java_script_enabled=scripts)
            page = context.new_page()
            errors = []
            page.on("pageerror", lambda error, errors=errors: errors.append(str(error)))
            try:
                page.goto(page_file.as_uri())
                frame = page.locator("img.course-animation-frame")
                assert frame.evaluate("img => img.complete && img.naturalWidth > 0"), "first frame not shown"
                assert frame.bounding_box()["width"] > 0
                controls = page.locator(".course-animation-controls")
                if not scripts:
                    assert not controls.is_visible(), "without scripts there are no dead buttons"
                    continue
                assert controls.is_visible()
                icons = page.locator(".course-animation-controls button svg:visible")
                assert icons.count() == 5 and all(icons.nth(i).bounding_box()["width"] > 0 for i in range(5))
                first_src = frame.get_attribute("src")
                page.click("button[data-action=next]")
                assert page.inner_text(".course-animation-counter") == "2 / 6"
                assert frame.get_attribute("src") != first_src
                page.click("button[data-action=last]")
                assert page.inner_text(".course-animation-counter") == "6 / 6"
                page.click("button[data-action=play]")  # from the last frame, play starts again
                page.wait_for_function(
                    "document.querySelector('.course-animation').dataset.frame === '5'"
                    " && !document.querySelector('.icon-pause').checkVisibility()",
                    timeout=5000,
                )
                assert not errors and not requests, (errors, requests)
            except BaseException:
                screenshot(page, f"animation-player-scripts-{scripts}")
                raise
            finally:
                context.close()
