"""Pure frame layout for :mod:`herexp.video`: labels, padding, tile grids, GIF frames.

Works on ``(H, W, 3) uint8`` numpy frames only (no MuJoCo, no files), so it is tested on
synthetic frames in milliseconds. A labelled tile has a dark strip at the top with one or
two lines of text (config, ranking) and a coloured bar at the bottom with the episode's
outcome: green for success, red for failure. Success is only known when an episode ends,
so every frame of an episode is labelled with its final outcome.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

Frame = np.ndarray  # (H, W, 3) uint8
SUCCESS_RGB = (25, 150, 55)
FAIL_RGB = (190, 35, 35)
NEUTRAL_RGB = (60, 60, 60)
_STRIP_ALPHA = 0.65  # the top strip darkens the scene; the scene stays visible through it


def font(height: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's bundled font at ``height`` px (scalable since Pillow 10.1, bitmap before)."""
    try:
        return ImageFont.load_default(size=height)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def _fit(draw: ImageDraw.ImageDraw, text: str, fnt: ImageFont.ImageFont | ImageFont.FreeTypeFont,
         width: int) -> str:
    """``text`` cut with an ellipsis so it fits in ``width`` pixels."""
    if draw.textlength(text, font=fnt) <= width:
        return text
    while text and draw.textlength(text + "…", font=fnt) > width:
        text = text[:-1]
    return text + "…"


def label_frame(frame: Frame, lines: Sequence[str], outcome: str,
                success: bool | None) -> Frame:
    """A copy of ``frame`` with ``lines`` at the top and ``outcome`` on a coloured bottom bar.

    ``success`` picks the bar colour: True green, False red, None grey (outcome unknown).
    Text size scales with the tile width (12 px at 240 px).
    """
    h, w = frame.shape[:2]
    size = max(8, w // 20)
    fnt, pad = font(size), max(2, size // 4)
    line_h = size + pad
    out = frame.copy()
    strip = pad + line_h * len(lines)
    if lines:  # darken the top strip in numpy (PIL has no alpha on an RGB image)
        out[:strip] = (out[:strip] * (1 - _STRIP_ALPHA)).astype(np.uint8)
    img = Image.fromarray(out)
    draw = ImageDraw.Draw(img)
    for i, text in enumerate(lines):
        draw.text((pad, pad + i * line_h), _fit(draw, text, fnt, w - 2 * pad), fill=(255, 255, 255), font=fnt)
    colour = NEUTRAL_RGB if success is None else SUCCESS_RGB if success else FAIL_RGB
    draw.rectangle((0, h - line_h - pad, w, h), fill=colour)
    draw.text((pad, h - line_h), _fit(draw, outcome, fnt, w - 2 * pad), fill=(255, 255, 255), font=fnt)
    return np.asarray(img)


def outcome_text(seed: int, success: bool) -> str:
    """The bottom-bar text of an evaluation episode: ``episode seed 1000000: SUCCESS``."""
    return f"episode seed {seed}: {'SUCCESS' if success else 'FAIL'}"


def label_episode(frames: Sequence[Frame], lines: Sequence[str], seed: int, success: bool) -> list[Frame]:
    """Label every frame of one episode with its final outcome."""
    text = outcome_text(seed, success)
    return [label_frame(f, lines, text, success) for f in frames]


def pad_episodes(episodes: Sequence[Sequence[Frame]], length: int | None = None) -> list[list[Frame]]:
    """Make every episode ``length`` frames long (default: the longest) by repeating its last frame."""
    if any(len(e) == 0 for e in episodes):
        raise ValueError("an episode has no frames")
    n = length if length is not None else max(len(e) for e in episodes)
    return [list(e[:n]) + [e[-1]] * (n - len(e)) for e in episodes]


def grid_cols(n_tiles: int) -> int:
    """Columns of a near-square grid: 1 -> 1, 2 -> 2, 4 -> 2x2, 6 -> 3x2, 9 -> 3x3."""
    return max(1, math.ceil(math.sqrt(n_tiles)))


def tile(frames: Sequence[Frame], cols: int, gap: int = 2) -> Frame:
    """One frame holding ``frames`` (all the same shape) row-major in a grid of ``cols`` columns,
    separated by ``gap`` black pixels; empty cells stay black."""
    h, w, c = frames[0].shape
    if any(f.shape != (h, w, c) for f in frames):
        raise ValueError(f"tiles must share one shape, got {sorted({f.shape for f in frames})}")
    rows = math.ceil(len(frames) / cols)
    out = np.zeros((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, c), dtype=np.uint8)
    for i, f in enumerate(frames):
        r, k = divmod(i, cols)
        out[r * (h + gap):r * (h + gap) + h, k * (w + gap):k * (w + gap) + w] = f
    return out


def grid_video(episodes: Sequence[Sequence[Frame]], cols: int, gap: int = 2) -> list[Frame]:
    """Episodes played simultaneously: frame t tiles frame t of every (padded) episode."""
    padded = pad_episodes(episodes)
    return [tile([e[t] for e in padded], cols, gap) for t in range(len(padded[0]))]


def pad_to_multiple(frame: Frame, multiple: int = 16) -> Frame:
    """Pad bottom/right with black to a multiple of ``multiple`` px (H.264 macro blocks)."""
    h, w = frame.shape[:2]
    ph, pw = -h % multiple, -w % multiple
    if not ph and not pw:
        return frame
    return np.pad(frame, ((0, ph), (0, pw), (0, 0)))


def gif_frames(frames: Sequence[Frame], max_width: int = 320, every: int = 2) -> list[Image.Image]:
    """Every ``every``-th frame, downscaled to at most ``max_width`` px wide: a small GIF."""
    picked = list(frames[::every])
    h, w = picked[0].shape[:2]
    scale = min(1.0, max_width / w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return [Image.fromarray(f).resize(size, Image.Resampling.BILINEAR) if scale < 1 else Image.fromarray(f)
            for f in picked]
