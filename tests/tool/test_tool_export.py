"""`bwc export`: one MP4 + one JSON sidecar per event and a summary, or nothing at all."""
from __future__ import annotations

import json

import av
import pytest

pytestmark = pytest.mark.tool


SUMMARY = "export-summary.json"


def exported(out) -> tuple[list, list]:
    """(MP4s, sidecars) in `out`; the run's summary is not a sidecar."""
    files = sorted(p for p in out.iterdir() if p.name != SUMMARY)
    return [p for p in files if p.suffix == ".mp4"], [p for p in files if p.suffix == ".json"]


def sidecars(out) -> list[dict]:
    return [json.loads(p.read_text()) for p in exported(out)[1]]


def device_key_hex(device) -> str:
    return device.pub.read_text().strip().partition(":")[2]


def test_export_writes_one_mp4_and_one_sidecar_per_event(export_unpinned):
    r, out = export_unpinned.result, export_unpinned.out
    assert r.returncode == 0, str(r)
    mp4s, jsons = exported(out)
    assert len(mp4s) == 2 and len(jsons) == 2
    assert [p.stem for p in mp4s] == [p.stem for p in jsons]
    assert sorted(p.name for p in out.iterdir()) == sorted([SUMMARY] + [p.name for p in mp4s + jsons]), \
        "no staging directory or stray file may be left behind"
    for mp4 in mp4s:  # the terminal names every MP4 and its sidecar
        assert str(mp4) in r.stdout and f"{mp4.stem}.json" in r.stdout
    assert r.stderr == ""


def test_exported_mp4s_hold_h264_video_and_aac_audio(export_unpinned):
    for mp4 in exported(export_unpinned.out)[0]:
        with av.open(str(mp4)) as container:
            kinds = {s.type: s.codec_context.name for s in container.streams}
            assert kinds == {"video": "h264", "audio": "aac"}, (mp4, kinds)
            video = container.streams.video[0]
            assert (video.codec_context.width, video.codec_context.height) == (320, 180)
            assert sum(1 for _ in container.demux(video) if _.size) > 0


def test_sidecars_name_the_device_markers_audit_and_verification(export_unpinned, recording):
    cars = sidecars(export_unpinned.out)
    by_source = {c["activation"]["source"]: c for c in cars}
    assert set(by_source) == {"button", "trigger:holster"}
    for car in cars:
        assert car["device_id"] == "cam-rec-01"
        assert car["device_key"] == device_key_hex(recording.device)
        assert car["device_key_pinned"] is False
        assert car["verification"]["outcome"] == "authentic"
        assert car["verification"]["storage"]["outcome"] == "authentic"
        audit_types = [(e.get("type"), e.get("event_id")) for e in car["audit"]]
        assert ("activation", car["event_id"]) in audit_types
        assert ("deactivation", car["event_id"]) in audit_types
        assert all(e.get("event_id") in (car["event_id"], None) for e in car["audit"]), \
            "only this event's audit entries (and the device's boots) belong in its sidecar"
        assert car["media_s"] > 0 and car["segments"]
    assert len(by_source["button"]["markers"]) == 1   # the press at 1.8 s
    assert by_source["button"]["markers"][0]["type"] == "marker"
    assert by_source["trigger:holster"]["markers"] == []


def test_export_with_device_pub_pins_the_key(export_pinned, export_unpinned, recording):
    assert export_pinned.result.returncode == 0, str(export_pinned.result)
    pinned = sidecars(export_pinned.out)
    assert len(pinned) == 2
    assert all(c["device_key_pinned"] is True for c in pinned)
    assert all(c["device_key"] == device_key_hex(recording.device) for c in pinned)
    # Same files either way; only the flag differs.
    assert [p.name for p in sorted(export_pinned.out.iterdir())] == \
           [p.name for p in sorted(export_unpinned.out.iterdir())]


@pytest.mark.parametrize("which", ["custodian.pub", "device.pub", "device.json", "another custodian's secret"])
def test_export_refuses_a_key_that_is_not_a_custodian_secret_of_this_footage(
        bwc, recording, second_custodian, tmp_path, which):
    key = {"custodian.pub": recording.custodian.pub, "device.pub": recording.device.pub,
           "device.json": recording.device.dir / "device.json",
           "another custodian's secret": second_custodian.key}[which]
    out = tmp_path / "out"
    r = bwc("export", recording.storage, "--key", key, "--out", out)
    assert r.returncode == 2, str(r)
    assert r.stderr.startswith("bwc export: ")
    if which == "another custodian's secret":
        assert "not a custodian key" in r.stderr and "Nothing was exported" in r.stderr
    else:
        assert str(key) in r.stderr
        assert "openbwc-custodian-secret-v1" in r.stderr
    assert r.stdout == ""
    assert not out.exists(), "nothing may be written"


