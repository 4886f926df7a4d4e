"""`bwc faces` (docs/release-faces.md) on a simulator recording of footage with faces in it
(face_footage.py): the list it writes finds the faces where they are visible, its boxes
grown by the plan's default margin cover them, and a reviewer's corrections read back."""
from __future__ import annotations

import json
import os
import sys

import av
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import _provision, one_event_scenario  # noqa: E402
from face_footage import face_clip, truth_for_export  # noqa: E402

try:   # a face test skipped for want of OpenCV would let CI pass without looking for a face
    import cv2  # noqa: F401
    import skimage  # noqa: F401
except ImportError as exc:
    raise ImportError(f"{exc}: pip install 'opencv-contrib-python-headless>=4.10,<5' scikit-image") from None

pytestmark = pytest.mark.tool

DEFAULT_MARGIN_FRACTION = 0.25     # the plan's default (docs/release.md §2)


@pytest.fixture(scope="module")
def filmed(bwc, custodian, tmp_path_factory):
    """An export of the face clip filmed by the simulated camera, its ground truth per
    exported frame, and the face list bwc faces wrote for it."""
    base = tmp_path_factory.mktemp("faces")
    clip = face_clip(str(base / "clip.mp4"))
    scenario = base / "faces.toml"
    scenario.write_text(one_event_scenario(5, clip.camera_width, clip.camera_height), encoding="utf-8")
    device = _provision(base, "cam-faces-01", custodian)
    r = bwc("run", "--device", device.dir, "--hal", "sim", "--source", clip.path, "--scenario", scenario)
    assert r.returncode == 0, str(r)
    r = bwc("export", device.storage, "--key", custodian.key, "--out", base / "export", "--device-pub", device.pub)
    assert r.returncode == 0, str(r)
    mp4 = sorted((base / "export").glob("event-*.mp4"))[0]
    listed = base / "faces.json"
    r = bwc("faces", mp4, "--out", listed)
    assert r.returncode == 0, str(r)
    return mp4, truth_for_export(str(mp4), clip), listed, device, r


def _iou(a, b) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / (a[2] * a[3] + b[2] * b[3] - ix * iy) if ix * iy else 0.0


def _covers(outer, inner) -> bool:
    return (outer[0] <= inner[0] and outer[1] <= inner[1]
            and outer[0] + outer[2] >= inner[0] + inner[2] and outer[1] + outer[3] >= inner[1] + inner[3])


def test_faces_are_found_in_nearly_every_frame_where_they_are_visible_and_the_margin_covers_them(filmed):
    from tools.release.face_list import read_face_list
    from tools.release.files import sha256_file
    from tools.release.frame_ops import clip_box, expand
    mp4, truth, listed, _, result = filmed
    assert "face list:" in result.stdout
    assert oct(listed.stat().st_mode & 0o777) == "0o600"
    faces = read_face_list(str(listed), original_sha256=sha256_file(str(mp4)))
    assert faces.frame_count == len(truth) and len(truth) >= 40
    visible = [i for i, t in enumerate(truth) if t]
    all_found = covered = false_boxes = 0
    for i in visible:
        boxes = faces.boxes_at(i)
        matched = [max(boxes, key=lambda b: _iou(b, face), default=None) for face in truth[i]]
        if all(m is not None and _iou(m, face) >= 0.3 for m, face in zip(matched, truth[i])):
            all_found += 1
        # What the release would hide: each box grown by the default margin, clipped to the frame.
        hidden = [clip_box(expand(b, DEFAULT_MARGIN_FRACTION), faces.width, faces.height) for b in boxes]
        if all(any(_covers(h, face) for h in hidden) for face in truth[i]):
            covered += 1
        false_boxes += sum(1 for b in boxes if all(_iou(b, face) < 0.3 for face in truth[i]))
    assert all_found >= 0.95 * len(visible), f"every face found in {all_found} of {len(visible)} frames"
    assert covered >= 0.95 * len(visible), f"every face covered in {covered} of {len(visible)} frames"
    assert false_boxes <= 0.05 * sum(len(t) for t in truth), f"{false_boxes} boxes on no face"


