"""The face list (docs/release-faces.md): its strict loader, its test vector, the gap fill,
the FaceSource made from a list, and the detector on synthetic frames."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tools.release.face_list import (FaceFrame, FaceList, FaceListError, face_list_bytes, parse_face_list,
                                     read_face_list, write_face_list)

INSTALL = {"cv2": "opencv-contrib-python-headless>=4.10,<5", "skimage.data": "scikit-image"}


def need(module: str):
    """The detector's library, or a failure naming the install line: a face test skipped
    for want of OpenCV would let CI pass without ever looking for a face."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        pytest.fail(f"this test needs {module}: pip install '{INSTALL[module]}'")


VECTOR = os.path.join(os.path.dirname(__file__), "..", "vectors", "face-list-v1.json")
SHA = "ab" * 32


def _doc(**changes) -> dict:
    doc = {"format": "openbwc-face-list", "version": 1, "detector": "test",
           "original": {"mp4": "event.mp4", "mp4_sha256": SHA, "width": 320, "height": 180, "frames": 3},
           "frames": [[0, 0.0, [[10, 20, 30, 40, "detector"]]], [2, 0.2, []]],
           "dropped": []}
    doc.update(changes)
    return doc


def _parse(doc, sha=None) -> FaceList:
    return parse_face_list(json.dumps(doc).encode(), "faces.json", sha)


def test_the_test_vector_reads_as_documented():
    faces = read_face_list(VECTOR, original_sha256="5e" * 32)
    assert faces.mp4 == "event-20260101T000000Z-b0ce6539.mp4" and (faces.width, faces.height) == (480, 270)
    assert faces.frame_count == 4
    assert faces.boxes_at(0) == [(33, 64, 50, 50)]
    assert faces.boxes_at(1) == [(34, 64, 50, 50), (300, 150, 40, 40)]   # the second added by a reviewer
    assert faces.frame_at(1).boxes[1][4] == "reviewer"
    assert faces.boxes_at(2) == []                                        # its false box was dropped
    assert faces.dropped == ((2, 400, 60, 50, 50),)
    assert faces.boxes_at(3) == []                                        # no entry: nothing hidden


def test_a_written_list_reads_back_the_same_and_is_owner_only(tmp_path):
    faces = _parse(_doc())
    path = tmp_path / "faces.json"
    write_face_list(faces, str(path))
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert read_face_list(str(path), SHA) == faces
    with pytest.raises(FileExistsError):
        write_face_list(faces, str(path))


def test_a_list_for_another_original_is_refused():
    with pytest.raises(FaceListError, match="made for another original"):
        _parse(_doc(), sha="cd" * 32)


@pytest.mark.parametrize("change, message", [
    ({"format": "openbwc-export"}, "format must be"),
    ({"version": 2}, "version must be 1"),
    ({"version": True}, "version must be 1"),
    ({"extra": 1}, "unknown member"),
    ({"frames": [[0, 0.0, [[300, 20, 30, 40, "detector"]]]]}, "not inside the 320x180 frame"),
    ({"frames": [[0, 0.0, [[10, 20, 0, 40, "detector"]]]]}, "not inside"),
    ({"frames": [[0, 0.0, [[10.5, 20, 30, 40, "detector"]]]]}, "whole pixel"),
    ({"frames": [[0, 0.0, [[10, 20, 30, 40, "someone"]]]]}, '"detector" or "reviewer"'),
    ({"frames": [[1, 0.1, []], [1, 0.1, []]]}, "indices must increase"),
    ({"frames": [[2, 0.2, []], [1, 0.1, []]]}, "indices must increase"),
    ({"frames": [[3, 0.3, []]]}, "index must be a whole number 0..2"),
    ({"frames": [[0, -1.0, []]]}, "pts_s must be"),
    ({"frames": [[0, 0.0]]}, r"\[index, pts_s, \[boxes\]\]"),
    ({"dropped": [[0, 10, 20, 30, 40]]}, "is also in frames"),
    ({"dropped": [[5, 10, 20, 30, 40]]}, "index must be"),
])
def test_malformed_lists_are_refused_in_one_line(change, message):
    with pytest.raises(FaceListError, match=message) as info:
        _parse(_doc(**change))
    assert "\n" not in str(info.value)


