"""Cuts and tracked regions in a release copy (docs/release.md §3, §5): a cut leaves its frames
and sound out and shows a marker in their place, the record says where, and verify-release
accepts exactly that and nothing else."""
from __future__ import annotations

import json
import os
import shutil
import sys

import av
import numpy as np
import pytest

from tools.release.media import redact_media
from tools.release.plan import parse_plan

from tests.tool.release_helpers import resign_record

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import _provision, one_event_scenario  # noqa: E402

pytestmark = pytest.mark.tool

HEAD = 'version = 1\n[release]\nreleased_by = "R. Officer"\nreason = "court order 17"\n'
MARKER_FRAMES = 20            # 2 s of marker at the tool recording's 10 fps


@pytest.fixture(scope="module")
def keys(bwc, tmp_path_factory):
    base = tmp_path_factory.mktemp("cut-keys")
    assert bwc("keygen", "--release", "--out", base).returncode == 0
    return base / "release.key", base / "release.pub"


@pytest.fixture(scope="module")
def cut_release(bwc, export_pinned, keys, tmp_path_factory):
    mp4 = sorted(export_pinned.out.glob("event-*.mp4"))[0]
    side = json.loads(mp4.with_suffix(".json").read_text())
    middle = round(side["media_s"] / 2, 2)
    base = tmp_path_factory.mktemp("cut")
    plan_text = HEAD + (f'[[cut]]\nstart_s = {middle}\nend_s = {middle + 0.5}\nreason = "a child\'s medical details"\n'
                        f"[[region]]\nstart_s = 0\nend_s = {middle}\nbox = [140, 80, 40, 30]\ntrack = true\n")
    (base / "plan.toml").write_text(plan_text)
    r = bwc("redact", mp4, "--plan", base / "plan.toml", "--release-key", keys[0], "--out", base / "out")
    assert r.returncode == 0, str(r)
    release = base / "out" / (mp4.stem + ".release.mp4")
    return mp4, release, plan_text, middle


