"""Release (docs/offload.md §8 step 4, OFF-2): on a receipt the device trusts, it logs the
receipt with its own audit log and deletes exactly what the receipt covers; the card
then still verifies as authentic (exit 0 of `bwc verify`). Any receipt it cannot trust
deletes nothing and logs nothing."""
from __future__ import annotations

import os

import pytest
from nacl.signing import SigningKey

from offload_support import card_files, intake_signing_key
from device.config import load_identity
from device.evidence.audit_lines import line_hash
from device.evidence.keys import read_device_public
from device.evidence.receipt import ReceiptError, make_receipt
from device.evidence.storage_verify import verify_storage
from device.offload.release import release
from hal.filekeystore import FileKeyStore
from hal.realclock import RealClock
from scenario_support import audit_entries, audit_files

UTC_US = 1_800_000_000_000_000


def _audit_lines(storage: str) -> list[bytes]:
    lines = []
    for name in audit_files(storage):
        with open(os.path.join(storage, name), "rb") as f:
            lines += [line for line in f.read().split(b"\n") if line]
    return lines


def _segment_point(card, seq: int, checkpoint: int = -1) -> dict:
    report = verify_storage(card.storage, read_device_public(card.pub_path))
    seg = next(s for s in report.segments if s.seq == seq)
    cp = seg.report.checkpoints[checkpoint]
    return {"seq": seq, "hash": cp.hash.hex(), "chunks": cp.chunk_count}


def _audit_point(card, n: int | None = None) -> dict:
    lines = _audit_lines(card.storage)
    line = lines[-1] if n is None else lines[n]
    return {"n": audit_entries(card.storage)[-1]["n"] if n is None else n, "hash": line_hash(line)}


def _card_held(card) -> dict[int, str]:
    """What an intake holding every segment of this card would list in its state."""
    import hashlib
    held = {}
    for name in os.listdir(card.storage):
        if name.startswith("seg-"):
            with open(os.path.join(card.storage, name), "rb") as f:
                held[int(name[4:14])] = hashlib.sha256(f.read()).hexdigest()
    return held


def _release(card, receipt, held: dict[int, str] | None = None):
    return release(receipt, load_identity(card.directory), card.storage, FileKeyStore(card.directory), RealClock(),
                   held=_card_held(card) if held is None else held)


def test_segments_the_intake_does_not_hold_as_these_bytes_stay(card):
    """A receipt vouches for a prefix of a history; a cloned device's card may hold other
    bytes under the same numbers. Only what the intake's state lists with the same hash goes."""
    newest_seq = max(int(n[4:14]) for n in os.listdir(card.storage) if n.startswith("seg-"))
    receipt = _receipt(card, {"seq": newest_seq + 50, "hash": "ab" * 32, "chunks": 1}, None)
    held = dict(_card_held(card))
    held[2] = "cd" * 32                      # the intake holds another segment 2
    del held[3]                              # and no segment 3
    result = _release(card, receipt, held)
    assert "seg-0000000002.bwc" not in result.deleted and "seg-0000000003.bwc" not in result.deleted
    assert "seg-0000000001.bwc" in result.deleted
    assert any("does not hold these bytes" in why for why in result.kept_reason)
    nothing = _release(card, _receipt(card, {"seq": newest_seq + 50, "hash": "ab" * 32, "chunks": 1}, None), {})
    assert nothing.deleted == []


def _receipt(card, segments, audit, key: SigningKey | None = None, device_hex: str | None = None) -> dict:
    device_hex = device_hex or bytes(read_device_public(card.pub_path)).hex()
    return make_receipt(key or intake_signing_key(), device_hex, segments, audit, UTC_US)


def _verify(card):
    return verify_storage(card.storage, read_device_public(card.pub_path))


def test_a_receipt_for_everything_leaves_only_the_newest_audit_file_and_the_card_verifies(card):
    before = sorted(os.listdir(card.storage))
    newest_seq = max(int(n[4:14]) for n in before if n.startswith("seg-"))
    receipt = _receipt(card, _segment_point(card, newest_seq), _audit_point(card))
    result = _release(card, receipt)
    assert sorted(result.deleted) == before            # every segment and the old audit file
    left = os.listdir(card.storage)
    assert left == ["audit-0000000002.log"]
    entries = audit_entries(card.storage)
    assert [e["type"] for e in entries] == ["receipt"] and entries[0]["n"] == result.logged_entry
    assert entries[0]["receipt"] == receipt
    report = _verify(card)
    assert report.outcome == "authentic", report.to_json()
    assert {g.kind for g in report.gaps} == {"receipt"}


def test_a_receipt_for_part_of_the_history_deletes_exactly_that_part(card):
    receipt = _receipt(card, _segment_point(card, 3), _audit_point(card, 5))
    result = _release(card, receipt)
    # Segments 1–3 are covered; the one audit file also holds entries after 5, so it stays.
    assert sorted(result.deleted) == ["seg-0000000001.bwc", "seg-0000000002.bwc", "seg-0000000003.bwc"]
    assert sorted(os.listdir(card.storage)) == ["audit-0000000001.log", "audit-0000000002.log",
                                                "seg-0000000004.bwc", "seg-0000000005.bwc", "seg-0000000006.bwc"]
    report = _verify(card)
    assert report.outcome == "authentic", report.to_json()


def test_a_segment_the_intake_holds_only_in_part_stays_on_the_card(card):
    receipt = _receipt(card, _segment_point(card, 3, checkpoint=0), None)
    result = _release(card, receipt)
    assert sorted(result.deleted) == ["seg-0000000001.bwc", "seg-0000000002.bwc"]
    assert any("only to chunk" in why for why in result.kept_reason)
    assert _verify(card).outcome == "authentic", _verify(card).to_json()


def test_a_receipt_naming_a_checkpoint_this_card_does_not_have_deletes_nothing(card):
    before = card_files(card.storage)
    forked = dict(_segment_point(card, 3), hash="ab" * 32)
    result = _release(card, _receipt(card, forked, None))
    assert result.deleted == [] and result.logged_entry is None
    assert card_files(card.storage) == before


def test_receipting_the_same_history_again_changes_nothing(card):
    receipt = _receipt(card, _segment_point(card, 6), _audit_point(card))
    _release(card, receipt)
    before = card_files(card.storage)
    again = _release(card, _receipt(card, receipt["segments"], _audit_point(card)))
    assert again.deleted == [] and again.logged_entry is None
    assert card_files(card.storage) == before


@pytest.mark.parametrize("how", ["untrusted", "forged", "other_device"])
def test_a_receipt_the_device_cannot_trust_deletes_nothing_and_logs_nothing(card, how):
    segments, audit = _segment_point(card, 6), _audit_point(card)
    if how == "untrusted":
        receipt = _receipt(card, segments, audit, key=SigningKey(bytes([9]) * 32))
    elif how == "forged":
        receipt = dict(_receipt(card, segments, audit), received_utc_us=UTC_US + 1)
    else:
        receipt = _receipt(card, segments, audit, device_hex="cd" * 32)
    before = card_files(card.storage)
    chain_before = FileKeyStore(card.directory).read_record("chain.json")
    with pytest.raises(ReceiptError):
        _release(card, receipt)
    assert card_files(card.storage) == before
    assert FileKeyStore(card.directory).read_record("chain.json") == chain_before
    assert _verify(card).outcome == "authentic"
