"""Verifying one segment file with the device's public key only (docs/format.md §4)."""
from __future__ import annotations

import hashlib
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


class _InMemory:
    """A segment held as bytes (tests, vectors, an upload being checked)."""

    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)
        self.size = len(self._view)

    def read(self, pos: int, length: int) -> bytes:
        return bytes(self._view[pos:pos + length])

    def hash(self, running, start: int, end: int) -> None:
        running.update(self._view[start:end])


class _OnDisk:
    """A segment file read by records: small reads for record heads and checkpoints, and
    the hashed bytes through one reused buffer. Nothing is mapped, so the file's pages
    never count towards this process's memory, however long the segment."""

    BLOCK_BYTES = 1 << 20

    def __init__(self, fd: int, size: int) -> None:
        self._fd, self.size = fd, size
        self._buffer = memoryview(bytearray(self.BLOCK_BYTES))

    def read(self, pos: int, length: int) -> bytes:
        data = os.pread(self._fd, length, pos)
        if len(data) != length:
            raise _Fail(STRUCTURE_FAILURE, f"the file changed while it was being verified (short read at byte {pos})")
        return data

    def hash(self, running, start: int, end: int) -> None:
        pos = start
        while pos < end:
            got = os.preadv(self._fd, [self._buffer[:min(self.BLOCK_BYTES, end - pos)]], pos)
            if got <= 0:
                raise _Fail(STRUCTURE_FAILURE, f"the file changed while it was being verified (short read at byte {pos})")
            running.update(self._buffer[:got])   # hashlib releases the GIL for a block this size
            pos += got


def verify_segment_file(f: BinaryIO, device_key: VerifyKey) -> SegmentReport:
    """Verify an open segment file, reading it once front to back in bounded memory."""
    return _report(_OnDisk(f.fileno(), os.fstat(f.fileno()).st_size), device_key)


def verify_segment(data: bytes, device_key: VerifyKey) -> SegmentReport:
    return _report(_InMemory(data), device_key)


def _report(src, device_key: VerifyKey) -> SegmentReport:
    report = SegmentReport(outcome=AUTHENTIC)
    try:
        _verify(src, device_key, report)
    except _Fail as fail:
        report.outcome, report.reason = fail.outcome, fail.reason
    if not report.ok:
        report.chunks = []
    return report


_LIMITS = {TYPE_HEADER: (1, HEADER_MAX_BYTES), TYPE_CHUNK: (CHUNK_BODY_MIN, CHUNK_BODY_MAX),
           TYPE_CHECKPOINT: (CHECKPOINT_BODY_BYTES, CHECKPOINT_BODY_BYTES)}


def _read_record(src, pos: int) -> tuple[int, int, int] | None:
    """The record at `pos` as (type, body length, end), or None if the file ends inside it."""
    if src.size - pos < RECORD_HEAD.size:
        return None
    rtype, length = RECORD_HEAD.unpack(src.read(pos, RECORD_HEAD.size))
    if rtype not in _LIMITS:
        raise _Fail(STRUCTURE_FAILURE, f"unknown record type {rtype:#04x} at byte {pos}")
    low, high = _LIMITS[rtype]
    if not low <= length <= high:
        raise _Fail(STRUCTURE_FAILURE, f"record {chr(rtype)!r} at byte {pos} has impossible length {length}")
    end = pos + RECORD_HEAD.size + length
    if end > src.size:
        return None
    return rtype, length, end


def _parse_checkpoint_at(body: bytes, pos: int) -> Checkpoint:
    try:
        return parse_checkpoint(body)
    except CheckpointShapeError as exc:
        raise _Fail(STRUCTURE_FAILURE, f"checkpoint at byte {pos}: {exc}") from None


