"""Format v1 audit logs (docs/format.md §5.4, firmware 0.1): a v1 card still verifies; power loss vs tampering."""
from __future__ import annotations

import json

import pytest
from nacl.signing import SigningKey

from device.evidence.audit_lines import GENESIS, LEGACY_AUDIT_FILE as AUDIT_FILE
from device.evidence.audit_verify import verify_audit
from legacy_audit import LegacyAuditLog as AuditLog
from device.evidence.segment_reader import AUTHENTIC, INTEGRITY_FAILURES, TRUNCATED
from hal.dirstorage import DirectoryStorage

DEVICE = SigningKey(bytes([1]) * 32)
OTHER = SigningKey(bytes([5]) * 32)


def entries_of_a_day(log: AuditLog) -> None:
    log.append("boot", 1_000, 1_700_000_000_000_000, firmware="0.1.0")
    log.append("activation", 2_000, 1_700_000_000_001_000, source="button", event_id="e1", first_seq=1)
    log.append("marker", 3_000, 1_700_000_000_002_000, source="button", event_id="e1")
    log.append("deactivation", 4_000, 1_700_000_000_003_000, source="button", event_id="e1",
               last_seq=2, last_hash="ab" * 32)
    log.append("shutdown", 5_000, 1_700_000_000_004_000)


@pytest.fixture
def storage(tmp_path):
    return DirectoryStorage(str(tmp_path / "card"))


def read(storage) -> bytes:
    with storage.open_read(AUDIT_FILE) as f:
        return f.read()


def write(storage, data: bytes) -> None:
    with open(f"{storage.root}/{AUDIT_FILE}", "wb") as f:
        f.write(data)


@pytest.fixture
def day_log(storage) -> bytes:
    log = AuditLog(storage, DEVICE, "cam-7")
    entries_of_a_day(log)
    log.close()
    return read(storage)


def lines_of(data: bytes) -> list[bytes]:
    return data.split(b"\n")[:-1]


