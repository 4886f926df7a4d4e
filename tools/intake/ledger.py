"""One device's history as the intake holds it (docs/offload.md §4, §5): accepting audit
bytes and segment uploads, checked on arrival with the same code as `bwc verify`, and
the receipts that vouch for what is held.

Everything lives in the store; nothing here survives a request except a cache of
objects that are never rewritten once created (acceptance records, audit parts), which
any replica may keep because create-only writes make them immutable.
"""
from __future__ import annotations

import hashlib
import json
import tempfile
import threading
import time
from dataclasses import dataclass

from nacl.signing import SigningKey, VerifyKey

from device.evidence.audit_lines import line_hash
from device.evidence.audit_verify import read_audit_file
from device.evidence.format import segment_file_name
from device.evidence.receipt import make_receipt
from device.evidence.segment_reader import AUTHENTIC, TRUNCATED, WRONG_DEVICE, verify_segment_file
from device.offload.protocol import (
    CLOCK_WINDOW_US, PART_BYTES_MAX, PART_BYTES_MIN, SEGMENT_MAX_BYTES, ProtocolError,
)
from tools.intake.store import Store, StoreError

SPOOL_MAX_MEMORY_BYTES = 8 * 1024 * 1024
CACHE_MAX_OBJECTS = 100_000   # records and audit summaries: a few hundred bytes each


class Refused(ProtocolError):
    """A refusal with extra members for the error body (`missing`, `outcome` …)."""

    def __init__(self, reason: str, detail: str = "", **extra: object) -> None:
        super().__init__(reason, detail)
        self.extra = extra


def _prefix(device: str) -> str:
    return f"devices/{device}/"


@dataclass(frozen=True, slots=True)
class AuditPart:
    """What the intake needs of one stored audit part, without re-verifying it."""
    file: int
    offset: int
    length: int
    first_n: int
    first_prev: str
    first_hash: str
    last_n: int
    last_hash: str


def _audit_summary(file: int, offset: int, data: bytes) -> AuditPart:
    lines = data.split(b"\n")[:-1]
    first = json.loads(lines[0].rpartition(b" ")[0])
    last = json.loads(lines[-1].rpartition(b" ")[0])
    return AuditPart(file, offset, len(data), first["n"], first["prev"], line_hash(lines[0]),
                     last["n"], line_hash(lines[-1]))


