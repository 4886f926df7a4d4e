"""Is what the record says is hidden hidden in the release? (docs/release.md §5, step 4)

The comparison outside the masks lets anything inside them differ — including nothing: a
"release" that is the unredacted original re-encoded would pass it. So each declared box
is looked at in the release itself, on the pixels it owns (where boxes overlap, the one
applied last: regions in plan order, then faces), 2 px in from every edge (the codec rings
there):
- mask: the pixels' mean must be at most MASK_LEVEL_MAX (black is 0; re-encoded, 0-2);
- blur: the box's mosaic blocks (docs/release.md §3, from its top-left corner) must be
  flat: the mean, over blocks, of each block's mean absolute deviation from its median
  colour must be at most BLUR_DETAIL_MAX (re-encoded mosaics: at most 0.9 measured;
  the same boxes unblurred: 8 or more).
An area that was flat to begin with passes either way: there was nothing in it to hide.
"""
from __future__ import annotations

import numpy as np

from tools.release.frame_ops import BLOCKS_ACROSS, MIN_BLOCK_PX

MASK_LEVEL_MAX = 10.0
BLUR_DETAIL_MAX = 3.0
EDGE_PX = 2


def unhidden(frame: np.ndarray, boxes: list) -> list[tuple[list, float]]:
    """The boxes ([x, y, w, h, style, source]) not hidden in `frame` (RGB), with their score."""
    height, width = frame.shape[:2]
    owner = np.full((height, width), -1, np.int32)
    for number, (x, y, w, h, *_) in enumerate(boxes):
        owner[max(0, y):max(0, y + h), max(0, x):max(0, x + w)] = number
    found = []
    for number, box in enumerate(boxes):
        x, y, w, h, style = box[:5]
        score = (_mask_level if style == "mask" else _blur_detail)(frame, owner, number, x, y, w, h)
        limit = MASK_LEVEL_MAX if style == "mask" else BLUR_DETAIL_MAX
        if score is not None and score > limit:
            found.append((box, score))
    return found


def _mask_level(frame, owner, number, x, y, w, h) -> float | None:
    inner = _inner(owner, number, x, y, w, h)
    if inner is None:
        return None
    ys, xs, own = inner
    pixels = frame[ys, xs][own]
    return float(pixels.mean()) if pixels.size else None


def _blur_detail(frame, owner, number, x, y, w, h) -> float | None:
    block = max(MIN_BLOCK_PX, min(w, h) // BLOCKS_ACROSS)
    details = []
    for by in range(y, y + h, block):
        for bx in range(x, x + w, block):
            inner = _inner(owner, number, bx, by, min(block, x + w - bx), min(block, y + h - by))
            if inner is None:
                continue
            ys, xs, own = inner
            if own.mean() < 0.5:         # mostly under a box applied after this one
                continue
            cell = frame[ys, xs][own].astype(np.int16)
            details.append(float(np.abs(cell - np.median(cell, axis=0)).mean()))
    return float(np.mean(details)) if details else None


def _inner(owner, number, x, y, w, h):
    """The slices of a rectangle less EDGE_PX on each side, clipped to the frame, and which
    of its pixels `number` owns; None if nothing is left."""
    height, width = owner.shape
    x0, y0 = max(0, x + EDGE_PX), max(0, y + EDGE_PX)
    x1, y1 = min(width, x + w - EDGE_PX), min(height, y + h - EDGE_PX)
    if x1 <= x0 or y1 <= y0:
        return None
    ys, xs = slice(y0, y1), slice(x0, x1)
    own = owner[ys, xs] == number
    return (ys, xs, own) if own.any() else None