def join(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


# -- round trip ----------------------------------------------------------------------------

def test_append_and_verify_round_trip(day_log):
    report = verify_audit(day_log, DEVICE.verify_key)
    assert report.outcome == AUTHENTIC, report.reason
    assert [e["type"] for e in report.entries] == ["boot", "activation", "marker", "deactivation", "shutdown"]
    assert [e["n"] for e in report.entries] == [0, 1, 2, 3, 4]
    assert report.entries[0]["prev"] == GENESIS
    assert all(e["device_id"] == "cam-7" for e in report.entries)
    assert report.entries[1]["first_seq"] == 1 and report.entries[1]["event_id"] == "e1"
    assert report.entries[3]["last_hash"] == "ab" * 32
    assert report.torn_lines == 0


def test_lines_are_json_space_signature(day_log):
    for line in lines_of(day_log):
        body, _, sig = line.rpartition(b" ")
        assert isinstance(json.loads(body), dict)
        assert len(sig) == 128 and bytes.fromhex(sig.decode())


def test_reopening_continues_the_chain(storage, day_log):
    log = AuditLog(storage, DEVICE, "cam-7")
    entry = log.append("boot", 6_000, 1_700_000_000_005_000)
    log.close()
    assert entry["n"] == 5
    report = verify_audit(read(storage), DEVICE.verify_key)
    assert report.outcome == AUTHENTIC and len(report.entries) == 6


def test_unknown_entry_type_is_refused(storage):
    with pytest.raises(ValueError, match="unknown audit entry type"):
        AuditLog(storage, DEVICE, "cam-7").append("party", 1, 2)


def test_empty_log_verifies_with_no_entries():
    report = verify_audit(b"", DEVICE.verify_key)
    assert report.outcome == AUTHENTIC and report.entries == []


# -- tampering -----------------------------------------------------------------------------

@pytest.mark.parametrize("index", [0, 2, 4])
def test_removing_a_line_breaks_the_chain(day_log, index):
    lines = lines_of(day_log)
    del lines[index]
    report = verify_audit(join(lines), DEVICE.verify_key)
    if index == 4:
        # Removing the newest entry is the documented limit (§6): the rest still chains.
        assert report.outcome == AUTHENTIC and len(report.entries) == 4
    else:
        assert report.outcome in INTEGRITY_FAILURES
        assert "hash chain" in report.reason


@pytest.mark.parametrize("a, b", [(0, 1), (1, 2), (3, 4)])
def test_reordering_lines_breaks_the_chain(day_log, a, b):
    lines = lines_of(day_log)
    lines[a], lines[b] = lines[b], lines[a]
    report = verify_audit(join(lines), DEVICE.verify_key)
    assert report.outcome in INTEGRITY_FAILURES and not report.ok


def test_duplicating_a_line_breaks_the_chain(day_log):
    lines = lines_of(day_log)
    lines.insert(2, lines[1])
    assert verify_audit(join(lines), DEVICE.verify_key).outcome in INTEGRITY_FAILURES


@pytest.mark.parametrize("index", [0, 2, 4])
@pytest.mark.parametrize("edit", ["json", "signature"])
def test_editing_a_line_is_caught(day_log, index, edit):
    lines = lines_of(day_log)
    if edit == "json":
        lines[index] = lines[index].replace(b'"utc_us":1', b'"utc_us":2')
    else:
        lines[index] = lines[index][:-1] + (b"0" if lines[index][-1:] != b"0" else b"1")
    assert lines != lines_of(day_log)
    report = verify_audit(join(lines), DEVICE.verify_key)
    assert report.outcome in INTEGRITY_FAILURES, report.outcome
    assert report.entries == []


def test_inserting_a_garbage_line_is_caught(day_log):
    lines = lines_of(day_log)
    lines.insert(3, b"power-loss looking junk")
    assert verify_audit(join(lines), DEVICE.verify_key).outcome in INTEGRITY_FAILURES


def test_a_log_signed_by_another_device_fails(day_log, tmp_path):
    assert verify_audit(day_log, OTHER.verify_key).outcome in INTEGRITY_FAILURES
    # Splicing a correctly chained line from another device is caught too.
    other = DirectoryStorage(str(tmp_path / "other"))
    log = AuditLog(other, OTHER, "cam-7")
    entries_of_a_day(log)
    log.close()
    lines = lines_of(day_log)
    lines[0] = lines_of(read(other))[0]
    assert verify_audit(join(lines), DEVICE.verify_key).outcome in INTEGRITY_FAILURES


# -- power loss ------------------------------------------------------------------------------

def cut_points(line_length: int) -> list[int]:
    # Inside the JSON, at the space, inside the signature (odd and even hex lengths).
    return [1, line_length // 2, line_length - 129, line_length - 128, line_length - 40, line_length - 39]


def test_a_torn_last_line_is_truncated_not_tampering(day_log):
    last = lines_of(day_log)[-1]
    for cut in cut_points(len(last)):
        data = day_log[:len(day_log) - len(last) - 1 + cut]
        report = verify_audit(data, DEVICE.verify_key)
        assert report.outcome == TRUNCATED, (cut, report.reason)
        assert [e["n"] for e in report.entries] == [0, 1, 2, 3]


@pytest.mark.parametrize("which", range(6))
def test_reopening_after_a_torn_line_needs_a_recovery_entry_then_verifies(storage, day_log, which):
    last = lines_of(day_log)[-1]
    cut = cut_points(len(last))[which]
    write(storage, day_log[:len(day_log) - len(last) - 1 + cut])

    log = AuditLog(storage, DEVICE, "cam-7")
    assert log.needs_recovery
    with pytest.raises(ValueError, match="recovery"):
        log.append("boot", 9_000, 1_700_000_000_009_000)
    recovery = log.append("recovery", 9_000, 1_700_000_000_009_000)
    log.append("boot", 9_001, 1_700_000_000_009_001)
    log.close()

    report = verify_audit(read(storage), DEVICE.verify_key)
    assert report.outcome == AUTHENTIC, report.reason
    assert report.torn_lines == 1
    assert [e["type"] for e in report.entries][-2:] == ["recovery", "boot"]
    assert recovery["n"] == 4  # the torn entry never counted


def test_torn_exactly_before_the_newline_then_recovery_verifies(storage, day_log):
    write(storage, day_log[:-1])
    assert verify_audit(read(storage), DEVICE.verify_key).outcome == TRUNCATED
    log = AuditLog(storage, DEVICE, "cam-7")
    log.append("recovery", 9_000, 1_700_000_000_009_000)
    log.close()
    assert verify_audit(read(storage), DEVICE.verify_key).outcome == AUTHENTIC


def test_power_lost_again_while_writing_the_recovery_entry(storage, day_log):
    last = lines_of(day_log)[-1]
    write(storage, day_log[:len(day_log) - len(last) - 1 + 30])   # torn inside the JSON
    log = AuditLog(storage, DEVICE, "cam-7")
    log.append("recovery", 9_000, 1_700_000_000_009_000)
    log.close()
    write(storage, read(storage)[:-30])                              # the recovery write is torn too
    log = AuditLog(storage, DEVICE, "cam-7")
    log.append("recovery", 9_500, 1_700_000_000_009_500)
    log.close()
    assert verify_audit(read(storage), DEVICE.verify_key).ok


def test_a_torn_line_without_recovery_in_the_middle_is_tampering(day_log):
    lines = lines_of(day_log)
    lines[2] = lines[2][:50]   # looks torn, but later entries follow without a recovery
    assert verify_audit(join(lines), DEVICE.verify_key).outcome in INTEGRITY_FAILURES


def test_a_recovery_entry_must_name_the_torn_bytes(storage, day_log):
    last = lines_of(day_log)[-1]
    write(storage, day_log[:len(day_log) - 60])
    log = AuditLog(storage, DEVICE, "cam-7")
    log.append("recovery", 9_000, 1_700_000_000_009_000)
    log.close()
    data = read(storage)
    assert verify_audit(data, DEVICE.verify_key).outcome == AUTHENTIC
    # Someone swaps the torn line for other text: the recovery entry no longer explains it.
    torn_start = len(day_log) - len(last) - 1
    torn_len = len(last) - 59
    forged = data[:torn_start] + b"x" * torn_len + data[torn_start + torn_len:]
    assert verify_audit(forged, DEVICE.verify_key).outcome in INTEGRITY_FAILURES