def test_a_reviewers_drop_and_add_are_read_back_and_hidden(bwc, filmed, tmp_path):
    from tools.release.face_list import read_face_list
    from tools.release.faces import face_source
    import numpy as np
    mp4, _, listed, _, _ = filmed
    doc = json.loads(listed.read_text())
    index, pts_s, boxes = doc["frames"][5]
    false_one = boxes.pop(0)                      # the reviewer says it is no face
    doc["dropped"].append([index, *false_one[:4]])
    boxes.append([10, 60, 40, 40, "reviewer"])     # and adds one the detector missed
    reviewed = tmp_path / "faces.reviewed.json"
    reviewed.write_text(json.dumps(doc))
    r = bwc("faces", mp4, "--check", reviewed)
    assert r.returncode == 0, str(r)
    assert "1 added by a reviewer, 1 dropped" in r.stdout
    faces = read_face_list(str(reviewed))
    hidden = face_source(faces)(index, pts_s, np.zeros((faces.height, faces.width, 3), np.uint8))
    assert (10, 60, 40, 40) in hidden and tuple(false_one[:4]) not in hidden


def test_a_reviewer_corrects_the_list_with_bwc_faces_edit(bwc, filmed, tmp_path):
    from tools.release.face_list import read_face_list
    mp4, _, listed, _, _ = filmed
    before = listed.read_bytes()
    faces = read_face_list(str(listed))
    false_one = faces.frame_at(7).boxes[0][:4]
    reviewed = tmp_path / "reviewed.json"
    r = bwc("faces", mp4, "--edit", listed, "--add", "0.5-1.0:10,60,40,40",
            "--drop", f"7:{','.join(map(str, false_one))}", "--out", reviewed)
    assert r.returncode == 0, str(r)
    assert listed.read_bytes() == before                                  # the detector's list is kept
    assert oct(reviewed.stat().st_mode & 0o777) == "0o600"
    corrected = read_face_list(str(reviewed))
    in_span = [f.index for f in corrected.frames if 0.5 <= f.pts_s < 1.0]
    assert len(in_span) == 5 and all((10, 60, 40, 40) in corrected.boxes_at(i) for i in in_span)
    assert false_one not in corrected.boxes_at(7) and corrected.dropped == ((7, *false_one),)
    r = bwc("faces", mp4, "--check", reviewed)
    assert r.returncode == 0 and "5 added by a reviewer, 1 dropped" in r.stdout
    r = bwc("faces", mp4, "--edit", listed, "--drop", "7:1,1,1,1", "--out", tmp_path / "again.json")
    assert r.returncode == 2 and "frame 7 has no such box" in r.stderr and not (tmp_path / "again.json").exists()


@pytest.mark.parametrize("extra, message", [
    (["--add", "0-1:1,1,5,5", "--out", "x.json"], "--add and --drop correct a list named with --edit"),
    ([], "say where the list goes with --out"),
    (["--check", "a.json", "--out", "x.json"], "--check reads a list"),
])
def test_options_that_do_not_go_together_are_refused_in_one_line(bwc, filmed, tmp_path, extra, message):
    mp4 = filmed[0]
    r = bwc("faces", mp4, *extra, cwd=tmp_path)
    assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_list_made_for_another_event_or_malformed_is_refused_in_one_line(bwc, filmed, event_mp4, tmp_path):
    mp4, _, listed, _, _ = filmed
    r = bwc("faces", event_mp4, "--check", listed)
    assert r.returncode == 2 and "made for another original" in r.stderr and r.stderr.count("\n") == 1
    doc = json.loads(listed.read_text())
    doc["frames"][0][2].append([470, 10, 40, 40, "reviewer"])     # reaches outside the 480 px frame
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    r = bwc("faces", mp4, "--check", bad)
    assert r.returncode == 2 and "not inside the 480x270 frame" in r.stderr and r.stderr.count("\n") == 1


