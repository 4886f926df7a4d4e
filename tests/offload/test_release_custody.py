"""The card still reads honest after a partial offload (hostile review of issue 7): the
intake may hold more of the audit chain than of the segments (a drop mid-segments, a
refused or unsent segment), and a storage fault may leave a segment whose successor names
one of its earlier checkpoints. Receipts from a real Ledger over those cards; release()
deletes what they cover — and keeps what the segments left on the card still need — and
the card verifies authentic or cut short by power loss, never tampered."""
from __future__ import annotations

import hashlib
import os
import sys

import pytest
from nacl.signing import VerifyKey

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "vectors", "sets"))

import generate as sets  # noqa: E402

from device.config import load_identity  # noqa: E402
from device.evidence.storage_verify import verify_storage  # noqa: E402
from device.offload.release import release  # noqa: E402
from hal.filekeystore import FileKeyStore  # noqa: E402
from hal.realclock import RealClock  # noqa: E402
from tools.intake.ledger import Ledger  # noqa: E402
from tools.intake.store import FileStore  # noqa: E402


def _card(tmp_path, scenario: str):
    device = sets.Device(tmp_path, "cam", intake=True)
    device.run(scenario)
    return device


def _upload(ledger: Ledger, device_hex: str, storage, audit: bool, segments_below: int) -> dict:
    if audit:
        for path in sorted(p for p in storage.iterdir() if p.name.startswith("audit-")):
            data = path.read_bytes()
            data = data[:data.rfind(b"\n") + 1]
            if data:
                ledger.put_audit(device_hex, int(path.name[6:16]), 0, data)
    for path in sorted(p for p in storage.iterdir() if p.name.startswith("seg-")):
        seq = int(path.name[4:14])
        if seq >= segments_below:
            break
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        for i in range(-(-len(data) // 16384)):
            ledger.put_part(device_hex, seq, sha, i, data[i * 16384:(i + 1) * 16384], len(data), 16384)
        ledger.commit(device_hex, seq, sha)
    return ledger.receipt(device_hex)


@pytest.mark.parametrize("scenario,segments_below,something_leaves", [
    (sets.CUT_THEN_REBOOT, 3, True),         # the cut segment stays, and the recovery entry with it
    (sets.CUT_THEN_REBOOT, 2, True),
    (sets.FSYNC_FAULT_THEN_RETRY, 2, False),  # segment 2 names a non-last checkpoint of 1: both stay
    (sets.FSYNC_FAULT_THEN_RETRY, 3, True),
])
def test_a_partial_receipt_never_makes_an_honest_card_read_tampered(tmp_path, scenario, segments_below,
                                                                     something_leaves):
    allowed = {"authentic", "truncated"}
    device = _card(tmp_path, scenario)
    key = VerifyKey(bytes.fromhex(device.key_hex()))
    assert verify_storage(str(device.storage), key).outcome in allowed
    ledger = Ledger(FileStore(str(tmp_path / "store")), sets.INTAKE)
    receipt = _upload(ledger, device.key_hex(), device.storage, audit=True, segments_below=segments_below)
    held = {item["seq"]: item["sha256"] for item in ledger.state(device.key_hex())["segments"]}
    result = release(receipt, load_identity(str(device.dir)), str(device.storage), FileKeyStore(str(device.dir)),
                     RealClock(), held=held)
    report = verify_storage(str(device.storage), key)
    assert report.outcome in allowed, (result, report.to_json())
    assert bool(result.deleted) == something_leaves, result
