"""Verifying a whole evidence storage (docs/format.md §6): what a custodian sees when
segments are deleted, renamed, duplicated or spliced, and when power was lost."""
from __future__ import annotations

import os
import random
import shutil

import pytest
from nacl.public import PrivateKey
from nacl.signing import SigningKey

from device.chainstate import ChainState
from device.evidence.audit import AuditLog
from device.evidence.audit_lines import audit_file_name
from device.evidence.format import CHECKPOINT_RECORD_BYTES, CHUNK_KIND_MEDIA, CHUNK_KIND_METADATA, segment_file_name
from device.evidence.segment_file import SegmentFile
from device.evidence.segment_reader import AUTHENTIC, TRUNCATED, WRONG_DEVICE
from device.evidence.storage_verify import INTEGRITY_FAILURE, verify_storage
from hal.dirstorage import DirectoryStorage

DEVICE = SigningKey(bytes([1]) * 32)
OTHER_DEVICE = SigningKey(bytes([5]) * 32)
CUSTODIAN = PrivateKey(bytes([2]) * 32)
SECOND_US = 1_000_000


def name(seq: int) -> str:
    return segment_file_name(seq)


class Card:
    """Builds an evidence storage the way the device does (device/writer.py, firmware.py):
    segments seq 1, 2, … chained by `prev` to the last checkpoint of the one before, an
    event's segments contiguous in media time, and an activation and deactivation audit
    entry per event. Power loss and reboots are simulated by cutting files short."""

    def __init__(self, root, key: SigningKey = DEVICE, device_id: str = "cam-7") -> None:
        self.root = str(root)
        self.storage = DirectoryStorage(self.root)
        self.key, self.device_id = key, device_id
        self.next_seq, self.head = 1, None
        self.now_us = 5 * SECOND_US
        self.events = 0
        self.chain = ChainState()
        self.audit = AuditLog(self.storage, key, device_id, self.chain, lambda: None)
        self._log("boot", firmware="0.1.0")
        self.rng = random.Random(99)

    def _log(self, entry_type: str, **fields) -> dict:
        self.now_us += 1000
        return self.audit.append(entry_type, self.now_us, 1_700_000_000_000_000 + self.now_us, **fields)

    def path(self, seq_or_name) -> str:
        return os.path.join(self.root, name(seq_or_name) if isinstance(seq_or_name, int) else seq_or_name)

    def _open(self, event_id: str, index: int, media_start_us: int) -> SegmentFile:
        seq = self.next_seq
        fields = {
            "device_id": self.device_id, "device_key": bytes(self.key.verify_key).hex(), "firmware": "0.1.0",
            "seq": seq, "prev": self.head, "audit_n": self.audit.next_n, "event_id": event_id,
            "event_segment": index,
            "event_origin_utc_us": 1_700_000_000_000_000, "event_origin_monotonic_us": self.origin_us,
            "media_start_us": media_start_us, "created_utc_us": 1_700_000_000_000_000 + media_start_us,
            "video": {"codec": "h264", "width": 320, "height": 240, "fps": 15}, "audio": None,
        }
        segment = SegmentFile(self.storage.create(name(seq)), self.key, fields, [CUSTODIAN.public_key])
        self.next_seq += 1
        return segment

    def event(self, segments: int = 1, power_loss: bool = False, *, media_gap_us: int = 0,
              index_skip: int = 0) -> list[int]:
        """Record one event of `segments` segments (two flushes each). With power_loss the
        last segment is cut short in the middle of its second flush and the event has no
        deactivation entry; call reboot() next, as the device would. media_gap_us and
        index_skip make a faulty device: later segments start late / skip an index."""
        self.events += 1
        event_id = f"{self.events:032x}"
        self.origin_us = self.now_us
        seqs, media_us = [], 0
        for index in range(segments):
            if index:
                media_us += media_gap_us
            segment = self._open(event_id, index + (index_skip if index else 0), media_us)
            seqs.append(segment.seq)
            if index == 0:
                self._log("activation", source="button", event_id=event_id, first_seq=segment.seq)
                segment.add(CHUNK_KIND_METADATA, b'{"type":"activation","media_us":0}')
            segment.add(CHUNK_KIND_MEDIA, self.rng.randbytes(300))
            media_us += SECOND_US
            cp = segment.checkpoint(media_us)
            if power_loss and index == segments - 1:
                size = os.path.getsize(self.path(segment.seq))
                segment.add(CHUNK_KIND_MEDIA, self.rng.randbytes(300))
                segment.checkpoint(media_us + SECOND_US)
                segment.abandon()
                os.truncate(self.path(segment.seq), size + 150)   # torn second flush
                self.head = {"seq": segment.seq, "hash": cp.hash.hex(), "chunks": cp.chunk_count}
                self.cut = (segment.seq, cp.chunk_count, cp.hash.hex(), event_id)
                return seqs
            media_us += SECOND_US // 2
            cp = segment.close(self.rng.randbytes(200), media_us)
            self.head = {"seq": segment.seq, "hash": cp.hash.hex(), "chunks": cp.chunk_count}
        self._log("deactivation", source="button", event_id=event_id, last_seq=seqs[-1], last_hash=self.head["hash"])
        return seqs

    def reboot(self) -> None:
        """What the firmware does after a power cut (device/chainstate.recover, firmware.boot)."""
        self.audit.close()
        self.audit = AuditLog(self.storage, self.key, self.device_id, self.chain, lambda: None)
        seq, chunks, digest, event_id = self.cut
        self._log("recovery", seq=seq, found="cut", chunks=chunks, hash=digest, event_id=event_id)
        self._log("boot", firmware="0.1.0")

    def torn_segment_file(self, keep_bytes: int) -> int:
        """A segment created but cut before its header was signed (nothing authenticated)."""
        seq = self.next_seq
        self.origin_us = self.now_us
        segment = self._open(f"{99:032x}", 0, 0)
        segment.abandon()
        os.truncate(self.path(seq), keep_bytes)
        return seq

    def close(self) -> str:
        self._log("shutdown")
        self.audit.close()
        return self.root

    def verify(self):
        return verify_storage(self.root, DEVICE.verify_key)