def test_a_missing_member_and_bad_json_are_refused():
    doc = _doc()
    del doc["dropped"]
    with pytest.raises(FaceListError, match="'dropped' is missing"):
        _parse(doc)
    with pytest.raises(FaceListError, match="not valid JSON"):
        parse_face_list(b'{"format": NaN}', "x")
    with pytest.raises(FaceListError, match="not valid JSON"):
        parse_face_list(b'{"a": 1, "a": 2}', "x")


def test_an_oversized_file_is_refused_before_it_is_parsed(tmp_path, monkeypatch):
    from tools.release import face_list
    monkeypatch.setattr(face_list, "MAX_BYTES", 100)
    path = tmp_path / "big.json"
    path.write_bytes(b" " * 101)
    with pytest.raises(FaceListError, match="over 100 bytes"):
        read_face_list(str(path))


_json = st.recursive(st.none() | st.booleans() | st.integers(-10, 400) | st.floats(allow_nan=False) | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
                     max_leaves=30)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.binary(max_size=200))
def test_any_bytes_are_read_or_refused_in_one_line(raw):
    try:
        parse_face_list(raw, "x")
    except FaceListError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=300, deadline=None)
@given(mutation=st.sampled_from(["format", "version", "detector", "original", "frames", "dropped"]), value=_json)
def test_any_value_in_any_member_is_accepted_only_if_well_formed(mutation, value):
    doc = _doc()
    doc[mutation] = value
    try:
        faces = _parse(doc)
    except FaceListError as exc:
        assert "\n" not in str(exc)
        return
    # Whatever was accepted is a list of boxes inside the frame, indices increasing.
    indices = [f.index for f in faces.frames]
    assert indices == sorted(set(indices))
    for f in faces.frames:
        for x, y, w, h, source in f.boxes:
            assert 0 <= x and 0 <= y and w >= 1 and h >= 1 and x + w <= faces.width and y + h <= faces.height
            assert source in ("detector", "reviewer")


@settings(max_examples=200, deadline=None)
@given(boxes=st.lists(st.tuples(st.integers(-5, 330), st.integers(-5, 190), st.integers(-2, 200),
                                st.integers(-2, 200)), max_size=4))
def test_boxes_are_accepted_exactly_when_inside_the_frame(boxes):
    doc = _doc(frames=[[0, 0.0, [[*b, "reviewer"] for b in boxes]]])
    inside = all(x >= 0 and y >= 0 and w >= 1 and h >= 1 and x + w <= 320 and y + h <= 180 for x, y, w, h in boxes)
    try:
        faces = _parse(doc)
    except FaceListError:
        assert not inside
    else:
        assert inside and faces.boxes_at(0) == [tuple(b) for b in boxes]


# -- gap fill and the FaceSource -------------------------------------------------------

def test_a_face_missed_between_two_finds_is_carried_through():
    from tools.release.faces import fill_gaps
    found = [[(10, 10, 40, 40)], [], [], [(16, 10, 40, 40)], [], [], [], [(100, 100, 30, 30)]]
    filled = fill_gaps(found, gap_frames=2)
    assert filled[1] == [(12, 10, 40, 40)] and filled[2] == [(14, 10, 40, 40)]
    assert filled[4:7] == [[], [], []]           # a gap longer than 2 frames is not guessed across
    assert filled[7] == [(100, 100, 30, 30)]     # a lone box is kept


def test_a_face_source_gives_a_lists_boxes_and_refuses_other_frames():
    from tools.release.faces import face_source
    faces = _parse(_doc())
    source = face_source(faces)
    frame = np.zeros((180, 320, 3), np.uint8)
    assert source(0, 0.0, frame) == [(10, 20, 30, 40)]
    assert source(1, 0.1, frame) == []
    assert source(2, 0.2, frame) == []
    with pytest.raises(FaceListError, match="made for other frames"):
        source(2, 0.25, frame)
    with pytest.raises(FaceListError, match="320x180"):
        source(0, 0.0, np.zeros((90, 160, 3), np.uint8))
    with pytest.raises(FaceListError, match="covers 3 frames"):
        source(3, 0.3, frame)


