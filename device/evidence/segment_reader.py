"""Verifying one segment file with the device's public key only (docs/format.md §4)."""
from __future__ import annotations

import hashlib
import mmap
import os
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from device.evidence.format import (
    CHECKPOINT_BODY_BYTES, CHECKPOINT_RECORD_BYTES, CHUNK_BODY_MAX, CHUNK_BODY_MIN,
    HEADER_MAX_BYTES, MAGIC, PREAMBLE_BYTES, RECORD_HEAD, TYPE_CHECKPOINT, TYPE_CHUNK,
    TYPE_HEADER, SUPPORTED_VERSIONS, Checkpoint, CheckpointShapeError, HeaderError, decode_header,
    looks_like_final_checkpoint, parse_checkpoint,
)

# The closed set of outcomes (docs/format.md §4); the test vectors use these names.
AUTHENTIC = "authentic"
TRUNCATED = "truncated"
NOT_EVIDENCE = "not_evidence"
UNSUPPORTED_VERSION = "unsupported_version"
HEADER_FAILURE = "header_failure"
WRONG_DEVICE = "wrong_device"
SIGNATURE_FAILURE = "signature_failure"
STRUCTURE_FAILURE = "structure_failure"
OUTCOMES = (AUTHENTIC, TRUNCATED, NOT_EVIDENCE, UNSUPPORTED_VERSION, HEADER_FAILURE,
            WRONG_DEVICE, SIGNATURE_FAILURE, STRUCTURE_FAILURE)
INTEGRITY_FAILURES = OUTCOMES[2:]


