"""Is a cut's marker the marker? (docs/release.md §5, step 4)

A cut's marker frames are passed over by the pairing, so without a look of their own they
could show anything — the very footage the cut removed. Each marker frame is compared with
the card the cut table says (tools/release/cuts.py marker_card) on its background only:
every 16x16 block that lies, with a 16 px band around it, wholly on the card's flat grey
must be within the comparison's tolerance of that grey. The writing is not compared (its
anti-aliasing may differ between OpenCV builds; what it says is the record's cut anyway).
The marker's sound must be silent: RMS at most the comparison's floor, less two AAC frames
at each edge.
"""
from __future__ import annotations

import functools

import numpy as np

BLOCK_PX = 16
BAND_PX = 16


@functools.lru_cache(maxsize=16)
def _background(width: int, height: int, span, time_base) -> tuple[np.ndarray, int]:
    """(blocks wholly on the card's grey, with their band, as a rows x cols mask; the grey)."""
    import cv2
    from tools.release.cuts import MARKER_GREY, marker_card
    card = marker_card(width, height, span, time_base)
    grey = MARKER_GREY
    other = (card != grey).any(axis=2).astype(np.uint8)
    other = cv2.dilate(other, np.ones((2 * BAND_PX + 1, 2 * BAND_PX + 1), np.uint8))
    rows, cols = -(-height // BLOCK_PX), -(-width // BLOCK_PX)
    padded = np.ones((rows * BLOCK_PX, cols * BLOCK_PX), np.uint8)
    padded[:height, :width] = other
    touched = padded.reshape(rows, BLOCK_PX, cols, BLOCK_PX).max(axis=(1, 3))
    return touched == 0, grey


def frame_problem(rgb: np.ndarray, span, time_base, tolerance: float) -> str | None:
    """None if `rgb` is the marker card's background within `tolerance`; else what differs."""
    height, width = rgb.shape[:2]
    background, grey = _background(width, height, span, time_base)
    if not background.any():
        return None
    rows, cols = background.shape
    diff = np.abs(rgb.astype(np.int16) - grey)
    padded = np.zeros((rows * BLOCK_PX, cols * BLOCK_PX, 3), np.int16)
    padded[:height, :width] = diff
    means = padded.reshape(rows, BLOCK_PX, cols, BLOCK_PX, 3).mean(axis=(1, 3, 4))
    worst = float(means[background].max())
    if worst > tolerance:
        ys, xs = np.nonzero(background & (means > tolerance))
        return (f"is not the cut marker: its background differs at [{int(xs.min()) * BLOCK_PX}, "
                f"{int(ys.min()) * BLOCK_PX}] (block difference {worst:.1f} > {tolerance})")
    return None