# -- the detector on synthetic frames --------------------------------------------------

def test_the_detector_finds_the_astronauts_face_and_nothing_on_a_striped_wall():
    need("cv2")
    skimage_data = need("skimage.data")
    from tools.release.faces import FaceDetector, detector_version, iou
    detector = FaceDetector()
    astronaut = skimage_data.astronaut()
    face = (175, 60, 90, 115)
    assert any(iou(b, face) >= 0.3 for b in detector.detect(astronaut))
    head = np.ascontiguousarray(astronaut[0:260, 110:330])     # the badge on her suit is left out
    assert [iou(b, (65, 60, 90, 115)) >= 0.3 for b in detector.detect(head)] == [True]
    wall = np.full((270, 480, 3), 128, np.uint8)
    wall[::20] = 90
    assert detector.detect(wall) == []
    assert "haarcascade_frontalface_alt.xml" in detector_version() and "opencv 4." in detector_version()


def test_face_list_bytes_puts_one_frame_on_a_line():
    faces = FaceList("d", "e.mp4", SHA, 320, 180, 2, (FaceFrame(0, 0.0, ((1, 2, 3, 4, "detector"),)),
                                                         FaceFrame(1, 0.1, ())), ())
    text = face_list_bytes(faces).decode()
    assert '[0, 0.0, [[1, 2, 3, 4, "detector"]]]' in text and "[1, 0.1, []]" in text
    assert parse_face_list(text.encode(), "x") == faces


def test_a_release_takes_the_reviewed_list_or_refuses_a_required_review_it_lacks(tmp_path):
    from tools.release.faces import face_summary, faces_for_release
    path = tmp_path / "reviewed.json"
    write_face_list(_parse(_doc()), str(path))
    faces = faces_for_release("unused.mp4", SHA, review_file=str(path), review_required=True)
    assert face_summary(faces) == {"detector": "test", "frames_with_faces": 1, "detector_boxes": 1,
                                   "reviewer_boxes": 0, "dropped_boxes": 0}
    with pytest.raises(FaceListError, match="made for another original"):
        faces_for_release("unused.mp4", "cd" * 32, review_file=str(path))
    with pytest.raises(FaceListError, match="review_required"):
        faces_for_release("unused.mp4", SHA, review_required=True)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tail=st.binary(max_size=3000))
def test_any_file_given_as_a_video_is_detected_or_refused_in_one_line(tail, tmp_path):
    need("cv2")
    from tools.release.faces import FaceDetectionError, detect_video
    path = tmp_path / "event.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + tail)
    try:
        video = detect_video(str(path))
    except FaceDetectionError as exc:
        assert "\n" not in str(exc)
    else:
        assert all(len(b) == 4 for boxes in video.boxes for b in boxes)


@pytest.fixture(scope="module")
def small_mp4(tmp_path_factory) -> bytes:
    import av
    path = tmp_path_factory.mktemp("clip") / "small.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * i, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path.read_bytes()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=8))
def test_a_damaged_video_is_detected_or_refused_in_one_line(flips, small_mp4, tmp_path):
    need("cv2")
    from tools.release.faces import FaceDetectionError, detect_video
    data = bytearray(small_mp4)
    for at, value in flips:
        data[at % len(data)] ^= value
    path = tmp_path / "event.mp4"
    path.write_bytes(bytes(data))
    try:
        video = detect_video(str(path))
    except FaceDetectionError as exc:
        assert "\n" not in str(exc)
    else:
        assert len(video.boxes) == len(video.pts_s) <= 5


def test_on_a_terminal_bwc_faces_shows_a_progress_bar_and_writes_the_list(small_mp4, tmp_path, monkeypatch, capsys):
    need("cv2")
    import argparse
    import sys
    from tools.release import faces_command
    mp4 = tmp_path / "event.mp4"
    mp4.write_bytes(small_mp4)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    args = argparse.Namespace(export_mp4=str(mp4), out=str(tmp_path / "faces.json"), check=None, edit=None,
                              add=[], drop=[])
    assert faces_command.run(args) == 0
    assert read_face_list(str(tmp_path / "faces.json")).frame_count == 5
    assert "5 frames, 0 with faces" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []    # no temporary left