def _pts_and_frames(path):
    with av.open(str(path)) as c:
        return [(f.pts, f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]


def _verify(bwc, release, original, device_pub, keys):
    return bwc("verify-release", release, "--original", original, "--device-pub", device_pub,
               "--release-pub", keys[1])


def test_a_cut_is_left_out_marked_recorded_and_verified(bwc, cut_release, recording, keys):
    mp4, release, _, middle = cut_release
    original, released = _pts_and_frames(mp4), _pts_and_frames(release)
    cut = [p for p, _ in original if middle <= p / 1e6 < middle + 0.5]
    assert len(cut) == 5
    assert len(released) == len(original) - len(cut) + MARKER_FRAMES
    # The marker: where the cut was, dark grey with white writing, for 2 s.
    start = next(i for i, (p, _) in enumerate(released) if p >= cut[0])
    for _, frame in released[start:start + MARKER_FRAMES]:
        assert abs(float(np.median(frame)) - 40) < 6 and (frame > 200).any()
    record = json.loads(release.with_suffix(".json").read_text())
    [entry] = record["cuts"]
    assert entry["reason"] == "a child's medical details" and entry["removed_s"] == [cut[0] / 1e6, (cut[-1] + 100_000) / 1e6]
    assert entry["marker_s"] == [cut[0] / 1e6, cut[0] / 1e6 + 2.0]
    assert [op["op"] for op in record["operations"]] == ["region", "cut"]
    assert record["operations"][0]["tracker"].startswith("opencv-contrib-python ")
    r = _verify(bwc, release, mp4, recording.device.pub, keys)
    assert r.returncode == 3, str(r)
    assert "5 frames cut as declared, 20 cut-marker frames" in r.stdout and "CHANGED" not in r.stdout


def test_a_tracked_region_is_recorded_frame_by_frame(cut_release):
    mp4, release, _, middle = cut_release
    record = json.loads(release.with_suffix(".json").read_text())
    frames = [m for m in record["masks"] if any(box[5] == "region" for box in m[2])]
    assert len(frames) == sum(1 for p, _ in _pts_and_frames(mp4) if p / 1e6 < middle)
    assert frames[0][2][0][:4] == [140, 80, 40, 30]       # where the plan put it, then the tracker's


def test_more_cut_than_declared_or_a_cut_table_that_lies_is_a_failure(bwc, cut_release, recording, keys, tmp_path):
    mp4, release, plan_text, middle = cut_release
    record = json.loads(release.with_suffix(".json").read_text())
    # A release cut 0.3 s longer than its (honest) record says.
    longer = tmp_path / "longer"
    longer.mkdir()
    redact_media(str(mp4), str(longer / release.name),
                 parse_plan(plan_text.replace(f"end_s = {middle + 0.5}", f"end_s = {middle + 0.8}"), "p"))
    shutil.copy(release.with_suffix(".json"), longer / release.with_suffix(".json").name)
    r = _verify(bwc, longer / release.name, mp4, recording.device.pub, keys)
    assert r.returncode == 1 and "CHANGED" in r.stdout, str(r)
    # A record, signed, whose cut table puts the cut elsewhere than its operation does.
    lying = tmp_path / "lying"
    lying.mkdir()
    shutil.copy(release, lying / release.name)
    record["cuts"][0]["removed_s"][1] += 0.1
    (lying / release.with_suffix(".json").name).write_bytes(resign_record(record, keys[0]))
    r = _verify(bwc, lying / release.name, mp4, recording.device.pub, keys)
    assert r.returncode == 1 and "cuts are not where its cut operations put them" in r.stdout, str(r)


# A microphone lost for 2 s in the middle of the event.
MIC_GAP_SCENARIO = one_event_scenario(8, then=((3, "mic.fail"), (5, "mic.heal")))


def test_footage_with_a_gap_in_its_sound_releases_honest(bwc, custodian, keys, tmp_path):
    """The export's sound has a gap where the microphone was lost (its timestamps jump): the
    release fills it with silence, and the verifier pairs the sound by timestamps on both
    sides of it. It once paired by position after the first sample, and an honest release
    of such footage read as changed from the gap on."""
    device = _provision(tmp_path, "cam-mic-gap", custodian)
    (tmp_path / "s.toml").write_text(MIC_GAP_SCENARIO)
    assert bwc("run", "--device", device.dir, "--hal", "sim", "--scenario", tmp_path / "s.toml").returncode == 0
    r = bwc("export", device.storage, "--key", custodian.key, "--out", tmp_path / "e", "--device-pub", device.pub)
    assert r.returncode == 0, str(r)
    mp4 = sorted((tmp_path / "e").glob("event-*.mp4"))[0]
    with av.open(str(mp4)) as c:
        frames = [(f.pts, f.samples) for f in c.decode(audio=0)]
    assert any(b[0] > a[0] + a[1] for a, b in zip(frames, frames[1:])), "the export's sound has no gap"
    (tmp_path / "plan.toml").write_text(HEAD + '[[cut]]\nstart_s = 6.0\nend_s = 6.5\nreason = "r"\n'
                                        "[[audio]]\nstart_s = 1.0\nend_s = 1.5\n")
    r = bwc("redact", mp4, "--plan", tmp_path / "plan.toml", "--release-key", keys[0], "--out", tmp_path / "out")
    assert r.returncode == 0, str(r)
    r = _verify(bwc, tmp_path / "out" / (mp4.stem + ".release.mp4"), mp4, device.pub, keys)
    assert r.returncode == 3 and "CHANGED" not in r.stdout, str(r)


@pytest.mark.parametrize("what", ["pictures", "sound"])
def test_a_marker_that_shows_or_plays_something_is_a_failure(bwc, cut_release, recording, keys, tmp_path,
                                                              monkeypatch, what):
    """The marker frames are passed over by the pairing, so they are checked on their own: a
    marker that shows pictures (here: noise) or plays sound is not the marker."""
    import tools.release.cuts as cuts_module
    import tools.release.media as media_module
    mp4, release, plan_text, _ = cut_release
    rng = np.random.default_rng(1)
    if what == "pictures":
        monkeypatch.setattr(cuts_module, "marker_card",
                            lambda w, h, span, tb: rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    else:
        monkeypatch.setattr(media_module, "_silence",
                            lambda channels, n: (0.1 * rng.standard_normal((channels, n))).astype(np.float32))
    out = tmp_path / "forged"
    out.mkdir()
    redact_media(str(mp4), str(out / release.name), parse_plan(plan_text, "p"))
    shutil.copy(release.with_suffix(".json"), out / release.with_suffix(".json").name)
    monkeypatch.undo()
    r = _verify(bwc, out / release.name, mp4, recording.device.pub, keys)
    assert r.returncode == 1, str(r)
    expected = "is not the cut marker" if what == "pictures" else "is not silent"
    assert expected in r.stdout, str(r)
