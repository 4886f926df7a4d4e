"""Cuts: time ranges left out of a release, with a visible marker in their place
(docs/release.md §3).

A cut removes the original's frames whose timestamps fall in [start_s, end_s) and puts
CUT_MARKER_S of marker frames (a card that says what was cut and why) where they were;
everything after moves by the difference. The sound follows the pictures: the samples
of the removed frames' time are left out and the marker is silent. The table of where
each cut lies in both files is computed from the plan and the original's frame
timestamps alone, so a verifier recomputes it from the same inputs rather than taking
the record's word for it.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from tools.release.plan import Cut

CUT_MARKER_S = 2.0      # long enough to read the card at normal speed
MARKER_GREY = 40        # the card's background, (40, 40, 40): dark, not black (a mask is black)


@dataclass(frozen=True)
class CutSpan:
    cut: Cut
    removed_first_pts: int     # the first original frame left out (the next kept one if none is)
    removed_end_pts: int       # the first original frame kept after the cut (the event's end if none)
    marker_first_pts: int      # the marker's first frame, in the release
    marker_frames: int
    frame_ticks: int           # one frame's duration, in time-base ticks
    offset_ticks: int          # release pts - original pts for frames after this cut
    reaches_end: bool          # no original frame after it

    @property
    def marker_end_pts(self) -> int:
        return self.marker_first_pts + self.marker_frames * self.frame_ticks


def frame_ticks(pts: list[int], time_base: Fraction, rate: Fraction | None) -> int:
    """One frame's duration in ticks: the median step between timestamps (the nominal rate
    for a file of one frame)."""
    if len(pts) >= 2:
        return max(1, int(np.median(np.diff(np.asarray(pts, dtype=np.int64)))))
    return max(1, round(1 / (float(rate or 30) * time_base)))


def plan_cuts(cuts: tuple[Cut, ...], pts: list[int], time_base: Fraction, ticks: int,
              marker_s: float = CUT_MARKER_S) -> list[CutSpan]:
    """Where each cut lies, in order: `pts` are the original's frame timestamps, sorted."""
    spans: list[CutSpan] = []
    if not cuts:
        return spans
    marker_frames = max(1, round(marker_s / float(ticks * time_base)))
    end_pts = (pts[-1] + ticks) if pts else 0
    offset = 0
    for cut in sorted(cuts, key=lambda c: c.start_s):
        first = _first_at_or_after(pts, cut.start_s, time_base, end_pts)
        after = _first_at_or_after(pts, cut.end_s, time_base, end_pts)
        marker_first = first + offset
        offset = marker_first + marker_frames * ticks - after
        spans.append(CutSpan(cut, first, after, marker_first, marker_frames, ticks, offset, after >= end_pts))
    return spans


def _first_at_or_after(pts: list[int], t_s: float, time_base: Fraction, end_pts: int) -> int:
    # The same test as a region's (start_s <= t): float seconds of the frame's timestamp.
    for p in pts:
        if float(p * time_base) >= t_s:
            return p
    return end_pts


def video_offset(spans: list[CutSpan], pts: int) -> int | None:
    """release pts - original pts for an original frame, or None if a cut removes it."""
    offset = 0
    for span in spans:
        if span.removed_first_pts <= pts < span.removed_end_pts:
            return None
        if pts >= span.removed_end_pts:
            offset = span.offset_ticks
    return offset


def marker_of(spans: list[CutSpan], release_pts: int) -> CutSpan | None:
    """The cut whose marker holds the release frame at `release_pts`, if any."""
    return next((s for s in spans if s.marker_first_pts <= release_pts < s.marker_end_pts), None)


def in_marker(spans: list[CutSpan], release_pts: int) -> bool:
    return marker_of(spans, release_pts) is not None


def audio_ranges(spans: list[CutSpan], time_base: Fraction, rate_hz: int) -> list[tuple[int, int, int]]:
    """Per cut, in sample timestamps: (first removed, first kept after, offset after)."""
    def samples(ticks: int) -> int:
        return round(ticks * time_base * rate_hz)
    return [(samples(s.removed_first_pts), samples(s.removed_end_pts), samples(s.offset_ticks)) for s in spans]


def audio_offset(ranges: list[tuple[int, int, int]], sample: int) -> int | None:
    offset = 0
    for first, end, after in ranges:
        if first <= sample < end:
            return None
        if sample >= end:
            offset = after
    return offset


def record_entries(spans: list[CutSpan], time_base: Fraction) -> list[dict]:
    """The record's `cuts`: where each cut lies, in seconds (exact to the microsecond)."""
    def s(ticks: int) -> float:
        return round(float(ticks * time_base), 6)
    return [{"start_s": sp.cut.start_s, "end_s": sp.cut.end_s, "reason": sp.cut.reason,
             "removed_s": [s(sp.removed_first_pts), s(sp.removed_end_pts)],
             "marker_s": [s(sp.marker_first_pts), s(sp.marker_end_pts)],
             "offset_s": s(sp.offset_ticks)} for sp in spans]


def marker_card(width: int, height: int, span: CutSpan, time_base: Fraction) -> np.ndarray:
    """The marker frame: dark grey, a white frame, and what was cut and why."""
    import cv2
    card = np.full((height, width, 3), MARKER_GREY, np.uint8)
    edge = max(2, height // 60)
    cv2.rectangle(card, (edge, edge), (width - 1 - edge, height - 1 - edge), (255, 255, 255), edge)
    removed_s = float((span.removed_end_pts - span.removed_first_pts) * time_base)
    lines = ["CUT FROM THIS RELEASE",
             f"{removed_s:.1f} s removed: {span.cut.start_s:.1f}-{span.cut.end_s:.1f} s of the original",
             f"reason: {span.cut.reason}"]
    scale = max(0.4, height / 720 * 1.1)
    thickness = max(1, round(scale * 2))
    y = height // 2 - len(lines) * int(34 * scale) // 2
    for line in lines:
        text = line if len(line) <= 60 else line[:57] + "..."
        (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        cv2.putText(card, text, (max(edge * 2, (width - w) // 2), y + h), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (255, 255, 255), thickness, cv2.LINE_AA)
        y += int(44 * scale)
    return card