def test_export_pinned_to_another_device_exports_nothing(bwc, recording, blank_device, tmp_path):
    out = tmp_path / "out"
    r = bwc("export", recording.storage, "--key", recording.custodian.key, "--out", out,
            "--device-pub", blank_device.pub)
    assert r.returncode == 1, str(r)
    assert "verification failed, nothing exported" in r.stderr
    assert "seg-" in r.stderr and "not the expected device" in r.stderr
    assert not out.exists()


@pytest.mark.parametrize("existing", ["first event's mp4", "second event's json"])
def test_export_never_overwrites_an_existing_file(bwc, recording, export_unpinned, tmp_path, snapshot, existing):
    mp4s, jsons = exported(export_unpinned.out)
    clash = mp4s[0].name if existing == "first event's mp4" else jsons[1].name
    out = tmp_path / "out"
    out.mkdir()
    (out / clash).write_bytes(b"someone else's file\n")
    (out / "notes.txt").write_text("keep me\n")
    before = snapshot(out)
    r = bwc("export", recording.storage, "--key", recording.custodian.key, "--out", out)
    assert r.returncode == 2, str(r)
    assert "already exists" in r.stderr and clash in r.stderr
    assert snapshot(out) == before, "nothing overwritten, nothing added, no staging left behind"


def test_export_a_storage_dir_that_does_not_exist(bwc, recording, tmp_path):
    r = bwc("export", tmp_path / "nope", "--key", recording.custodian.key, "--out", tmp_path / "out")
    assert r.returncode == 2, str(r)
    assert "not a directory" in r.stderr
    assert not (tmp_path / "out").exists()


def test_export_an_empty_storage_dir_with_device_pub(bwc, recording, tmp_path):
    empty = tmp_path / "card"
    empty.mkdir()
    r = bwc("export", empty, "--key", recording.custodian.key, "--out", tmp_path / "out",
            "--device-pub", recording.device.pub)
    assert r.returncode == 2, str(r)
    assert "holds no recorded events" in r.stderr
    assert not (tmp_path / "out").exists()


def test_export_an_empty_storage_dir_without_device_pub(bwc, recording, tmp_path):
    empty = tmp_path / "card"
    empty.mkdir()
    r = bwc("export", empty, "--key", recording.custodian.key, "--out", tmp_path / "out")
    assert r.returncode == 2, str(r)
    assert str(empty) in r.stderr and "no" in r.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("inside", ["storage itself", "a folder inside it"])
def test_export_never_writes_plaintext_onto_the_evidence_card(bwc, recording, tmp_path, snapshot, inside):
    import shutil
    card = tmp_path / "card"
    shutil.copytree(recording.storage, card)
    before = snapshot(card)
    out = card if inside == "storage itself" else card / "exported"
    r = bwc("export", card, "--key", recording.custodian.key, "--out", out)
    assert r.returncode == 2, str(r)
    assert "must not be inside the evidence storage" in r.stderr
    assert snapshot(card) == before


def _top_level_boxes(path) -> list[bytes]:
    import struct
    boxes, pos, size_bytes = [], 0, path.stat().st_size
    with open(path, "rb") as f:
        while pos < size_bytes:
            f.seek(pos)
            size, kind = struct.unpack(">I4s", f.read(8))
            if size == 1:
                size = struct.unpack(">Q", f.read(8))[0]
            boxes.append(kind)
            pos += size
    return boxes


def _packets(mp4) -> list[tuple[str, int, bytes]]:
    """Each stream's packets in order (how two files interleave their chunks may differ)."""
    with av.open(str(mp4)) as container:
        return sorted(((p.stream.type, p.pts, bytes(p)) for p in container.demux() if p.size), key=lambda p: p[0])


def test_exported_mp4s_have_their_index_before_the_media(export_unpinned):
    """A player can start an export while it is still downloading (moov before mdat)."""
    for mp4 in exported(export_unpinned.out)[0]:
        boxes = _top_level_boxes(mp4)
        assert boxes.index(b"moov") < boxes.index(b"mdat"), boxes


def test_an_index_larger_than_its_reserved_room_is_written_by_faststart(recording, export_unpinned, tmp_path,
                                                                       monkeypatch):
    """More packets than the headers' rates announce: the same media, index still first."""
    from tools import cli, remux
    monkeypatch.setattr(remux, "MOOV_BASE_BYTES", 16)
    monkeypatch.setattr(remux, "MOOV_BYTES_PER_PACKET", 0)
    calls = []
    real_remux = remux.remux_event
    monkeypatch.setattr(remux, "remux_event", lambda *a: calls.append(a[4:]) or real_remux(*a))
    out = tmp_path / "out"
    code = cli.main(["export", str(recording.storage), "--key", str(recording.custodian.key), "--out", str(out)])
    assert code == 0
    assert len(calls) == 4 and [c == () for c in calls] == [False, True, False, True]   # two events, each retried
    for mine, reference in zip(exported(out)[0], exported(export_unpinned.out)[0]):
        boxes = _top_level_boxes(mine)
        assert boxes.index(b"moov") < boxes.index(b"mdat"), boxes
        assert _packets(mine) == _packets(reference)
