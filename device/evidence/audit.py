"""The device audit log (AUD-1, AUD-2; docs/format.md §5): signed, hash-chained JSON lines."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from device.evidence.segment_reader import AUTHENTIC, SIGNATURE_FAILURE, STRUCTURE_FAILURE, TRUNCATED
from hal.storage import Storage

AUDIT_FILE = "audit.log"
AUDIT_DOMAIN = b"OBWC-v1-audit\x00"
GENESIS = "0" * 64
ENTRY_TYPES = ("boot", "activation", "deactivation", "marker", "recovery", "shutdown")


def _line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def _split_lines(data: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines, and the torn remainder (b"" if the file ends with a newline)."""
    parts = data.split(b"\n")
    return parts[:-1], parts[-1]


class AuditLog:
    """Appends entries to storage's audit.log. Used on the writer thread only."""

    def __init__(self, storage: Storage, signing_key: SigningKey, device_id: str) -> None:
        self._storage = storage
        self._key = signing_key
        self._device_id = device_id
        self._next_n = 0
        self._prev = GENESIS
        self.torn_tail: bytes = b""
        if AUDIT_FILE in storage.names():
            with storage.open_read(AUDIT_FILE) as f:
                lines, self.torn_tail = _split_lines(f.read())
            if lines:
                last = lines[-1]
                self._prev = _line_hash(last)
                self._next_n = json.loads(last.rpartition(b" ")[0])["n"] + 1
        self._file = storage.append(AUDIT_FILE)

    def append(self, entry_type: str, monotonic_us: int, utc_us: int, **fields: object) -> dict:
        if entry_type not in ENTRY_TYPES:
            raise ValueError(f"unknown audit entry type {entry_type!r}")
        entry = dict(fields, n=self._next_n, prev=self._prev, type=entry_type,
                     device_id=self._device_id, monotonic_us=monotonic_us, utc_us=utc_us)
        lead = b""
        if self.torn_tail:
            # Power was lost mid-append (AUD-2). The first entry after boot ends the
            # torn line in the same write and, as a recovery entry, names its bytes.
            if entry_type != "recovery":
                raise ValueError("audit.log ends in a torn entry: write a recovery entry first")
            entry["torn_line_sha256"] = _line_hash(self.torn_tail)
            lead = b"\n"
        body = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
        line = body + b" " + self._key.sign(AUDIT_DOMAIN + body).signature.hex().encode()
        self._file.write(lead + line + b"\n")
        self._file.sync()
        self.torn_tail = b""
        self._prev = _line_hash(line)
        self._next_n += 1
        return entry

    def close(self) -> None:
        self._file.close()


@dataclass(slots=True)
class AuditReport:
    outcome: str
    reason: str = ""
    entries: list[dict] = field(default_factory=list)
    torn_lines: int = 0  # torn lines explained by a later recovery entry

    @property
    def ok(self) -> bool:
        return self.outcome in (AUTHENTIC, TRUNCATED)


def _parse_line(line: bytes, key: VerifyKey) -> dict | None:
    body, sep, sig_hex = line.rpartition(b" ")
    if not sep:
        return None
    try:
        key.verify(AUDIT_DOMAIN + body, bytes.fromhex(sig_hex.decode("ascii")))
        entry = json.loads(body)
    except (BadSignatureError, ValueError, UnicodeDecodeError):
        return None
    return entry if isinstance(entry, dict) else None


def verify_audit(data: bytes, key: VerifyKey) -> AuditReport:
    lines, torn = _split_lines(data)
    report = AuditReport(outcome=AUTHENTIC)
    prev, expected_n = GENESIS, 0
    pending_torn: bytes | None = None
    for number, line in enumerate(lines, start=1):
        entry = _parse_line(line, key)
        if entry is None:
            if pending_torn is not None:
                return AuditReport(SIGNATURE_FAILURE, f"audit.log line {number - 1}: bad signature or not an entry")
            pending_torn = line  # acceptable only if the next entry recovers it
            continue
        if entry.get("n") != expected_n or entry.get("prev") != prev:
            return AuditReport(STRUCTURE_FAILURE, f"audit.log line {number}: breaks the hash chain "
                                                  f"(entry removed, inserted or reordered)")
        if pending_torn is not None:
            if entry.get("type") != "recovery" or entry.get("torn_line_sha256") != _line_hash(pending_torn):
                return AuditReport(SIGNATURE_FAILURE, f"audit.log line {number - 1}: bad signature or not an entry")
            report.torn_lines += 1
            pending_torn = None
        report.entries.append(entry)
        prev, expected_n = _line_hash(line), expected_n + 1
    if pending_torn is not None:
        return AuditReport(SIGNATURE_FAILURE, f"audit.log line {len(lines)}: bad signature or not an entry")
    if torn:
        report.outcome = TRUNCATED
        report.reason = "audit.log ends in a torn entry (power loss)"
    return report
