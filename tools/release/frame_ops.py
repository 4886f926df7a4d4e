"""What a redaction does to one frame's pixels and one span of audio (docs/release.md §3).

"blur" is a coarse mosaic, not a Gaussian blur: a Gaussian can be partly undone by
deconvolution, while a block of one averaged colour keeps nothing finer than the block.
The block edge is a sixth of the box's shorter side, at least 8 px, so a face is about
six blocks across whatever its size. "mask" is solid black.
"""
from __future__ import annotations

import numpy as np

MIN_BLOCK_PX = 8
BLOCKS_ACROSS = 6


def clip_box(box: tuple[int, int, int, int], width: int, height: int) -> tuple[int, int, int, int] | None:
    """The part of `box` inside the frame, or None if nothing is."""
    x, y, w, h = box
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(width, x + w), min(height, y + h)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1 - x0, y1 - y0


def mosaic(frame: np.ndarray, box: tuple[int, int, int, int]) -> None:
    """Replace `box` (x, y, w, h) of an H x W x 3 uint8 frame with block averages, in place."""
    x, y, w, h = box
    block = max(MIN_BLOCK_PX, min(w, h) // BLOCKS_ACROSS)
    region = frame[y:y + h, x:x + w]
    for by in range(0, h, block):
        for bx in range(0, w, block):
            cell = region[by:by + block, bx:bx + block]
            cell[...] = cell.reshape(-1, cell.shape[-1]).mean(axis=0).astype(np.uint8)


def mask(frame: np.ndarray, box: tuple[int, int, int, int]) -> None:
    x, y, w, h = box
    frame[y:y + h, x:x + w] = 0


def apply(frame: np.ndarray, box: tuple[int, int, int, int], style: str) -> tuple[int, int, int, int] | None:
    """Hide `box` in `frame` in the given style; returns the box as applied (clipped), or
    None if it lies outside the frame."""
    height, width = frame.shape[:2]
    clipped = clip_box(box, width, height)
    if clipped is not None:
        (mosaic if style == "blur" else mask)(frame, clipped)
    return clipped


def expand(box: tuple[int, int, int, int], margin_fraction: float) -> tuple[int, int, int, int]:
    """`box` grown by margin_fraction of its size on every side (a face's hair, ears, chin)."""
    x, y, w, h = box
    dx, dy = round(w * margin_fraction), round(h * margin_fraction)
    return x - dx, y - dy, w + 2 * dx, h + 2 * dy


def silence(samples: np.ndarray, first: int, last: int) -> None:
    """Zero samples [first, last) of a channels x samples float array, in place."""
    samples[:, max(0, first):max(0, last)] = 0.0


def tone(samples: np.ndarray, first: int, last: int, rate_hz: int, tone_hz: float, start_index: int) -> None:
    """Replace samples [first, last) with a sine at tone_hz (-12 dBFS); `start_index` is the
    block's first sample in the stream, so the tone runs on without clicks between blocks."""
    first, last = max(0, first), max(0, last)
    if last <= first:
        return
    n = np.arange(start_index + first, start_index + last)
    samples[:, first:last] = 0.25 * np.sin(2 * np.pi * tone_hz * n / rate_hz)
