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


def tracker_version() -> str:
    import cv2
    return f"opencv-contrib-python {cv2.__version__} Tracker{TRACKER_NAME}"


class RegionTracker:
    def __init__(self, box: tuple[int, int, int, int]):
        self.box = tuple(int(v) for v in box)
        self.lost_frames = 0
        self._tracker = None

    def box_for(self, rgb: np.ndarray) -> tuple[int, int, int, int]:
        """The box for this frame: the plan's box on the first call, the tracker's after."""
        import cv2
        if self._tracker is None:
            self._tracker = cv2.TrackerCSRT.create()
            self._tracker.init(rgb, self.box)
            return self.box
        found, box = self._tracker.update(rgb)
        if found:
            x, y, w, h = (int(round(v)) for v in box)
            if w >= 1 and h >= 1:
                self.box = (x, y, w, h)
                return self.box
        self.lost_frames += 1
        return self.box