def _verify(src, key: VerifyKey, report: SegmentReport) -> None:
    size = src.size
    preamble = src.read(0, min(size, PREAMBLE_BYTES))
    if size < PREAMBLE_BYTES and MAGIC.startswith(preamble[:len(MAGIC)]):
        report.outcome, report.reason = TRUNCATED, "cut short inside the preamble; nothing authenticated"
        return
    if preamble[:len(MAGIC)] != MAGIC:
        raise _Fail(NOT_EVIDENCE, "not an OpenBWC segment file (bad magic)")
    if size < PREAMBLE_BYTES:
        report.outcome, report.reason = TRUNCATED, "cut short inside the preamble; nothing authenticated"
        return
    (version,) = struct.unpack_from(">H", preamble, len(MAGIC))
    if version not in SUPPORTED_VERSIONS:
        raise _Fail(UNSUPPORTED_VERSION, f"format version {version} is not supported "
                                         f"(this reader knows {', '.join(map(str, SUPPORTED_VERSIONS))})")

    # §4 step 2: a file that claims a clean end must have one, intact.
    tail_a = src.read(size - 2 * CHECKPOINT_RECORD_BYTES, CHECKPOINT_RECORD_BYTES) \
        if size >= PREAMBLE_BYTES + 2 * CHECKPOINT_RECORD_BYTES else b""
    tail_b = src.read(size - CHECKPOINT_RECORD_BYTES, CHECKPOINT_RECORD_BYTES) \
        if size >= PREAMBLE_BYTES + CHECKPOINT_RECORD_BYTES else b""
    claims_final = looks_like_final_checkpoint(tail_a) or looks_like_final_checkpoint(tail_b)

    torn_final_copy = _walk(src, key, report, version)
    if report.outcome == TRUNCATED and claims_final and not torn_final_copy:
        raise _Fail(STRUCTURE_FAILURE, "the file's clean end is damaged")


def _walk(src, key: VerifyKey, report: SegmentReport, version: int) -> bool:
    """Walk the records; returns True if only the final checkpoint's copy was torn off."""
    size = src.size
    pos = PREAMBLE_BYTES
    rec = _read_record(src, pos)
    if rec is None:
        report.outcome, report.reason = TRUNCATED, "cut short inside the header; nothing authenticated"
        return False
    rtype, length, pos_after_header = rec
    if rtype != TYPE_HEADER:
        raise _Fail(HEADER_FAILURE, "file does not start with a header")
    try:
        header = decode_header(src.read(pos + RECORD_HEAD.size, length), version)
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
        rec = _read_record(src, pos)
        if rec is None:
            break  # torn write at the end of the file
        rtype, length, end = rec
        if not report.checkpoints and rtype != TYPE_CHECKPOINT:
            raise _Fail(HEADER_FAILURE, "header is not followed by its signature checkpoint")
        if rtype == TYPE_HEADER:
            raise _Fail(STRUCTURE_FAILURE, f"second header at byte {pos}")
        if rtype == TYPE_CHUNK:
            chunk_spans.append((pos + RECORD_HEAD.size, length))
            pos = end
            continue
        src.hash(running, hashed_to, pos)
        hashed_to = pos
        own = src.read(pos, end - pos)
        cp = _parse_checkpoint_at(own[RECORD_HEAD.size:], pos)
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
            rest = src.read(end, size - end) if size - end <= len(own) else None
            if rest == own:
                report.outcome = AUTHENTIC
                return False
            if rest is not None and len(rest) < len(own) and own.startswith(rest):
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
    src = _InMemory(data)
    if src.size < PREAMBLE_BYTES or src.read(0, len(MAGIC)) != MAGIC:
        return None
    try:
        rec = _read_record(src, PREAMBLE_BYTES)
        (version,) = struct.unpack(">H", src.read(len(MAGIC), 2))
        if rec is None or rec[0] != TYPE_HEADER or version not in SUPPORTED_VERSIONS:
            return None
        return decode_header(src.read(PREAMBLE_BYTES + RECORD_HEAD.size, rec[1]), version)
    except (_Fail, HeaderError):
        return None