def test_a_face_list_is_never_written_into_evidence_storage_or_over_a_list(bwc, filmed):
    mp4, _, listed, device, _ = filmed
    before = sorted(os.listdir(device.storage))
    r = bwc("faces", mp4, "--out", device.storage / "faces.json")
    assert r.returncode == 2 and "inside evidence storage" in r.stderr
    assert sorted(os.listdir(device.storage)) == before
    text = listed.read_text()
    r = bwc("faces", mp4, "--out", listed)
    assert r.returncode == 2 and "already exists" in r.stderr and listed.read_text() == text


def test_a_file_that_is_no_video_is_refused_in_one_line_and_nothing_is_written(bwc, tmp_path):
    bogus = tmp_path / "event.mp4"
    bogus.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    r = bwc("faces", bogus, "--out", tmp_path / "faces.json")
    assert r.returncode == 2 and "cannot decode" in r.stderr and r.stderr.count("\n") == 1
    assert not (tmp_path / "faces.json").exists()


@pytest.fixture(scope="module")
def event_mp4(export_pinned):
    """The session recording's first exported event: another original than the face footage."""
    assert export_pinned.result.returncode == 0, str(export_pinned.result)
    return sorted(export_pinned.out.glob("event-*.mp4"))[0]


def test_redact_media_hides_the_lists_faces_with_the_plans_margin(filmed, tmp_path):
    """What bwc redact will do with [faces] (wired in tools/release/redact.py): every frame's
    listed faces, grown by the margin, mosaicked in the release; the true faces unreadable."""
    import av
    import numpy as np
    from tools.release.face_list import read_face_list
    from tools.release.faces import face_source
    from tools.release.frame_ops import clip_box, expand
    from tools.release.media import redact_media
    from tools.release.plan import parse_plan
    mp4, truth, listed, _, _ = filmed
    plan = parse_plan('version = 1\n[release]\nreleased_by = "R"\nreason = "test"\n[faces]\nenabled = true\n', "plan.toml")
    faces = read_face_list(str(listed))
    release = tmp_path / "release.mp4"
    result = redact_media(str(mp4), str(release), plan, faces=face_source(faces))
    assert result.frames == faces.frame_count
    assert len(result.masks) == sum(1 for f in faces.frames if f.boxes) > 0
    for index, _, hidden in result.masks:
        expected = [list(clip_box(expand(b, plan.faces.margin_fraction), faces.width, faces.height))
                    for b in faces.boxes_at(index)]
        assert sorted(h[:4] for h in hidden) == sorted(expected)
        assert all(h[4:] == ["blur", "face"] for h in hidden)

    # Each true face in the release is the mosaic of the original there (within the
    # re-encoding's noise), and the detector no longer finds it.
    from tools.release.faces import FaceDetector
    from tools.release.frame_ops import mosaic
    detector = FaceDetector()
    with av.open(str(mp4)) as a, av.open(str(release)) as b:
        for i, (orig, red) in enumerate(zip(a.decode(video=0), b.decode(video=0))):
            original, redacted = orig.to_ndarray(format="rgb24"), red.to_ndarray(format="rgb24")
            expected = original.copy()
            for box in faces.boxes_at(i):
                mosaic(expected, clip_box(expand(box, plan.faces.margin_fraction), faces.width, faces.height))
            for x, y, w, h in truth[i]:
                crop = (slice(y, y + h), slice(x, x + w))
                assert np.abs(redacted[crop].astype(int) - expected[crop]).mean() < 4.0, f"frame {i}"
                assert np.abs(redacted[crop].astype(int) - original[crop]).mean() > 8.0, f"frame {i}"
            found = detector.detect(redacted)
            assert not any(_iou(box, face) >= 0.3 for box in found for face in truth[i]), \
                f"frame {i}: a face is still found in the release"


@pytest.fixture(scope="module")
def release_key(bwc, tmp_path_factory):
    base = tmp_path_factory.mktemp("faces-release-key")
    assert bwc("keygen", "--release", "--out", base).returncode == 0
    return base / "release.key", base / "release.pub"


