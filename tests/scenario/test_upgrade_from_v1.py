"""A card written by firmware 0.1 (format v1) in a camera that now runs firmware 0.2: the
old footage keeps verifying and exporting, the new footage continues both chains, and the
card as a whole reads as what it is (issue 5 item 6)."""
from __future__ import annotations

import json
import os
import random
import sys

import pytest
from nacl.signing import SigningKey

from device.evidence.format import CHUNK_KIND_MEDIA, CHUNK_KIND_METADATA, segment_file_name
from device.evidence.keys import read_custodian_secret, read_device_public
from device.evidence.segment_file import SegmentFile
from device.evidence.storage_verify import verify_storage
from hal.dirstorage import DirectoryStorage
from scenario_support import audit_entries, make_custodian, make_device, record, scenario_toml
from tools.export import export_events

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "unit"))
from legacy_audit import LegacyAuditLog  # noqa: E402

pytestmark = pytest.mark.scenario

EVENT = scenario_toml(5, [{"t_s": 1.0, "do": "button.double_press"},
                          {"t_s": 2.5, "do": "button.hold", "hold_s": 3.0}], pre_event_s=1, segment_s=2)


def _v1_card(device, cut_last: bool) -> None:
    """What firmware 0.1 left: v1 segments (random payload; verification never decrypts),
    one audit.log, and its chain.json (no audit head)."""
    key = SigningKey(bytes.fromhex(open(os.path.join(device.directory, "device.key")).read().strip()))
    custodian = json.load(open(os.path.join(device.directory, "device.json")))["custodian_public_keys"][0]
    from nacl.public import PublicKey
    custodian_key = PublicKey(bytes.fromhex(custodian.partition(":")[2]))
    storage = DirectoryStorage(device.storage)
    log = LegacyAuditLog(storage, key, "scenario-cam")
    rng, head, now = random.Random(3), None, 1_000_000
    log.append("boot", now, 1_700_000_000_000_000, firmware="0.1.0")
    for seq, event_id in ((1, "a" * 32), (2, "b" * 32)):
        fields = {"device_id": "scenario-cam", "device_key": bytes(key.verify_key).hex(), "firmware": "0.1.0",
                  "seq": seq, "prev": head, "event_id": event_id, "event_segment": 0,
                  "event_origin_utc_us": 1_700_000_000_000_000 + seq, "event_origin_monotonic_us": now,
                  "media_start_us": 0, "created_utc_us": 1_700_000_000_000_000 + seq,
                  "video": {"codec": "h264", "width": 320, "height": 180, "fps": 30}, "audio": None}
        seg = SegmentFile(storage.create(segment_file_name(seq)), key, fields, [custodian_key], version=1)
        log.append("activation", now, 1_700_000_000_000_000, source="button", event_id=event_id, first_seq=seq)
        seg.add(CHUNK_KIND_METADATA, b'{"type":"activation","media_us":0}')
        seg.add(CHUNK_KIND_MEDIA, rng.randbytes(300))
        cp = seg.checkpoint(1_000_000)
        if cut_last and seq == 1:
            seg.add(CHUNK_KIND_MEDIA, rng.randbytes(300))
            seg.abandon()              # power cut; firmware 0.1 then rebooted:
            head = {"seq": 1, "hash": cp.hash.hex(), "chunks": cp.chunk_count}
            log.close()
            log = LegacyAuditLog(storage, key, "scenario-cam")
            log.append("recovery", now + 1, 1_700_000_000_000_001, seq=1, chunks=cp.chunk_count)
            log.append("boot", now + 2, 1_700_000_000_000_002, firmware="0.1.0")
            continue
        cp = seg.close(rng.randbytes(100), 2_000_000)
        head = {"seq": seq, "hash": cp.hash.hex(), "chunks": cp.chunk_count}
        log.append("deactivation", now, 1_700_000_000_000_000, source="button", event_id=event_id,
                   last_seq=seq, last_hash=cp.hash.hex())
    log.append("shutdown", now + 3, 1_700_000_000_000_003)
    log.close()
    os.makedirs(os.path.join(device.directory, "state"), mode=0o700, exist_ok=True)
    with open(os.path.join(device.directory, "state", "chain.json"), "w") as f:
        json.dump({"next_seq": 3, "head": head, "open_seq": None, "running": False}, f)


@pytest.mark.parametrize("cut", [False, True], ids=["clean", "with-a-v1-power-cut"])
def test_a_v1_card_keeps_verifying_after_the_upgrade(tmp_path, cut):
    custodian = make_custodian(str(tmp_path / "custodian"))
    device = make_device(str(tmp_path / "device"), custodian)
    _v1_card(device, cut)
    key = read_device_public(device.pub_path)
    before = verify_storage(device.storage, key)
    assert before.outcome == ("truncated" if cut else "authentic"), before.to_json()
    assert before.format_versions == [1]

    record(device, custodian, EVENT, None)      # firmware 0.2 on the same card
    names = sorted(os.listdir(device.storage))
    assert "audit.log" in names and "audit-0000000001.log" in names
    entries = audit_entries(device.storage)
    assert [e["n"] for e in entries] == list(range(len(entries)))   # one chain across both formats
    after = verify_storage(device.storage, key)
    assert after.outcome == before.outcome, after.to_json()
    assert after.problems == [] and after.format_versions == [1, 2]
    result = export_events(device.storage, read_custodian_secret(custodian.secret_path), key,
                           str(tmp_path / "out"), True)
    v2_events = [eid for eid, segs in after.events().items() if segs[0].header["version"] == 2]
    assert len(v2_events) == 1 and v2_events[0] in {ev.event_id for ev in result.exported}