@dataclass(slots=True)
class SegmentReport:
    outcome: str
    reason: str = ""
    header: dict | None = None
    # Valid checkpoints in file order; the last one bounds what is authentic.
    checkpoints: list[Checkpoint] = field(default_factory=list)
    # (offset, length) of every chunk body covered by the last valid checkpoint.
    chunks: list[tuple[int, int]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.outcome in (AUTHENTIC, TRUNCATED)

    @property
    def last(self) -> Checkpoint | None:
        return self.checkpoints[-1] if self.checkpoints else None

    @property
    def authenticated(self) -> bool:
        """True if at least the header is signed (K0 verified)."""
        return self.ok and bool(self.checkpoints)


class _Fail(Exception):
    def __init__(self, outcome: str, reason: str) -> None:
        super().__init__(reason)
        self.outcome, self.reason = outcome, reason


def _check_checkpoint(cp: Checkpoint, key: VerifyKey, seq: int, chunk_count: int,
                      offset: int, digest: bytes, media_floor_us: int) -> None:
    where = f"checkpoint at byte {offset}"
    if cp.seq != seq:
        raise _Fail(SIGNATURE_FAILURE, f"{where} belongs to segment {cp.seq}, not {seq}")
    if cp.chunk_count != chunk_count or cp.offset != offset:
        raise _Fail(SIGNATURE_FAILURE, f"{where} claims {cp.chunk_count} chunks at byte {cp.offset}")
    if cp.hash != digest:
        raise _Fail(SIGNATURE_FAILURE, f"{where}: content hash does not match (data altered)")
    try:
        key.verify(cp.message(), cp.signature)
    except BadSignatureError:
        raise _Fail(SIGNATURE_FAILURE, f"{where}: bad device signature") from None
    if cp.media_end_us < media_floor_us:
        raise _Fail(SIGNATURE_FAILURE, f"{where}: media time goes backwards")


def verify_segment_file(f: BinaryIO, device_key: VerifyKey) -> SegmentReport:
    """Verify an open segment file through mmap: memory stays flat however long it is."""
    if os.fstat(f.fileno()).st_size == 0:
        return verify_segment(b"", device_key)
    with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        return verify_segment(mapped, device_key)


def verify_segment(data: bytes, device_key: VerifyKey) -> SegmentReport:
    report = SegmentReport(outcome=AUTHENTIC)
    try:
        _verify(memoryview(data), device_key, report)
    except _Fail as fail:
        report.outcome, report.reason = fail.outcome, fail.reason
    if not report.ok:
        report.chunks = []
    return report


def _read_record(data: memoryview, pos: int) -> tuple[int, memoryview, int] | None:
    """The record at `pos` as (type, body, end), or None if the file ends inside it."""
    if len(data) - pos < RECORD_HEAD.size:
        return None
    rtype, length = RECORD_HEAD.unpack_from(data, pos)
    limits = {TYPE_HEADER: (1, HEADER_MAX_BYTES), TYPE_CHUNK: (CHUNK_BODY_MIN, CHUNK_BODY_MAX),
              TYPE_CHECKPOINT: (CHECKPOINT_BODY_BYTES, CHECKPOINT_BODY_BYTES)}
    if rtype not in limits:
        raise _Fail(STRUCTURE_FAILURE, f"unknown record type {rtype:#04x} at byte {pos}")
    low, high = limits[rtype]
    if not low <= length <= high:
        raise _Fail(STRUCTURE_FAILURE, f"record {chr(rtype)!r} at byte {pos} has impossible length {length}")
    end = pos + RECORD_HEAD.size + length
    if end > len(data):
        return None
    return rtype, data[pos + RECORD_HEAD.size:end], end


def _parse_checkpoint_at(body: memoryview, pos: int) -> Checkpoint:
    try:
        return parse_checkpoint(bytes(body))
    except CheckpointShapeError as exc:
        raise _Fail(STRUCTURE_FAILURE, f"checkpoint at byte {pos}: {exc}") from None


def _verify(data: memoryview, key: VerifyKey, report: SegmentReport) -> None:
    size = len(data)
    if size < PREAMBLE_BYTES and MAGIC.startswith(bytes(data[:len(MAGIC)])):
        report.outcome, report.reason = TRUNCATED, "cut short inside the preamble; nothing authenticated"
        return
    if data[:len(MAGIC)] != MAGIC:
        raise _Fail(NOT_EVIDENCE, "not an OpenBWC segment file (bad magic)")
    if size < PREAMBLE_BYTES:
        report.outcome, report.reason = TRUNCATED, "cut short inside the preamble; nothing authenticated"
        return
    (version,) = struct.unpack_from(">H", data, len(MAGIC))
    if version not in SUPPORTED_VERSIONS:
        raise _Fail(UNSUPPORTED_VERSION, f"format version {version} is not supported "
                                         f"(this reader knows {', '.join(map(str, SUPPORTED_VERSIONS))})")

    # §4 step 2: a file that claims a clean end must have one, intact.
    tail_a = bytes(data[size - 2 * CHECKPOINT_RECORD_BYTES:size - CHECKPOINT_RECORD_BYTES]) \
        if size >= PREAMBLE_BYTES + 2 * CHECKPOINT_RECORD_BYTES else b""
    tail_b = bytes(data[size - CHECKPOINT_RECORD_BYTES:]) \
        if size >= PREAMBLE_BYTES + CHECKPOINT_RECORD_BYTES else b""
    claims_final = looks_like_final_checkpoint(tail_a) or looks_like_final_checkpoint(tail_b)

    torn_final_copy = _walk(data, key, report, version)
    if report.outcome == TRUNCATED and claims_final and not torn_final_copy:
        raise _Fail(STRUCTURE_FAILURE, "the file's clean end is damaged")


def _walk(data: memoryview, key: VerifyKey, report: SegmentReport, version: int) -> bool:
    """Walk the records; returns True if only the final checkpoint's copy was torn off."""
    size = len(data)
    pos = PREAMBLE_BYTES
    rec = _read_record(data, pos)
    if rec is None:
        report.outcome, report.reason = TRUNCATED, "cut short inside the header; nothing authenticated"
        return False
    rtype, body, pos_after_header = rec
    if rtype != TYPE_HEADER:
        raise _Fail(HEADER_FAILURE, "file does not start with a header")
    try:
        header = decode_header(bytes(body), version)
    except HeaderError as exc:
        raise _Fail(HEADER_FAILURE, str(exc)) from None
    if header["device_key"] != bytes(key).hex():
        raise _Fail(WRONG_DEVICE, f"signed by device {header['device_id']!r} (key "
                                  f"{header['device_key'][:16]}...), not the expected device")
    report.header = header
    seq = header["seq"]

    running = hashlib.sha256()
    hashed_to = 0
    chunk_spans: list[tuple[int, int]] = []
    pos = pos_after_header
    while pos < size:
        rec = _read_record(data, pos)
        if rec is None:
            break  # torn write at the end of the file
        rtype, body, end = rec
        if not report.checkpoints and rtype != TYPE_CHECKPOINT:
            raise _Fail(HEADER_FAILURE, "header is not followed by its signature checkpoint")
        if rtype == TYPE_HEADER:
            raise _Fail(STRUCTURE_FAILURE, f"second header at byte {pos}")
        if rtype == TYPE_CHUNK:
            chunk_spans.append((pos + RECORD_HEAD.size, len(body)))
            pos = end
            continue
        running.update(data[hashed_to:pos])
        hashed_to = pos
        cp = _parse_checkpoint_at(body, pos)
        floor = report.last.media_end_us if report.last else 0
        try:
            _check_checkpoint(cp, key, seq, len(chunk_spans), pos, running.digest(), floor)
        except _Fail as fail:
            if not report.checkpoints:
                raise _Fail(HEADER_FAILURE, f"header signature: {fail.reason}") from None
            raise
        if cp.final and not chunk_spans:
            raise _Fail(STRUCTURE_FAILURE, f"final checkpoint at byte {pos} covers no chunk")
        report.checkpoints.append(cp)
        report.chunks = list(chunk_spans)
        if cp.final:
            # Only the byte-identical copy of the final checkpoint may follow it.
            rest, own = bytes(data[end:]), bytes(data[pos:end])
            if rest == own:
                report.outcome = AUTHENTIC
                return False
            if len(rest) < len(own) and own.startswith(rest):
                # Power failed while the copy was being written: the media is
                # complete and signed, only the redundancy is missing.
                report.outcome = TRUNCATED
                report.reason = (f"complete and signed ({cp.chunk_count} chunks), but power was lost "
                                 f"while closing the file")
                return True
            raise _Fail(STRUCTURE_FAILURE, f"the final checkpoint at byte {pos} is not followed by exactly its copy")
        pos = end

    last = report.last
    report.outcome = TRUNCATED
    if last is None:
        report.reason = "cut short before the header was signed; nothing authenticated"
    else:
        report.reason = (f"authentic up to chunk {last.chunk_count} "
                         f"({last.media_end_us / 1e6:.2f} s of event media), then cut short by power loss")
    return False


def read_header_unverified(data: bytes) -> dict | None:
    """The header of a segment without checking any signature (e.g. to learn which
    device key a storage claims); None if the file has no readable header."""
    view = memoryview(data)
    if len(view) < PREAMBLE_BYTES or view[:len(MAGIC)] != MAGIC:
        return None
    try:
        rec = _read_record(view, PREAMBLE_BYTES)
        (version,) = struct.unpack_from(">H", view, len(MAGIC))
        if rec is None or rec[0] != TYPE_HEADER or version not in SUPPORTED_VERSIONS:
            return None
        return decode_header(bytes(rec[1]), version)
    except (_Fail, HeaderError):
        return None