def problem_files(report) -> set[str]:
    return {file for file, _ in report.problems}


@pytest.fixture
def card(tmp_path) -> Card:
    """Two events: seq 1-3 (three segments) and seq 4 (one segment), cleanly closed."""
    c = Card(tmp_path / "card")
    assert c.event(segments=3) == [1, 2, 3]
    assert c.event(segments=1) == [4]
    c.close()
    return c


def test_a_clean_storage_is_authentic(card):
    report = card.verify()
    assert report.outcome == AUTHENTIC, report.problems
    assert report.problems == [] and report.cut_short == []
    assert report.files == {**{name(s): AUTHENTIC for s in range(1, 5)}, audit_file_name(1): AUTHENTIC}
    assert [[s.seq for s in segs] for segs in report.events().values()] == [[1, 2, 3], [4]]
    assert [e["type"] for e in report.audit.entries] == [
        "boot", "activation", "deactivation", "activation", "deactivation", "shutdown"]
    summary = report.to_json()
    assert summary["outcome"] == AUTHENTIC and [e["media_s"] for e in summary["events"]] == [4.5, 1.5]


# -- deletion ---------------------------------------------------------------------------------

def test_deleted_middle_segment_is_detected(card):
    os.remove(card.path(2))
    report = card.verify()
    assert report.outcome == INTEGRITY_FAILURE
    assert name(3) in problem_files(report)
    assert any("segment 2" in reason for file, reason in report.problems if file == name(3))


def test_deleted_first_segment_is_detected(card):
    os.remove(card.path(1))
    report = card.verify()
    assert report.outcome == INTEGRITY_FAILURE
    # The set now starts at segment 2, but the audit log still names segment 1.
    assert any(file == audit_file_name(1) and "segment 1" in reason for file, reason in report.problems)


def test_deleted_last_segment_is_detected_by_the_audit_log(card):
    os.remove(card.path(4))
    report = card.verify()
    assert report.outcome == INTEGRITY_FAILURE
    assert problem_files(report) == {audit_file_name(1)}
    assert any("segment 4" in reason for _, reason in report.problems)


def test_deleted_last_segment_of_a_multi_segment_event_is_detected(tmp_path):
    c = Card(tmp_path / "card")
    c.event(segments=3)
    c.close()
    os.remove(c.path(3))
    report = c.verify()
    assert report.outcome == INTEGRITY_FAILURE
    assert any(file == audit_file_name(1) and "segment 3" in reason for file, reason in report.problems)


