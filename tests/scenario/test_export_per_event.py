"""Export per event (issue 5 item 5): every intact event is exported whatever happens to
the others; the rest are listed with their reason on the terminal, in the summary and in
every sidecar, and the exit code says which case it was (docs/tools.md).

Reproduction 3: power is cut right after an event's signed header (the segment has K0
and no chunk), the camera reboots and records a complete event. `verify` says 3; export
must export the complete event, list the empty one, and exit 5.
"""
from __future__ import annotations

import json
import os
import shutil

import pytest

from device.evidence import segment_file
from device.evidence.keys import read_device_public
from device.evidence.segment_reader import verify_segment_file
from scenario_support import assert_continuous, decode_frames, make_custodian, make_device, record, scenario_toml
from tools import cli

pytestmark = pytest.mark.scenario

CUT = scenario_toml(6, [{"t_s": 3.0, "do": "button.double_press"}], pre_event_s=2, segment_s=2)
COMPLETE = scenario_toml(8, [{"t_s": 3.0, "do": "button.double_press"},
                             {"t_s": 4.5, "do": "button.hold", "hold_s": 1.5}],
                         pre_event_s=1, segment_s=2, hold_stop_s=1.5)
# Two events of five 1 s segments each: A is seg 1-5, B is seg 6-10.
TWO_EVENTS = scenario_toml(14, [{"t_s": 3.0, "do": "button.double_press"},
                                {"t_s": 5.5, "do": "button.hold", "hold_s": 1.5},
                                {"t_s": 9.0, "do": "button.double_press"},
                                {"t_s": 11.0, "do": "button.hold", "hold_s": 1.5}],
                           pre_event_s=1, segment_s=1, hold_stop_s=1.5)


class PowerCut(Exception):
    pass


@pytest.fixture(scope="module")
def cut_then_complete(tmp_path_factory, custodian):
    """Event 1: power cut after its header's K0 (no chunk signed). Event 2, after the
    reboot: a complete event of about 3 s."""
    root = tmp_path_factory.mktemp("cut-after-header")
    device = make_device(str(root / "device"), custodian, device_id="cut-header-cam")
    real = segment_file.SegmentFile.checkpoint

    def checkpoint(self, media_end_us):
        if self.chunk_count > 0:
            raise PowerCut("power lost before the segment's first flush")
        return real(self, media_end_us)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(segment_file.SegmentFile, "checkpoint", checkpoint)
        with pytest.raises(AssertionError, match="PowerCut"):
            record(device, custodian, CUT, None)
    record(device, custodian, COMPLETE, None)
    return device


@pytest.fixture(scope="module")
def two_events(tmp_path_factory, custodian):
    root = tmp_path_factory.mktemp("two-events")
    device = make_device(str(root / "device"), custodian, device_id="two-event-cam")
    record(device, custodian, TWO_EVENTS, None)
    names = sorted(n for n in os.listdir(device.storage) if n.startswith("seg-"))
    assert len(names) == 10, names
    return device


def _card(device, tmp_path) -> str:
    """A private copy of the device's storage, to tamper with."""
    return shutil.copytree(device.storage, str(tmp_path / "card"))


def _export(storage, device, custodian, out, capsys) -> tuple[int, str, str]:
    code = cli.main(["export", str(storage), "--key", custodian.secret_path, "--out", str(out),
                     "--device-pub", device.pub_path])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _outcomes(out) -> dict[str, dict]:
    """segment range ("seg-1..seg-5" as first and last number) -> summary entry."""
    summary = json.loads((out / "export-summary.json").read_text())
    return {(int(e["segments"][0][4:14]), int(e["segments"][-1][4:14])): e for e in summary["events"]}


def _export_without(device, name, custodian, tmp_path, capsys):
    """Export a copy of the storage with segment file `name` deleted: exit 1 (a segment
    is missing); the out dir and the summary's outcomes."""
    card = _card(device, tmp_path)
    os.unlink(os.path.join(card, name))
    out = tmp_path / "out"
    code, stdout, _ = _export(card, device, custodian, out, capsys)
    assert code == 1, stdout
    return out, _outcomes(out)


def _assert_plays(out, entry) -> dict:
    """The exported event's MP4 decodes end to end, every frame in order; its sidecar."""
    assert entry["outcome"] == "exported", entry
    assert_continuous(decode_frames(str(out / entry["mp4"])))
    return json.loads((out / entry["sidecar"]).read_text())


