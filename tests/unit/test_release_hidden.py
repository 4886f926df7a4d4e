"""Is a declared box hidden in the release itself? (tools/release/hidden.py)"""
from __future__ import annotations

import numpy as np
import pytest

from tools.release import frame_ops
from tools.release.hidden import unhidden


@pytest.fixture
def frame():
    return np.random.default_rng(5).integers(0, 256, (180, 320, 3), dtype=np.uint8)


def test_a_mosaic_and_a_mask_are_hidden_and_the_raw_picture_is_not(frame):
    blur, mask = [40, 30, 90, 60, "blur", "region"], [200, 100, 50, 40, "mask", "face"]
    raw = frame.copy()
    assert [box for box, _ in unhidden(raw, [blur, mask])] == [blur, mask]
    frame_ops.apply(frame, tuple(blur[:4]), "blur")
    frame_ops.apply(frame, tuple(mask[:4]), "mask")
    assert unhidden(frame, [blur, mask]) == []


def test_overlapping_boxes_are_judged_on_the_pixels_each_owns(frame):
    """A mask under a later blur, and a blur under a later mask: each hidden as applied."""
    first, second = [50, 50, 100, 80, "mask", "region"], [100, 80, 120, 90, "blur", "face"]
    frame_ops.apply(frame, tuple(first[:4]), "mask")
    frame_ops.apply(frame, tuple(second[:4]), "blur")
    assert unhidden(frame, [first, second]) == []


def test_a_box_with_nothing_in_it_to_hide_passes_either_way():
    flat = np.full((100, 100, 3), 90, np.uint8)
    assert unhidden(flat, [[10, 10, 50, 50, "blur", "region"]]) == []
    assert [b for b, _ in unhidden(flat, [[10, 10, 50, 50, "mask", "region"]])]   # grey is not black


def test_boxes_too_small_to_judge_inside_their_edges_are_passed_over(frame):
    """Less than the 2 px edge band on each side leaves nothing to look at (not a failure)."""
    assert unhidden(frame, [[0, 0, 3, 3, "blur", "region"], [318, 178, 10, 10, "mask", "region"]]) == []
