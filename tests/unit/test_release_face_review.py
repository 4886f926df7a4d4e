"""A reviewer's corrections (tools/release/face_review.py): spans added, boxes dropped,
malformed corrections refused in one line, the list corrected never the one read."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from tools.release.face_list import FaceFrame, FaceList, FaceListError, face_list_bytes, parse_face_list
from tools.release.face_review import add_box, drop_box, parse_add, parse_drop

SHA = "ab" * 32


def _faces() -> FaceList:
    frames = tuple(FaceFrame(i, i / 10, ((10 + i, 20, 30, 40, "detector"),) if i % 2 == 0 else ())
                   for i in range(10))
    return FaceList("test", "event.mp4", SHA, 320, 180, 10, frames, ())


def test_a_box_added_over_a_span_is_in_every_frame_of_it_and_only_there():
    faces = _faces()
    added, n = add_box(faces, 0.2, 0.5, (100, 50, 40, 40))
    assert n == 3
    assert [i for i in range(10) if (100, 50, 40, 40) in added.boxes_at(i)] == [2, 3, 4]
    assert added.frame_at(3).boxes == ((100, 50, 40, 40, "reviewer"),)
    assert faces.boxes_at(3) == []                                  # the list read is unchanged
    assert parse_face_list(face_list_bytes(added), "x") == added    # and it writes as it reads


def test_a_dropped_box_leaves_its_frame_and_is_recorded():
    faces = _faces()
    dropped = drop_box(faces, 4, (14, 20, 30, 40))
    assert dropped.boxes_at(4) == [] and dropped.dropped == ((4, 14, 20, 30, 40),)
    assert parse_face_list(face_list_bytes(dropped), "x") == dropped
    with pytest.raises(FaceListError, match="frame 4 has no such box"):
        drop_box(dropped, 4, (14, 20, 30, 40))


@pytest.mark.parametrize("spec, message", [
    ("1.0:1,2,3,4", "START_S-END_S:X,Y,W,H"),
    ("2.0-1.0:1,2,3,4", "must end after it starts"),
    ("1.2.3-4:1,2,3,4", "not a number"),
    ("0-1:-1,2,3,4", "START_S-END_S"),
])
def test_malformed_additions_are_refused_in_one_line(spec, message):
    with pytest.raises(FaceListError, match=message):
        parse_add(spec)


def test_an_addition_outside_the_frame_or_the_event_is_refused():
    with pytest.raises(FaceListError, match="not inside the 320x180 frame"):
        add_box(_faces(), 0.0, 1.0, (300, 10, 40, 40))
    with pytest.raises(FaceListError, match="no frame of the list is in that span"):
        add_box(_faces(), 5.0, 6.0, (10, 10, 40, 40))


@settings(max_examples=300, deadline=None)
@given(spec=st.text(max_size=40))
def test_any_correction_text_is_parsed_or_refused_in_one_line(spec):
    for parse in (parse_add, parse_drop):
        try:
            parse(spec)
        except FaceListError as exc:
            assert "\n" not in str(exc)
