"""A region that follows what it covers (`track = true`, docs/release.md §3).

OpenCV's CSRT tracker (opencv-contrib): the most accurate of OpenCV's model-free
trackers, and it keeps the box's size, which is what a mask over a licence plate or a
house number needs. It starts on the plan's box in the region's first frame and is
updated on every frame after; where it loses the target the last box it had is kept
(a tracker that guesses elsewhere would hide the wrong thing and show the right one).
Every frame's box as applied goes into the record's masks, so a reviewer and a
verifier see exactly where the mask went.
"""
from __future__ import annotations

import numpy as np

TRACKER_NAME = "CSRT"
# Frames wider than this are scaled down for the tracker (the box scaled back): CSRT took
# 39 ms a 1280x720 frame for a 200x150 box, a third of a 30 fps release's time budget.
TRACK_WIDTH_PX = 640


def tracker_version() -> str:
    import cv2
    return f"opencv-contrib-python {cv2.__version__} Tracker{TRACKER_NAME} at width {TRACK_WIDTH_PX}"


class RegionTracker:
    def __init__(self, box: tuple[int, int, int, int]):
        self.box = tuple(int(v) for v in box)
        self.lost_frames = 0
        self._tracker = None
        self._scale = 1.0

    def box_for(self, rgb: np.ndarray) -> tuple[int, int, int, int]:
        """The box for this frame: the plan's box on the first call, the tracker's after."""
        import cv2
        small = rgb
        if rgb.shape[1] > TRACK_WIDTH_PX:
            self._scale = rgb.shape[1] / TRACK_WIDTH_PX
            small = cv2.resize(rgb, (TRACK_WIDTH_PX, round(rgb.shape[0] / self._scale)), interpolation=cv2.INTER_AREA)
        if self._tracker is None:
            self._tracker = cv2.TrackerCSRT.create()
            x, y, w, h = (v / self._scale for v in self.box)
            self._tracker.init(small, (round(x), round(y), max(1, round(w)), max(1, round(h))))
            return self.box
        found, box = self._tracker.update(small)
        if found:
            x, y, w, h = (int(round(v * self._scale)) for v in box)
            if w >= 1 and h >= 1:
                self.box = (x, y, w, h)
                return self.box
        self.lost_frames += 1
        return self.box