def _flip_byte_in_a_chunk(path: str, device) -> None:
    with open(path, "rb") as f:
        report = verify_segment_file(f, read_device_public(device.pub_path))
    offset, length = report.chunks[0]
    with open(path, "r+b") as f:
        f.seek(offset + length // 2)
        byte = f.read(1)
        f.seek(offset + length // 2)
        f.write(bytes([byte[0] ^ 0x01]))


def test_cut_right_after_header_then_complete_event_exports_the_complete_one(
        cut_then_complete, custodian, tmp_path, capsys):
    device = cut_then_complete
    assert cli.main(["verify", device.storage, "--device-pub", device.pub_path]) == 3
    capsys.readouterr()
    out = tmp_path / "out"
    code, stdout, stderr = _export(device.storage, device, custodian, out, capsys)
    assert code == 5, (stdout, stderr)
    assert stderr == ""
    mp4s = sorted(p for p in out.iterdir() if p.suffix == ".mp4")
    assert len(mp4s) == 1, sorted(out.iterdir())
    summary = json.loads((out / "export-summary.json").read_text())
    assert summary["exit_code"] == 5 and summary["exported"] == 1 and summary["not_exported"] == 1
    by_outcome = {e["outcome"]: e for e in summary["events"]}
    assert set(by_outcome) == {"exported", "empty"}, summary["events"]
    assert by_outcome["exported"]["mp4"] == mp4s[0].name
    empty = by_outcome["empty"]
    assert "no media" in empty["reason"] and empty["mp4"] is None
    assert f"event {empty['event_id'][:8]}" in stdout and "empty: no media" in stdout
    sidecar = _assert_plays(out, by_outcome["exported"])
    others = {e["event_id"]: e for e in sidecar["storage_events"]}
    assert others[empty["event_id"]]["outcome"] == "empty"
    assert others[sidecar["event_id"]]["outcome"] == "exported"


def test_intact_storage_exports_every_event_and_exits_0(two_events, custodian, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, _ = _export(two_events.storage, two_events, custodian, out, capsys)
    assert code == 0, stdout
    outcomes = _outcomes(out)
    assert set(outcomes) == {(1, 5), (6, 10)}
    for entry in outcomes.values():
        assert _assert_plays(out, entry)["verification"]["outcome"] == "authentic"
    assert "2 of 2 event(s) exported" in stdout


@pytest.mark.parametrize("tampered", ["seg-0000000003.bwc", "seg-0000000005.bwc", "seg-0000000008.bwc"])
def test_a_tampered_segment_stops_only_its_own_event(two_events, custodian, tmp_path, capsys, tampered):
    """A byte flipped inside a chunk of one event (in the middle, at its end, or in the
    later event): that event is listed as damaged, the other still exports, exit 1."""
    card = _card(two_events, tmp_path)
    _flip_byte_in_a_chunk(os.path.join(card, tampered), two_events)
    out = tmp_path / "out"
    code, stdout, stderr = _export(card, two_events, custodian, out, capsys)
    assert code == 1, (stdout, stderr)
    bad_seq = int(tampered[4:14])
    outcomes = _outcomes(out)
    bad = next(e for (lo, hi), e in outcomes.items() if lo <= bad_seq <= hi + 1)
    good = next(e for e in outcomes.values() if e is not bad)
    assert bad["outcome"] == "damaged" and f"{tampered} failed verification" in bad["reason"], bad
    assert bad["mp4"] is None and "not exported: event" in stdout and bad["event_id"][:8] in stdout
    sidecar = _assert_plays(out, good)
    listed = {e["event_id"]: e["outcome"] for e in sidecar["storage_events"]}
    assert listed[bad["event_id"]] == bad["outcome"]
    assert sidecar["verification"]["storage"]["outcome"] == "integrity_failure"
    assert sorted(p.suffix for p in out.iterdir()) == [".json", ".json", ".mp4"]


def test_a_hole_in_an_event_is_listed_as_missing_segments(two_events, custodian, tmp_path, capsys):
    out, outcomes = _export_without(two_events, "seg-0000000003.bwc", custodian, tmp_path, capsys)
    hole = outcomes[(1, 5)]
    assert hole["outcome"] == "missing_segments" and "segment 2 of the event is missing" in hole["reason"]
    assert hole["segments"] == ["seg-0000000001.bwc", "seg-0000000002.bwc",
                                "seg-0000000004.bwc", "seg-0000000005.bwc"]
    _assert_plays(out, outcomes[(6, 10)])


def test_a_deleted_last_segment_is_missing_from_its_own_event_not_the_next(
        two_events, custodian, tmp_path, capsys):
    """The verifier reports the hole on the next segment present (B's first); it is A's
    end that is missing, so A is listed and B, which chains past the hole, still exports."""
    out, outcomes = _export_without(two_events, "seg-0000000005.bwc", custodian, tmp_path, capsys)
    assert outcomes[(1, 4)]["outcome"] == "missing_segments"
    assert "ends in segment 5, which is missing" in outcomes[(1, 4)]["reason"]
    _assert_plays(out, outcomes[(6, 10)])


def test_events_not_encrypted_to_this_key_are_listed_and_exit_5(tmp_path, custodian, capsys):
    """The device was re-provisioned to another custodian between two events: this key
    exports the first and lists the second as not encrypted to it."""
    other = make_custodian(str(tmp_path / "other"))
    device = make_device(str(tmp_path / "device"), custodian, device_id="reprovisioned-cam")
    one_event = scenario_toml(6, [{"t_s": 2.0, "do": "button.double_press"},
                                  {"t_s": 3.0, "do": "button.hold", "hold_s": 1.5}],
                              pre_event_s=1, segment_s=2, hold_stop_s=1.5)
    record(device, custodian, one_event, None)
    identity_path = os.path.join(device.directory, "device.json")
    with open(identity_path, encoding="utf-8") as f:
        identity = json.load(f)
    with open(other.public_path, encoding="utf-8") as f:
        identity["custodian_public_keys"] = [f.read().strip()]
    with open(identity_path, "w", encoding="utf-8") as f:
        json.dump(identity, f)
    record(device, other, one_event, None)

    out = tmp_path / "out"
    code, stdout, _ = _export(device.storage, device, custodian, out, capsys)
    assert code == 5, stdout
    summary = json.loads((out / "export-summary.json").read_text())
    assert [e["outcome"] for e in summary["events"]] == ["exported", "not_a_recipient"]
    assert "not encrypted to this key" in summary["events"][1]["reason"]
    _assert_plays(out, summary["events"][0])
    # The other custodian gets the mirror image; a key for neither is a usage error.
    out_other = tmp_path / "out-other"
    code, stdout, _ = _export(device.storage, device, other, out_other, capsys)
    assert code == 5
    stranger = make_custodian(str(tmp_path / "stranger"))
    code, stdout, stderr = _export(device.storage, device, stranger, tmp_path / "out-stranger", capsys)
    assert code == 2 and "Nothing was exported" in stderr
    assert not (tmp_path / "out-stranger").exists()


def test_a_segment_that_fails_to_decrypt_midway_stops_only_its_event(
        two_events, custodian, tmp_path, capsys, monkeypatch):
    """Format §7: a verified segment that does not decrypt means a faulty device. The
    failure comes in the middle of the stream, after part of the event's MP4 was
    written: that MP4 is dropped, the event is listed, the other one exports, exit 1."""
    from device.evidence.decrypt import DecryptError
    from tools import plainstream

    real = plainstream.decrypt_chunks

    def decrypt_chunks(report, secret, read_at):
        for n, chunk in enumerate(real(report, secret, read_at)):
            if report.header["seq"] == 7 and n == 1:
                raise DecryptError("segment 7: chunk 1 fails to decrypt")
            yield chunk

    monkeypatch.setattr(plainstream, "decrypt_chunks", decrypt_chunks)
    out = tmp_path / "out"
    code, stdout, stderr = _export(two_events.storage, two_events, custodian, out, capsys)
    assert code == 1, (stdout, stderr)
    outcomes = _outcomes(out)
    assert outcomes[(6, 10)]["outcome"] == "decryption_failure"
    assert "chunk 1 fails to decrypt" in outcomes[(6, 10)]["reason"]
    _assert_plays(out, outcomes[(1, 5)])
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["export-summary.json", outcomes[(1, 5)]["mp4"], outcomes[(1, 5)]["sidecar"]])