def test_deleted_whole_event_in_the_middle_is_detected(tmp_path):
    c = Card(tmp_path / "card")
    c.event(segments=1)
    c.event(segments=2)
    c.event(segments=1)
    c.close()
    os.remove(c.path(2))
    os.remove(c.path(3))
    report = c.verify()
    assert report.outcome == INTEGRITY_FAILURE
    assert name(4) in problem_files(report) and audit_file_name(1) in problem_files(report)


def test_missing_audit_log_is_detected(card):
    os.remove(card.path(audit_file_name(1)))
    report = card.verify()
    assert report.outcome == INTEGRITY_FAILURE
    assert problem_files(report) == {"audit log"}


# -- renaming, duplication, splicing ------------------------------------------------------------

def test_renamed_segment_is_detected(card):
    os.rename(card.path(4), card.path(5))
    report = card.verify()
    assert report.outcome == INTEGRITY_FAILURE
    assert name(5) in problem_files(report)


def test_swapped_segments_are_detected(card):
    os.rename(card.path(2), card.path("tmp"))
    os.rename(card.path(3), card.path(2))
    os.rename(card.path("tmp"), card.path(3))
    report = card.verify()
    assert report.outcome == INTEGRITY_FAILURE
    assert {name(2), name(3)} <= problem_files(report)


def test_duplicated_segment_under_another_name_is_detected(card):
    shutil.copy(card.path(2), card.path(5))
    report = card.verify()
    assert report.outcome == INTEGRITY_FAILURE
    assert name(5) in problem_files(report)
    assert report.files[name(2)] == AUTHENTIC   # the original is still good


def test_segment_from_another_device_is_detected(card, tmp_path):
    other = Card(tmp_path / "other", key=OTHER_DEVICE)
    other.event(segments=2)
    other.close()
    # Spliced in place of our segment 2 (same name), and appended as a new segment 5.
    shutil.copy(other.path(2), card.path(2))
    shutil.copy(other.path(1), card.path(5))
    report = card.verify()
    assert report.outcome == INTEGRITY_FAILURE
    assert report.files[name(2)] == WRONG_DEVICE and report.files[name(5)] == WRONG_DEVICE
    assert {name(2), name(5)} <= problem_files(report)


def test_segment_from_an_earlier_card_of_the_same_device_is_detected(card, tmp_path):
    """A replayed segment: right device, right name, but it does not chain."""
    older = Card(tmp_path / "older")
    older.event(segments=1)
    older.event(segments=1)
    older.close()
    shutil.copy(older.path(2), card.path(2))
    report = card.verify()
    assert report.outcome == INTEGRITY_FAILURE
    assert report.files[name(2)] == AUTHENTIC   # the file alone is fine; the chain is not
    assert problem_files(report) & {name(2), name(3)}


@pytest.mark.parametrize("fault", [{"media_gap_us": 1}, {"media_gap_us": -1}, {"index_skip": 1}],
                         ids=["media-gap", "media-overlap", "index-skip"])
def test_event_must_be_contiguous(tmp_path, fault):
    """Signed by the device, chained, in the audit log, but the event has a hole: a device fault."""
    c = Card(tmp_path / "card")
    c.event(segments=3, **fault)
    c.close()
    report = c.verify()
    assert report.outcome == INTEGRITY_FAILURE
    expected = {name(2)} if "index_skip" in fault else {name(2), name(3)}
    assert problem_files(report) == expected


@pytest.mark.parametrize("extra", ["notes.txt", "clip.mp4", "seg-1.bwc", "seg-0000000004.bwc.bak"])
def test_unexpected_extra_file_is_detected(card, extra):
    with open(card.path(extra), "wb") as f:
        f.write(b"anything")
    report = card.verify()
    assert report.outcome == INTEGRITY_FAILURE
    assert problem_files(report) == {extra}


def test_altered_segment_is_detected(card):
    with open(card.path(3), "r+b") as f:
        f.seek(700)
        byte = f.read(1)
        f.seek(700)
        f.write(bytes([byte[0] ^ 0x20]))
    report = card.verify()
    assert report.outcome == INTEGRITY_FAILURE
    assert name(3) in problem_files(report)


def test_altered_audit_log_is_detected(card):
    path = card.path(audit_file_name(1))
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data.replace(b'"source":"button"', b'"source":"BUTTON"', 1))
    report = card.verify()
    assert report.outcome == INTEGRITY_FAILURE and audit_file_name(1) in problem_files(report)


