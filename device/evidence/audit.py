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
        self._lead = b""                 # a newline owed to a line cut short by power loss
        self._torn_lines: list[bytes] = []
        if AUDIT_FILE in storage.names():
            with storage.open_read(AUDIT_FILE) as f:
                self._resume(f.read())
        self._file = storage.append(AUDIT_FILE)

    def _resume(self, data: bytes) -> None:
        """Continue the chain after the last entry that verifies (AUD-2)."""
        lines, tail = _split_lines(data)
        verify_key = self._key.verify_key
        last = len(lines) - 1
        while last >= 0 and _parse_line(lines[last], verify_key) is None:
            last -= 1
        if last >= 0:
            self._prev = _line_hash(lines[last])
            self._next_n = _parse_line(lines[last], verify_key)["n"] + 1
        junk = lines[last + 1:]
        if tail:
            self._lead = b"\n"
            entry = _parse_line(tail, verify_key)
            if not junk and entry is not None and entry.get("n") == self._next_n and entry.get("prev") == self._prev:
                # Power failed just before the newline: the entry itself is whole.
                self._prev, self._next_n = _line_hash(tail), self._next_n + 1
            else:
                junk.append(tail)
        self._torn_lines = junk

    @property
    def needs_recovery(self) -> bool:
        """True if power loss left torn lines that a recovery entry must explain."""
        return bool(self._torn_lines)

    def append(self, entry_type: str, monotonic_us: int, utc_us: int, **fields: object) -> dict:
        if entry_type not in ENTRY_TYPES:
            raise ValueError(f"unknown audit entry type {entry_type!r}")
        entry = dict(fields, n=self._next_n, prev=self._prev, type=entry_type,
                     device_id=self._device_id, monotonic_us=monotonic_us, utc_us=utc_us)
        if self._torn_lines:
            # The first entry after an unclean stop names the torn bytes it follows.
            if entry_type != "recovery":
                raise ValueError("audit.log ends in torn entries: write a recovery entry first")
            entry["torn_lines_sha256"] = [_line_hash(line) for line in self._torn_lines]
        body = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
        line = body + b" " + self._key.sign(AUDIT_DOMAIN + body).signature.hex().encode()
        self._file.write(self._lead + line + b"\n")
        self._file.sync()
        self._lead, self._torn_lines = b"", []
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


_SIGNATURE_HEX_CHARS = 128
_HEX = frozenset(b"0123456789abcdef")


def _parse_line(line: bytes, key: VerifyKey) -> dict | None:
    body, sep, sig_hex = line.rpartition(b" ")
    if not sep or len(sig_hex) != _SIGNATURE_HEX_CHARS or not set(sig_hex) <= _HEX:
        return None
    try:
        key.verify(AUDIT_DOMAIN + body, bytes.fromhex(sig_hex.decode("ascii")))
        entry = json.loads(body)
    except (BadSignatureError, ValueError, UnicodeDecodeError):
        return None
    return entry if isinstance(entry, dict) else None


def _could_be_torn(tail: bytes) -> bool:
    """True if `tail` can be the start of an entry line cut off by power loss: an
    unfinished JSON object, or a whole one followed by part of " <signature>"."""
    text = tail.decode("utf-8", errors="ignore")  # the cut may split a character
    try:
        _, end = json.JSONDecoder().raw_decode(text)
    except ValueError:
        return text.startswith("{")   # the JSON itself was cut short
    rest = text[end:].encode("utf-8")
    return rest[:1] in (b"", b" ") and len(rest) <= 1 + _SIGNATURE_HEX_CHARS and set(rest[1:]) <= _HEX


def verify_audit(data: bytes, key: VerifyKey) -> AuditReport:
    lines, tail = _split_lines(data)
    report = AuditReport(outcome=AUTHENTIC)
    prev, expected_n = GENESIS, 0
    torn: list[tuple[int, bytes]] = []   # (line number, bytes) awaiting a recovery entry
    for number, line in enumerate(lines, start=1):
        entry = _parse_line(line, key)
        if entry is None:
            torn.append((number, line))
            continue
        if entry.get("n") != expected_n or entry.get("prev") != prev:
            return AuditReport(STRUCTURE_FAILURE, f"audit.log line {number}: breaks the hash chain "
                                                  f"(entry removed, inserted or reordered)")
        if torn:
            named = entry.get("torn_lines_sha256") if entry.get("type") == "recovery" else None
            if named != [_line_hash(t) for _, t in torn]:
                return AuditReport(SIGNATURE_FAILURE, f"audit.log line {torn[0][0]}: bad signature or "
                                                      f"not an entry")
            report.torn_lines += len(torn)
            torn = []
        report.entries.append(entry)
        prev, expected_n = _line_hash(line), expected_n + 1
    if torn:
        return AuditReport(SIGNATURE_FAILURE, f"audit.log line {torn[0][0]}: bad signature or not an entry")
    if tail:
        entry = _parse_line(tail, key)
        if entry is not None and entry.get("n") == expected_n and entry.get("prev") == prev:
            report.entries.append(entry)   # whole, only its newline is missing
        elif not _could_be_torn(tail):
            return AuditReport(STRUCTURE_FAILURE, f"audit.log line {len(lines) + 1}: not an entry "
                                                  f"and not an entry cut short (altered)")
        report.outcome = TRUNCATED
        report.reason = "audit.log ends in an entry cut short by power loss"
    return report
