"""Where a cut lies in the original and in the release (tools/release/cuts.py, docs/release.md §3)."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tools.release import cuts
from tools.release.plan import Cut

TB = Fraction(1, 1_000_000)
TICKS = 100_000                        # 10 fps
PTS = [i * TICKS for i in range(50)]   # 5 s of frames, 0.0 .. 4.9


def _spans(*ranges, marker_s=1.0):
    return cuts.plan_cuts(tuple(Cut(a, b, "why") for a, b in ranges), PTS, TB, TICKS, marker_s)


def test_a_cut_in_the_middle_is_replaced_by_its_marker_and_the_rest_moves_up():
    [span] = _spans((1.0, 3.0))
    assert (span.removed_first_pts, span.removed_end_pts) == (1_000_000, 3_000_000)
    assert (span.marker_first_pts, span.marker_frames, span.marker_end_pts) == (1_000_000, 10, 2_000_000)
    assert span.offset_ticks == -1_000_000 and not span.reaches_end
    assert cuts.video_offset([span], 900_000) == 0
    assert cuts.video_offset([span], 1_000_000) is None and cuts.video_offset([span], 2_900_000) is None
    assert cuts.video_offset([span], 3_000_000) == -1_000_000
    # The release's frames: 10 before, 10 of marker, 20 after, one frame-step apart throughout.
    release = [p for p in PTS if cuts.video_offset([span], p) == 0]
    release += [span.marker_first_pts + i * TICKS for i in range(span.marker_frames)]
    release += [p + cuts.video_offset([span], p) for p in PTS if p >= span.removed_end_pts]
    assert release == [i * TICKS for i in range(40)]


def test_cuts_that_touch_at_the_start_and_the_end():
    first, second = _spans((0.0, 0.45), (4.55, 10.0), marker_s=0.5)
    # 0.45 s: frames 0.0 .. 0.4 go; the first kept is 0.5.
    assert (first.removed_first_pts, first.removed_end_pts, first.offset_ticks) == (0, 500_000, 0)
    # Past the last frame (4.9): the cut runs to the event's end, 5.0.
    assert second.removed_first_pts == 4_600_000 and second.removed_end_pts == 5_000_000 and second.reaches_end
    assert second.marker_first_pts == 4_600_000 and second.marker_end_pts == 5_100_000


def test_a_cut_between_two_frames_removes_nothing_but_still_shows_its_marker():
    [span] = _spans((1.01, 1.05))
    assert span.removed_first_pts == span.removed_end_pts == 1_100_000
    assert span.offset_ticks == 1_000_000 and span.marker_frames == 10


def test_the_sound_follows_the_pictures():
    [span] = _spans((1.0, 3.0))
    [(first, end, after)] = cuts.audio_ranges([span], TB, 48_000)
    assert (first, end, after) == (48_000, 144_000, -48_000)
    assert cuts.audio_offset([(first, end, after)], 47_999) == 0
    assert cuts.audio_offset([(first, end, after)], 48_000) is None
    assert cuts.audio_offset([(first, end, after)], 144_000) == -48_000


def test_the_record_entry_says_where_in_seconds():
    [entry] = cuts.record_entries(_spans((1.0, 3.0)), TB)
    assert entry == {"start_s": 1.0, "end_s": 3.0, "reason": "why", "removed_s": [1.0, 3.0],
                     "marker_s": [1.0, 2.0], "offset_s": -1.0}


def test_the_marker_card_is_a_visible_frame_of_the_original_size():
    [span] = _spans((1.0, 3.0))
    card = cuts.marker_card(320, 180, span, TB)
    assert card.shape == (180, 320, 3) and card.dtype == np.uint8
    assert (card == 255).any() and (card == 40).mean() > 0.5     # white text and frame on dark grey


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 6), st.floats(0.01, 3)), max_size=4))
def test_the_release_timeline_is_one_frame_step_apart_whatever_the_cuts(raw):
    ranges, at = [], 0.0
    for start, length in sorted(raw):
        start = max(start, at)
        ranges.append((start, start + length))
        at = start + length
    spans = _spans(*ranges, marker_s=0.3)
    kept = [p + cuts.video_offset(spans, p) for p in PTS if cuts.video_offset(spans, p) is not None]
    markers = [s.marker_first_pts + i * TICKS for s in spans for i in range(s.marker_frames)]
    release = sorted(kept + markers)
    assert release == [release[0] + i * TICKS for i in range(len(release))] if release else True
    assert len(set(kept + markers)) == len(kept) + len(markers)     # no frame lands on another
    assert all(not cuts.in_marker(spans, p) for p in kept)


@pytest.mark.parametrize("pts, expected", [([0, 100, 200, 400], 100), ([7], 33_333)])
def test_a_frame_step_is_the_median_step(pts, expected):
    assert cuts.frame_ticks(pts, TB, Fraction(30)) == expected
