"""The device audit log (AUD-1, AUD-2; docs/format.md §5): signed, hash-chained JSON lines.

Format v2 keeps the chain going across boots, card wipes and card swaps: the head
(next entry number, hash of the newest line) lives in the key store with the
segment counter, and each boot (and each recovery from a storage fault) starts a
new numbered file `audit-NNNNNNNNNN.log`, so the files of several cards can be
gathered in one directory and a file is never appended to after it may have been
torn. A line is recorded in the key store *before* it is written to the card. If
the same card may not hold it whole (a fault, a power cut), it is written again,
byte for byte, at the start of the next file; if the card was swapped or wiped
after a power cut, the boot's recovery entry names it as unconfirmed instead.
"""
from __future__ import annotations

import json
from typing import Callable

from nacl.signing import SigningKey

from device.chainstate import ChainState
from device.evidence.audit_lines import (
    ENTRY_TYPES, GENESIS, LEGACY_AUDIT_FILE, audit_file_name, audit_file_number, line_hash, parse_line,
    sign_line, split_lines,
)
from device.evidence.format import seq_from_file_name
from hal.storage import Storage, StorageError, WritableFile

# Kept for callers of firmware 0.1's single-file layout.
AUDIT_FILE = LEGACY_AUDIT_FILE


class AuditLog:
    """Appends entries to the card's audit files. Used on one thread at a time
    (boot, then the writer thread)."""

    def __init__(self, storage: Storage, signing_key: SigningKey, device_id: str,
                 chain: ChainState, save_chain: Callable[[], None]) -> None:
        self._storage, self._key, self._device_id = storage, signing_key, device_id
        self._chain, self._save_chain = chain, save_chain
        self._file: WritableFile | None = None     # opened at the first append of this boot
        if chain.audit is None:
            chain.audit = _head_from_legacy_log(storage, signing_key)
        self._rewrite = False
        # {"n", "sha256"} of the newest line when this card cannot show it (another card).
        self.unconfirmed: dict | None = None
        # Set when this card is not the one the device wrote to last (wiped or swapped):
        # the first entry of this boot says where the device's history resumes and what
        # this card still held, so the hole reads as "on another card", not as tampering.
        self.card_change: dict | None = None
        self._check_newest_line()

    @property
    def next_n(self) -> int:
        return self._chain.audit["next_n"]

    @property
    def head_hash(self) -> str:
        return self._chain.audit["prev"]

    def _check_newest_line(self) -> None:
        """The device's newest line must be on the card whole. If the card holds the
        line before it (a torn or failed write, or a cut before the file existed),
        write it again; if the card is not the one it went to (wiped or swapped), the
        first entry of this boot says where the history resumes instead."""
        head = self._chain.audit
        last = head.get("last_line")
        if last is None:
            return
        newest_n = head["next_n"] - 1
        card_n, card_hash = self._card_newest_entry()
        if card_n == newest_n and card_hash == head["prev"]:
            return
        try:
            last_prev = json.loads(last.rpartition(" ")[0]).get("prev")
        except ValueError:
            last_prev = None
        if (card_n is None and newest_n == 0) or (card_n == newest_n - 1 and card_hash == last_prev):
            self._rewrite = True
            return
        self.unconfirmed = {"n": newest_n, "sha256": head["prev"]}
        self.card_change = {"resumes_after": {"seq": self._chain.next_seq - 1, "audit_n": newest_n},
                            "found": self._what_the_card_holds()}

    def _card_newest_entry(self) -> tuple[int | None, str | None]:
        """(n, line hash) of the newest whole entry on this card's audit files."""
        names = self._storage.names()
        numbered = sorted((n, name) for name in names if (n := audit_file_number(name)) is not None)
        for _, name in reversed(numbered):
            try:
                with self._storage.open_read(name) as f:
                    lines, tail = split_lines(f.read())
            except OSError:
                continue
            for line in reversed(lines + [tail]):
                entry = parse_line(line, self._key.verify_key) if line else None
                if entry is not None and isinstance(entry.get("n"), int):
                    return entry["n"], line_hash(line)
        return None, None

    def _what_the_card_holds(self) -> dict:
        """The newest segment number and audit entry on this card (None if it has none)."""
        seqs = [s for s in map(seq_from_file_name, self._storage.names()) if s is not None]
        return {"seq": max(seqs, default=None), "audit_n": self._card_newest_entry()[0]}

    def append(self, entry_type: str, monotonic_us: int, utc_us: int, **fields: object) -> dict:
        """Sign and durably write one entry; raises StorageError if the card fails
        (the entry is then in the key store and is written first next time)."""
        if entry_type not in ENTRY_TYPES:
            raise ValueError(f"unknown audit entry type {entry_type!r}")
        self._catch_up()
        head = self._chain.audit
        if self.card_change is not None:
            fields = dict(fields, card_change=self.card_change)
        entry = dict(fields, n=head["next_n"], prev=head["prev"], type=entry_type,
                     device_id=self._device_id, monotonic_us=monotonic_us, utc_us=utc_us)
        line = sign_line(self._key, entry)
        # Write-ahead: once the key store names this line, it is never reused for another.
        self._chain.audit = dict(head, next_n=head["next_n"] + 1, prev=line_hash(line), last_line=line.decode())
        self._save_chain()
        self._rewrite = True
        self._write(line)
        self._rewrite, self.card_change = False, None
        return entry

    def _catch_up(self) -> None:
        if self._rewrite and self._chain.audit.get("last_line") is not None:
            self._write(self._chain.audit["last_line"].encode())
        self._rewrite = False

    def _write(self, line: bytes) -> None:
        try:
            if self._file is None:
                head = self._chain.audit
                number = head["next_file"]
                self._chain.audit = dict(head, next_file=number + 1)
                self._save_chain()
                self._file = self._storage.create(audit_file_name(number))
            self._file.write(line + b"\n")
            self._file.sync()
        except StorageError:
            # The file may now end in part of this line: never append to it again.
            self._drop_file()
            raise

    def _drop_file(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            try:
                file.close()
            except OSError:
                pass

    def close(self) -> None:
        self._drop_file()


def _head_from_legacy_log(storage: Storage, key: SigningKey) -> dict:
    """A device first run by firmware 0.1 continues the chain of its audit.log."""
    head = {"next_n": 0, "prev": GENESIS, "next_file": 1, "last_line": None}
    if LEGACY_AUDIT_FILE not in storage.names():
        return head
    with storage.open_read(LEGACY_AUDIT_FILE) as f:
        lines, tail = split_lines(f.read())
    for line in reversed(lines + [tail]):
        entry = parse_line(line, key.verify_key) if line else None
        if entry is not None and isinstance(entry.get("n"), int):
            # The line is on this card (audit.log): nothing to confirm.
            return dict(head, next_n=entry["n"] + 1, prev=line_hash(line))
    return head
