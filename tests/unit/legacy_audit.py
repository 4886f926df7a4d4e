"""Firmware 0.1's audit-log writer (format v1), kept only to make v1 fixtures for tests:
the firmware now writes format v2 (device/evidence/audit.py)."""
from __future__ import annotations

import json

from nacl.signing import SigningKey

from device.evidence.audit_lines import (
    AUDIT_DOMAIN, ENTRY_TYPES, GENESIS, LEGACY_AUDIT_FILE as AUDIT_FILE, line_hash, parse_line, split_lines,
)
from hal.storage import Storage


class LegacyAuditLog:
    """Firmware 0.1's writer: one audit.log per card, torn lines named by a recovery entry."""

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
        lines, tail = split_lines(data)
        verify_key = self._key.verify_key
        last = len(lines) - 1
        while last >= 0 and parse_line(lines[last], verify_key) is None:
            last -= 1
        if last >= 0:
            self._prev = line_hash(lines[last])
            self._next_n = parse_line(lines[last], verify_key)["n"] + 1
        junk = lines[last + 1:]
        if tail:
            self._lead = b"\n"
            entry = parse_line(tail, verify_key)
            if not junk and entry is not None and entry.get("n") == self._next_n and entry.get("prev") == self._prev:
                # Power failed just before the newline: the entry itself is whole.
                self._prev, self._next_n = line_hash(tail), self._next_n + 1
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
            entry["torn_lines_sha256"] = [line_hash(line) for line in self._torn_lines]
        body = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
        line = body + b" " + self._key.sign(AUDIT_DOMAIN + body).signature.hex().encode()
        self._file.write(self._lead + line + b"\n")
        self._file.sync()
        self._lead, self._torn_lines = b"", []
        self._prev = line_hash(line)
        self._next_n += 1
        return entry

    def close(self) -> None:
        self._file.close()
