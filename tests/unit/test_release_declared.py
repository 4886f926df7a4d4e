"""The record's masks and spans must follow from its operations (tools/release/declared.py):
a box no operation explains is where an undeclared edit could hide."""
from __future__ import annotations

import copy

from tools.release.declared import problems

FRAMES = {i: i / 10 for i in range(20)}       # 10 fps, 2 s


def _record():
    ops = [{"op": "region", "start_s": 0.5, "end_s": 1.0, "box": [10, 10, 40, 40], "style": "blur", "track": False},
           {"op": "region", "start_s": 1.0, "end_s": 1.5, "box": [100, 50, 30, 20], "style": "mask", "track": True},
           {"op": "audio", "start_s": 0.2, "end_s": 0.4, "mode": "mute", "tone_hz": None}]
    masks = [[i, i / 10, [[10, 10, 40, 40, "blur", "region"]]] for i in range(5, 10)]
    masks += [[i, i / 10, [[100 + i, 50, 30, 20, "mask", "region"]]] for i in range(10, 15)]
    return {"operations": ops, "masks": masks, "audio_spans": [[0.2, 0.4, "mute"]]}


def test_an_honest_record_has_nothing_unexplained():
    assert problems(_record(), FRAMES) == []


def test_a_box_outside_every_operation_is_named():
    record = _record()
    record["masks"].insert(0, [2, 0.2, [[0, 0, 320, 180, "mask", "region"]]])
    [problem] = problems(record, FRAMES)
    assert "frame 2 (0.200 s)" in problem and "no operation explains" in problem


def test_a_fixed_region_moved_or_restyled_in_one_frame_is_named():
    for change in ({0: 11}, {4: "mask"}):
        record = copy.deepcopy(_record())
        for k, v in change.items():
            record["masks"][2][2][0][k] = v
        found = problems(record, FRAMES)
        assert any("frame 7" in p and "no operation explains" in p for p in found), found
        assert any("region operation 1" in p and "1 of its frames" in p for p in found), found


def test_a_tracked_box_after_its_span_or_a_face_box_without_faces_is_named():
    record = _record()
    record["masks"].append([15, 1.5, [[100, 50, 30, 20, "mask", "region"]]])
    record["masks"].append([16, 1.6, [[5, 5, 20, 20, "blur", "face"]]])
    found = problems(record, FRAMES)
    assert len(found) == 2 and "frame 15" in found[0] and "frame 16" in found[1]
    record["operations"].append({"op": "faces", "style": "blur"})
    assert len(problems(record, FRAMES)) == 1


def test_a_fixed_region_missing_from_a_frame_or_spans_that_differ_are_named():
    record = _record()
    del record["masks"][3]
    assert problems(record, FRAMES) == ["region operation 1 (0.5-1.0 s) is not in the record's masks of 1 of its "
                                        "frames (first: frame 8)"]
    record = _record()
    record["audio_spans"] = [[0.2, 0.5, "mute"]]
    assert problems(record, FRAMES) == ["the record's audio_spans are not its audio operations'"]


def test_frames_a_cut_removed_need_no_mask():
    frames = {i: t for i, t in FRAMES.items() if not 0.7 <= t < 0.9}
    record = _record()
    record["masks"] = [m for m in record["masks"] if m[0] not in (7, 8)]
    assert problems(record, frames) == []


def test_masks_for_a_frame_the_release_does_not_show_are_named():
    """A cut removed frames 7 and 8: masks declared for them explain nothing the verifier can see."""
    frames = {i: t for i, t in FRAMES.items() if i not in (7, 8)}
    found = problems(_record(), frames)
    assert found == ["the record's masks name 2 frames the release does not show (first: frame 7, removed by a cut "
                     "or past the original's last)"], found
