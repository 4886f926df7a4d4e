"""A tracked region follows what it covers (tools/release/tracking.py, docs/release.md §3)."""
from __future__ import annotations

import numpy as np

from tools.release.tracking import RegionTracker, tracker_version

W, H, SIZE = 320, 180, 40


def _scene(rng: np.random.Generator):
    """A textured card (a licence plate, say) moving right and down over a noisy background."""
    card = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    background = rng.integers(90, 140, (H, W, 3), dtype=np.uint8)
    for i in range(60):
        x, y = 20 + 3 * i, 30 + i
        frame = background.copy()
        frame[y:y + SIZE, x:x + SIZE] = card
        yield frame, (x, y, SIZE, SIZE)


def _iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / (aw * ah + bw * bh - w * h)


def test_the_mask_stays_on_a_moving_card():
    rng = np.random.default_rng(7)
    scene = list(_scene(rng))
    tracker = RegionTracker(scene[0][1])
    boxes = [tracker.box_for(frame) for frame, _ in scene]
    on_target = [_iou(box, truth) >= 0.5 for box, (_, truth) in zip(boxes, scene)]
    assert boxes[0] == scene[0][1]
    assert sum(on_target) >= 0.95 * len(scene), boxes
    assert _iou(boxes[-1], scene[-1][1]) >= 0.5          # it followed, not stayed put
    assert "TrackerCSRT" in tracker_version()


def test_a_target_that_leaves_keeps_the_last_box():
    rng = np.random.default_rng(3)
    scene = list(_scene(rng))[:10]
    tracker = RegionTracker(scene[0][1])
    for frame, _ in scene:
        tracker.box_for(frame)
    empty = np.full((H, W, 3), 0, np.uint8)
    boxes = [tracker.box_for(empty) for _ in range(5)]
    assert all(w >= 1 and h >= 1 for _, _, w, h in boxes)


def test_a_wide_frame_is_tracked_scaled_down_and_the_box_given_in_its_own_pixels():
    """At 1280 px the tracker runs on 640 px frames (tracking.TRACK_WIDTH_PX); the boxes it
    gives are in the frame's own pixels and still on the card."""
    rng = np.random.default_rng(11)
    card = rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)
    background = rng.integers(90, 140, (720, 1280, 3), dtype=np.uint8)
    tracker = RegionTracker((100, 200, 80, 80))
    hits = 0
    for i in range(30):
        x, y = 100 + 8 * i, 200 + 3 * i
        frame = background.copy()
        frame[y:y + 80, x:x + 80] = card
        hits += _iou(tracker.box_for(frame), (x, y, 80, 80)) >= 0.5
    assert hits >= 28