class Ledger:
    def __init__(self, store: Store, intake_key: SigningKey, now_us=lambda: time.time_ns() // 1000) -> None:
        self.store, self.key, self.now_us = store, intake_key, now_us
        self._cache: dict[str, object] = {}     # key -> parsed immutable object
        self._lock = threading.Lock()

    # -- immutable objects ---------------------------------------------------------
    def _record(self, key: str) -> dict | None:
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        data = self.store.get(key)
        if data is None:
            return None
        record = json.loads(data)
        self._remember(key, record)
        return record

    def records(self, device: str) -> dict[int, dict]:
        """Every accepted segment's record, by seq."""
        out = {}
        for key in self.store.list(_prefix(device) + "segments/"):
            if key.endswith(".json"):
                record = self._record(key)
                if record is not None:
                    out[record["seq"]] = record
        return out

    def audit_parts(self, device: str) -> list[AuditPart]:
        parts = []
        for key in self.store.list(_prefix(device) + "audit/"):
            with self._lock:
                cached = self._cache.get(key)
            if cached is None:
                data = self.store.get(key)
                if data is None:
                    continue
                file_s, offset_s = key.split("/")[-2:]
                cached = _audit_summary(int(file_s), int(offset_s.removesuffix(".log")), data)
                self._remember(key, cached)
            parts.append(cached)
        parts.sort(key=lambda p: (p.file, p.offset))
        return parts

    def _remember(self, key: str, value: object) -> None:
        with self._lock:
            if len(self._cache) >= CACHE_MAX_OBJECTS:
                self._cache.clear()   # a cache, not a store: start again rather than grow
            self._cache[key] = value

    # -- nonces ------------------------------------------------------------------------
    def spend_nonce(self, device: str, utc_us: int, nonce: str) -> None:
        window = utc_us // CLOCK_WINDOW_US
        if not self.store.put_if_absent(f"nonces/{device}/{window}/{nonce}", b"", durable=False):
            raise Refused("replayed_request", "this request was already received (its nonce is spent)")
        # Now and then (nonces are random: about one request in 256), forget the nonces of
        # windows a replay could no longer reach (docs/offload.md §3.1).
        if nonce.startswith("00"):
            self.reap_nonces(device, self.now_us() // CLOCK_WINDOW_US - 2)

    def reap_nonces(self, device: str, before_window: int) -> int:
        dropped = 0
        for key in self.store.list(f"nonces/{device}/"):
            window = key.split("/")[2]
            if window.isdigit() and int(window) < before_window:
                self.store.delete(key)
                dropped += 1
        return dropped

    # -- receipts ----------------------------------------------------------------------
    def receipt(self, device: str, records: dict[int, dict] | None = None,
                parts: list[AuditPart] | None = None) -> dict:
        records = self.records(device) if records is None else records
        parts = self.audit_parts(device) if parts is None else parts
        return make_receipt(self.key, device, _segments_covered(records), _audit_covered(parts), self.now_us())

    def state(self, device: str) -> dict:
        records, parts = self.records(device), self.audit_parts(device)
        files: dict[int, int] = {}
        for p in parts:
            files[p.file] = files.get(p.file, 0) + p.length
        head = parts[-1] if parts else None
        return {
            "device_key": device, "intake_utc_us": self.now_us(),
            "segments": [{"seq": r["seq"], "sha256": r["sha256"], "size": r["size"], "chunks": r["chunks"],
                          "outcome": r["outcome"]} for _, r in sorted(records.items())],
            "uploads": self._uploads(device),
            "audit": {"files": [{"file": f, "bytes": b} for f, b in sorted(files.items())],
                      "n": head.last_n if head else None, "hash": head.last_hash if head else None},
            "receipt": self.receipt(device, records, parts),
        }

    def _uploads(self, device: str) -> list[dict]:
        """Unfinished uploads, one per (seq, sha256, size, part size) with the parts held."""
        uploads: dict[tuple, list[int]] = {}
        base = _prefix(device) + "uploads/"
        for key in self.store.list(base):
            name, geometry, leaf = (key[len(base):].split("/") + ["", ""])[:3]
            seq_s, _, sha = name.partition("-")
            part_s, _, size_s = geometry.partition("-")
            if leaf.startswith("part-"):
                uploads.setdefault((int(seq_s), sha, int(size_s), int(part_s)), []).append(int(leaf[5:]))
        return [{"seq": seq, "sha256": sha, "size": size, "part_bytes": part_bytes, "parts": sorted(parts)}
                for (seq, sha, size, part_bytes), parts in sorted(uploads.items())]

    # -- audit -----------------------------------------------------------------------
    def put_audit(self, device: str, file: int, offset: int, data: bytes) -> dict:
        entries = _verified_lines(data, VerifyKey(bytes.fromhex(device)))
        key = _prefix(device) + f"audit/{file:010d}/{offset:012d}.log"
        parts = self.audit_parts(device)
        held = sum(p.length for p in parts if p.file == file)
        if offset < held:
            return self._same_audit(device, key, data, parts)
        if offset > held:
            raise Refused("audit_gap", f"the intake holds {held} bytes of audit file {file}, not {offset}")
        newest_file = parts[-1].file if parts else file
        if file < newest_file:
            raise Refused("audit_gap", f"audit file {file} is older than file {newest_file}, which the intake holds")
        if parts:
            _continues(parts[-1], entries, offset)
        if not self.store.put_if_absent(key, data):
            return self._same_audit(device, key, data, self.audit_parts(device))
        return {"status": "stored", "receipt": self.receipt(device)}

    def _same_audit(self, device: str, key: str, data: bytes, parts: list[AuditPart]) -> dict:
        if self.store.get(key) == data:
            return {"status": "already_held", "receipt": self.receipt(device, parts=parts)}
        raise Refused("audit_conflict", "the intake holds other audit bytes at this place")

    # -- segments ----------------------------------------------------------------------
    def _upload_base(self, device: str, seq: int, sha: str) -> str:
        return _prefix(device) + f"uploads/{seq:010d}-{sha}/"

    def _held_as(self, device: str, seq: int, sha: str) -> dict | None:
        """The accepted record of `seq` if it is this upload; Refused if it is another."""
        record = self._record(_prefix(device) + f"segments/{seq:010d}.json")
        if record is None:
            return None
        if record["sha256"] != sha:
            raise Refused("seq_conflict", f"the intake already holds another segment {seq} "
                                          f"(a replayed or rolled-back upload)")
        return record

    def put_part(self, device: str, seq: int, sha: str, index: int, data: bytes, size: int,
                 part_bytes: int, part_max_bytes: int = PART_BYTES_MAX) -> dict:
        if not 1 <= size <= SEGMENT_MAX_BYTES:
            raise Refused("malformed_request", f"segment size must be 1..{SEGMENT_MAX_BYTES}")
        if not PART_BYTES_MIN <= part_bytes <= min(PART_BYTES_MAX, part_max_bytes):
            raise Refused("malformed_request", f"part size must be {PART_BYTES_MIN}..{part_max_bytes} bytes")
        if self._held_as(device, seq, sha) is not None:
            return {"status": "already_held", "receipt": self.receipt(device)}
        count = -(-size // part_bytes)
        if index >= count:
            raise Refused("upload_mismatch", f"part {index} is past the end ({count} parts)")
        expected = min(size, (index + 1) * part_bytes) - index * part_bytes
        if len(data) != expected:
            raise Refused("truncated_body", f"part {index} must be {expected} bytes, not {len(data)}")
        # The geometry is part of the key, not fixed by the first part to arrive: the size and
        # part-size headers are not signed, so a rewritten first part must not block the upload.
        self.store.put_if_absent(self._upload_base(device, seq, sha) + f"{part_bytes}-{size}/part-{index:06d}", data,
                                 durable=False)   # a part lost in a crash is sent again
        return {"status": "stored", "receipt": None}

    def commit(self, device: str, seq: int, sha: str) -> dict:
        if (record := self._held_as(device, seq, sha)) is not None:
            return {"status": "already_held", "segment": record, "receipt": self.receipt(device)}
        base = self._upload_base(device, seq, sha)
        geometries: dict[tuple[int, int], set[int]] = {}
        for key in self.store.list(base):
            geometry, _, leaf = key[len(base):].partition("/")
            part_s, _, size_s = geometry.partition("-")
            geometries.setdefault((int(part_s), int(size_s)), set()).add(int(leaf[5:]))
        missing_by = {g: sorted(set(range(-(-g[1] // g[0]))) - held) for g, held in geometries.items()}
        complete = [g for g, missing in missing_by.items() if not missing]
        if not complete:
            # A replica that accepted this very upload since the check above drops its parts
            # as it goes: what is left is not a missing part but a held segment.
            if (record := self._held_as(device, seq, sha)) is not None:
                return {"status": "already_held", "segment": record, "receipt": self.receipt(device)}
            if not geometries:
                raise Refused("parts_missing", "no part of this upload has arrived", missing=[])
            part_bytes, size = max(geometries, key=lambda g: len(geometries[g]) / -(-g[1] // g[0]))
            missing = missing_by[(part_bytes, size)]
            raise Refused("parts_missing", f"{len(missing)} of {-(-size // part_bytes)} parts have not arrived",
                          missing=missing[:1000], part_bytes=part_bytes, size=size)
        refusal = None
        for part_bytes, size in complete:   # a rewritten geometry fails its hash and is dropped
            try:
                return self._assemble(device, seq, sha, base, part_bytes, size)
            except Refused as exc:
                # A replica that accepted this very upload meanwhile has dropped its parts.
                if (record := self._held_as(device, seq, sha)) is not None:
                    return {"status": "already_held", "segment": record, "receipt": self.receipt(device)}
                if exc.reason != "hash_mismatch":
                    raise
                refusal = exc
        raise refusal

    def _assemble(self, device: str, seq: int, sha: str, base: str, part_bytes: int, size: int) -> dict:
        parts = base + f"{part_bytes}-{size}/"
        with tempfile.SpooledTemporaryFile(SPOOL_MAX_MEMORY_BYTES) as spool:
            digest = hashlib.sha256()
            for index in range(-(-size // part_bytes)):
                start = spool.tell()
                if not self.store.get_to_file(parts + f"part-{index:06d}", spool):
                    raise Refused("parts_missing", f"part {index} is gone (another replica took this upload?)",
                                  missing=[index])
                spool.seek(start)
                digest.update(spool.read())
            if spool.tell() != size or digest.hexdigest() != sha:
                self._drop_upload(parts)   # let the device send it again, whole
                raise Refused("hash_mismatch", "the assembled segment is not the one this upload named")
            spool.rollover()              # verify_segment_file maps a real file
            spool.seek(0)
            try:
                record = self._check_segment(device, seq, sha, size, spool)
            except Refused:
                self._drop_upload(base)   # these bytes can never be accepted: keep no copy
                raise
            spool.seek(0)
            self.store.put_if_absent(_prefix(device) + f"segments/{seq:010d}-{sha}.bwc", spool)
        if not self.store.put_if_absent(_prefix(device) + f"segments/{seq:010d}.json",
                                        json.dumps(record, sort_keys=True).encode()):
            record = self._held_as(device, seq, sha)   # a racing replica won: same bytes, or a conflict
            if record is None:
                raise StoreError(f"segment {seq}: the store refused the record but holds none")
            self._drop_upload(base)
            return {"status": "already_held", "segment": record, "receipt": self.receipt(device)}
        self.store.put_if_absent(_prefix(device) + "names", record["device_id"].encode())
        self._drop_upload(base)
        return {"status": "accepted", "segment": record, "receipt": self.receipt(device)}

    def _drop_upload(self, base: str) -> None:
        for key in self.store.list(base):
            self.store.delete(key)

    def _check_segment(self, device: str, seq: int, sha: str, size: int, f) -> dict:
        report = verify_segment_file(f, VerifyKey(bytes.fromhex(device)))
        if report.outcome == WRONG_DEVICE:
            raise Refused("wrong_device", report.reason)
        if report.outcome not in (AUTHENTIC, TRUNCATED) or not report.authenticated:
            raise Refused("segment_invalid", report.reason or "no signed header", outcome=report.outcome)
        header = report.header
        if header["device_key"] != device:
            raise Refused("wrong_device", "the segment names another device")
        if header["seq"] != seq:
            raise Refused("seq_mismatch", f"the segment's signed seq is {header['seq']}, not {seq}")
        checkpoints = [[cp.chunk_count, cp.hash.hex()] for cp in report.checkpoints]
        prev = header["prev"]
        records = self.records(device)
        _check_links(seq, prev, checkpoints, records)
        last = report.last
        return {"seq": seq, "sha256": sha, "size": size, "name": segment_file_name(seq),
                "outcome": report.outcome, "chunks": last.chunk_count, "hash": last.hash.hex(),
                "checkpoints": checkpoints, "prev": prev, "event_id": header["event_id"],
                "device_id": header["device_id"], "accepted_utc_us": self.now_us()}


def _check_links(seq: int, prev: dict | None, checkpoints: list, records: dict[int, dict]) -> None:
    """docs/offload.md §4.3: the segment joins the chain the intake holds, without a fork."""
    if prev is not None:
        before = records.get(prev["seq"])
        if before is not None and [prev["chunks"], prev["hash"]] not in before["checkpoints"]:
            raise Refused("chain_break", f"its prev names no checkpoint of segment {prev['seq']} "
                                         f"(spliced, or a forged history)")
    for other in records.values():
        other_prev = other["prev"]
        if other["seq"] == seq:
            continue
        if other_prev is not None and other_prev["seq"] == seq and \
                [other_prev["chunks"], other_prev["hash"]] not in checkpoints:
            raise Refused("chain_break", f"segment {other['seq']}, already held, follows another segment {seq}")
        same_parent = (other_prev is None and prev is None) or \
            (other_prev is not None and prev is not None and other_prev["seq"] == prev["seq"])
        if same_parent:
            raise Refused("chain_break", f"segment {other['seq']}, already held, already follows "
                                         f"{'nothing' if prev is None else prev['seq']} (a fork)")


def _segments_covered(records: dict[int, dict]) -> dict | None:
    roots = [r for r in records.values() if r["prev"] is None]
    if not roots:
        return None
    after = {r["prev"]["seq"]: r for r in records.values() if r["prev"] is not None}
    current = min(roots, key=lambda r: r["seq"])
    while current["seq"] in after:
        current = after[current["seq"]]
    return {"seq": current["seq"], "hash": current["hash"], "chunks": current["chunks"]}


def _audit_covered(parts: list[AuditPart]) -> dict | None:
    # Acceptance keeps the held parts one chain; it covers the history only if it starts at 0.
    if not parts or parts[0].first_n != 0:
        return None
    return {"n": parts[-1].last_n, "hash": parts[-1].last_hash}


def _verified_lines(data: bytes, key: VerifyKey) -> list[tuple[dict, str]]:
    """(entry, line hash) per line, read exactly as `bwc verify` reads an audit file: each
    line whole, signed, an entry of a known type, and chained to the one before."""
    if not data or not data.endswith(b"\n"):
        raise Refused("audit_invalid", "audit bytes must be whole lines, each ending in a newline")
    run = read_audit_file("upload", data, key)
    if run.problem:
        raise Refused("audit_invalid", run.problem)
    return [(run.entries[n], line_hash(run.lines[n])) for n in sorted(run.entries)]


def _continues(head: AuditPart, entries: list[tuple[dict, str]], offset: int) -> None:
    first, first_hash = entries[0]
    if first["n"] == head.last_n + 1 and first["prev"] == head.last_hash:
        return
    if offset == 0 and first["n"] == head.last_n and first_hash == head.last_hash:
        return   # the newest line written again at the start of the next file (format.md §5.3)
    raise Refused("audit_invalid", f"entry {first['n']} does not continue the intake's chain "
                                   f"(which ends at entry {head.last_n})")