def test_truncating_an_older_cleanly_closed_segment_is_detected(card):
    """Cutting a segment the device had closed looks like power loss in that file alone,
    but the next segment's prev names the final checkpoint that is now gone."""
    size = os.path.getsize(card.path(2))
    os.truncate(card.path(2), size - 3 * CHECKPOINT_RECORD_BYTES)
    report = card.verify()
    assert report.files[name(2)] == TRUNCATED
    assert report.outcome == INTEGRITY_FAILURE
    assert name(3) in problem_files(report)


# -- power loss --------------------------------------------------------------------------------

def test_cut_short_last_segment_without_deactivation_is_truncated(tmp_path):
    c = Card(tmp_path / "card")
    c.event(segments=1)
    c.event(segments=2, power_loss=True)   # seq 2, 3; 3 is cut short
    c.audit.close()                        # no shutdown: the power went
    report = c.verify()
    assert report.outcome == TRUNCATED, report.problems
    assert report.problems == []
    assert report.files[name(3)] == TRUNCATED
    assert name(3) in {file for file, _ in report.cut_short}
    assert report.segments[-1].report.last.chunk_count == 1


def test_power_loss_then_reboot_and_next_event_is_truncated_not_tampering(tmp_path):
    c = Card(tmp_path / "card")
    c.event(segments=2, power_loss=True)   # seq 1, 2; 2 cut short
    c.reboot()
    c.event(segments=1)                    # seq 3 chains to seg 2's last valid checkpoint
    c.close()
    report = c.verify()
    assert report.outcome == TRUNCATED, report.problems
    assert report.problems == []
    assert [s.seq for s in report.segments] == [1, 2, 3]
    assert {file for file, _ in report.cut_short} == {name(2)}
    assert [e["type"] for e in report.audit.entries].count("recovery") == 1


def test_segment_cut_before_its_header_was_signed_is_power_loss(tmp_path):
    c = Card(tmp_path / "card")
    c.event(segments=1)
    torn = c.torn_segment_file(keep_bytes=200)   # seq 2: nothing authenticated
    # The next boot names it, as the firmware does (its number was taken write-ahead).
    c._log("recovery", seq=torn, found="unauthenticated", chunks=None, hash=None, event_id=None)
    c.event(segments=1)                          # seq 3: prev names seq 1
    c.close()
    report = c.verify()
    assert report.outcome == TRUNCATED, report.problems
    assert report.problems == []
    assert report.files[name(torn)] == TRUNCATED
    assert [s.seq for s in report.segments] == [1, 3]
    # The file held nothing authenticated, and the recovery entry explains its number.
    os.remove(c.path(torn))
    assert c.verify().outcome == TRUNCATED


def test_a_file_with_nothing_authenticated_needs_an_entry_to_explain_it(tmp_path):
    c = Card(tmp_path / "card")
    c.event(segments=1)
    torn = c.torn_segment_file(keep_bytes=200)   # no boot named it
    c.event(segments=1)
    c.close()
    report = c.verify()
    assert report.outcome == INTEGRITY_FAILURE
    assert any(file == name(3) and f"segment {torn} holds nothing authenticated" in reason
               for file, reason in report.problems)
    os.remove(c.path(torn))
    report = c.verify()
    assert any(file == name(3) and f"segment {torn} is missing" in reason for file, reason in report.problems)


def test_stray_empty_segment_files_are_tampering(card):
    for seq in (9, 9_999_999_999):
        path = card.path(seq)
        with open(path, "wb") as f:
            f.write(b"\x89OBWC\r\n\x1a\x00\x02")
        assert card.verify().outcome == INTEGRITY_FAILURE, seq
        os.remove(path)
    with open(card.path(5), "wb") as f:      # the next number, and no boot since: a cut create
        f.write(b"\x89OBWC")
    assert card.verify().outcome == TRUNCATED


def test_torn_audit_log_is_truncated(card):
    path = card.path(audit_file_name(1))
    os.truncate(path, os.path.getsize(path) - 20)   # the shutdown entry was being written
    report = card.verify()
    assert report.outcome == TRUNCATED, report.problems
    assert report.cut_short == [(audit_file_name(1), report.audit.reason)]


def test_middle_segment_of_an_event_must_be_cleanly_closed(card):
    size = os.path.getsize(card.path(2))
    os.truncate(card.path(2), size - CHECKPOINT_RECORD_BYTES)   # only the copy is gone
    report = card.verify()
    assert report.files[name(2)] == TRUNCATED
    assert report.outcome == INTEGRITY_FAILURE