def _hidden_faces_share(record: dict, truth: list) -> tuple[int, int]:
    """(frames where every true face lies inside a face mask the release applied, frames with a face)."""
    masks = {m[0]: [b for b in m[2] if b[5] == "face"] for m in record["masks"]}
    visible = [i for i, t in enumerate(truth) if t]
    hidden = sum(1 for i in visible if all(any(_covers(b[:4], face) for b in masks.get(i, [])) for face in truth[i]))
    return hidden, len(visible)


@pytest.mark.parametrize("source", ["the detector, run by bwc redact", "a reviewed list beside the plan"])
def test_bwc_redact_blurs_the_faces_and_verify_release_accepts_it(bwc, filmed, release_key, tmp_path, source):
    """A plan with [faces]: the faces are blurred in >= 95 % of the frames where one is visible,
    the record names the detector, and verify-release finds the release honest: nothing but
    the declared masks changed, and each declared face mask is hidden in the release."""
    mp4, truth, listed, device, _ = filmed
    faces_table = "[faces]\n"
    if source.startswith("a reviewed"):
        (tmp_path / "faces.reviewed.json").write_bytes(listed.read_bytes())
        faces_table += 'review_file = "faces.reviewed.json"\nreview_required = true\n'
    # With a region blurred and a span of the clip's tone muted besides, on the same footage.
    with av.open(str(mp4)) as c:
        sound_start_s = float(next(c.decode(audio=0)).time)
    others = ("[[region]]\nstart_s = 0\nend_s = 2.0\nbox = [380, 200, 60, 40]\n"
              f"[[audio]]\nstart_s = {sound_start_s + 0.5:.3f}\nend_s = {sound_start_s + 1.0:.3f}\n")
    (tmp_path / "plan.toml").write_text('version = 1\n[release]\nreleased_by = "R. Officer"\nreason = "FOIA 12"\n'
                                        + faces_table + others)
    r = bwc("redact", mp4, "--plan", tmp_path / "plan.toml", "--release-key", release_key[0], "--out", tmp_path / "out")
    assert r.returncode == 0, str(r)
    release = tmp_path / "out" / (mp4.stem + ".release.mp4")
    record = json.loads(release.with_suffix(".json").read_text())
    [op] = [op for op in record["operations"] if op["op"] == "faces"]
    assert op["detector"].startswith("opencv ") and "haarcascade_frontalface_alt.xml" in op["detector"]
    assert op["review_file"] == ("faces.reviewed.json" if source.startswith("a reviewed") else None)
    hidden, visible = _hidden_faces_share(record, truth)
    assert hidden >= 0.95 * visible, f"every face hidden in {hidden} of {visible} frames"
    assert any(b[5] == "region" for m in record["masks"] for b in m[2])
    def peak(path) -> float:
        with av.open(str(path)) as c:
            return max(float(abs(f.to_ndarray()).max()) for f in c.decode(audio=0)
                       if sound_start_s + 0.6 <= f.time < sound_start_s + 0.9)
    assert peak(mp4) > 0.05 and peak(release) < 0.01         # the clip's tone is heard there, and gone
    r = bwc("verify-release", release, "--original", mp4, "--device-pub", device.pub, "--release-pub", release_key[1])
    assert r.returncode == 3, str(r)
    assert "CHANGED" not in r.stdout


def test_a_plan_that_requires_a_review_is_refused_without_one_and_with_a_list_of_another_video(
        bwc, filmed, event_mp4, release_key, tmp_path):
    mp4, _, listed, _, _ = filmed
    plan = tmp_path / "plan.toml"
    plan.write_text('version = 1\n[release]\nreleased_by = "R"\nreason = "r"\n[faces]\nreview_required = true\n'
                    f'review_file = "{listed}"\n')
    r = bwc("redact", event_mp4, "--plan", plan, "--release-key", release_key[0], "--out", tmp_path / "out")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, str(r)
    assert "[faces]" in r.stderr and not (tmp_path / "out").exists()
