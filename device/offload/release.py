"""Letting receipted history leave the card (docs/offload.md §8 step 4, OFF-2).

Given a custody receipt from the intake: check it against the intake keys the device
was provisioned to trust, work out exactly what it covers on this card, log it in a
`receipt` audit entry with the device's own audit log (so the card still verifies,
its earlier history accounted for by that entry), and only then delete:

- every segment with a seq below the receipt's;
- the receipt's own segment, if the checkpoint it names is that file's last one;
- every audit file but the newest whose entries are all covered, and older than every
  entry the segments that stay on the card still need (their events' activations, the
  recovery and fault entries that explain them: see keep_audit_from).

Covered means provably the same history, not merely a lower number: the receipt's
segment must be the card's (its named checkpoint is one of the file's), and its
audit entry must be on the card (that line's hash, or the next line's `prev`). A
receipt that names something else deletes nothing. Runs only while the caller holds
the device lock (no firmware writes meanwhile). A receipt that deletes nothing is
not logged, so running offload again changes nothing on the card.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

from nacl.signing import SigningKey, VerifyKey

from device.chainstate import ChainState
from device.config import Identity
from device.evidence.audit import AuditLog
from device.evidence.audit_lines import audit_file_number, line_hash, parse_line, split_lines
from device.evidence.format import HEADER_MAX_BYTES, PREAMBLE_BYTES, segment_file_name, seq_from_file_name
from device.evidence.receipt import check_receipt
from device.evidence.segment_reader import read_header_unverified, verify_segment_file
from hal.clock import Clock
from hal.dirstorage import DirectoryStorage
from hal.fs import OS_FS, FileSystem
from hal.keystore import KeyStore


@dataclass(slots=True)
class Release:
    logged_entry: int | None = None          # n of the receipt entry, if one was logged
    deleted: list[str] = field(default_factory=list)
    kept_reason: list[str] = field(default_factory=list)   # why covered-looking files stayed


def _audit_files(storage_dir: str) -> list[tuple[int, str]]:
    return sorted((n, name) for name in os.listdir(storage_dir)
                  if (n := audit_file_number(name)) is not None and n > 0)


def _read(storage_dir: str, name: str) -> bytes:
    with open(os.path.join(storage_dir, name), "rb") as f:
        return f.read()


def covered_audit_files(storage_dir: str, audit: tuple[int, str] | None, key: VerifyKey,
                        out: Release) -> list[str]:
    """Audit files whose every entry is at or before the receipt's, which the card
    itself shows is the same chain, oldest first (the card's newest file may be one)."""
    files = _audit_files(storage_dir)
    if audit is None or not files:
        return []
    n_receipted, digest = audit
    on_card, names = False, []
    entries_by_file: dict[str, list[int] | None] = {}
    for _, name in files:
        lines, _tail = split_lines(_read(storage_dir, name))
        numbers: list[int] | None = []
        for line in lines:
            entry = parse_line(line, key)
            if entry is None or not isinstance(entry.get("n"), int):
                numbers = None     # a line that does not verify: never delete this file
                continue
            if (entry["n"] == n_receipted and line_hash(line) == digest) or \
                    (entry["n"] == n_receipted + 1 and entry.get("prev") == digest):
                on_card = True
            if numbers is not None:
                numbers.append(entry["n"])
        entries_by_file[name] = numbers
    if not on_card:
        out.kept_reason.append(f"the receipt's audit entry {n_receipted} is not this card's")
        return []
    for _, name in files:
        numbers = entries_by_file[name]
        if numbers is not None and all(n <= n_receipted for n in numbers):
            names.append(name)
    return names


def _headers(storage_dir: str) -> dict[int, dict | None]:
    """seq -> the signed header of each segment file on the card, read without checking
    (the device reads its own card; None where there is no readable header)."""
    out = {}
    for name in os.listdir(storage_dir):
        if (seq := seq_from_file_name(name)) is not None:
            with open(os.path.join(storage_dir, name), "rb") as f:
                out[seq] = read_header_unverified(f.read(PREAMBLE_BYTES + HEADER_MAX_BYTES + 5))
    return out


def keep_audit_from(storage_dir: str, doomed: list[str], key: VerifyKey) -> int | None:
    """The oldest audit entry that segments staying on the card still need, or None.

    A segment left on the card is judged against the log: its event's `activation`, the
    `recovery` or `fault` entries that explain a cut or a link to a non-last checkpoint,
    and its `deactivation` all come at or after the head of the log when the segment's
    event began. So those entries, and every later one, stay however much of the audit
    chain a receipt covers (the intake may hold more of the log than of the segments)."""
    headers = _headers(storage_dir)
    staying = {seq: h for seq, h in headers.items() if segment_file_name(seq) not in doomed}
    if not staying:
        return None
    if any(h is None or not isinstance(h.get("audit_n"), int) for h in staying.values()):
        return 0    # something unreadable stays: keep the whole log beside it
    activations: dict[str, int] = {}
    for _, name in _audit_files(storage_dir):
        lines, _tail = split_lines(_read(storage_dir, name))
        for line in lines:
            entry = parse_line(line, key)
            if entry and entry.get("type") == "activation" and isinstance(entry.get("n"), int):
                activations.setdefault(entry.get("event_id"), entry["n"])
    return min(min(h["audit_n"], activations.get(h["event_id"], h["audit_n"])) for h in staying.values())


def _all_before(storage_dir: str, name: str, n_limit: int, key: VerifyKey) -> bool:
    lines, _tail = split_lines(_read(storage_dir, name))
    numbers = [e["n"] for line in lines if (e := parse_line(line, key)) and isinstance(e.get("n"), int)]
    return all(n < n_limit for n in numbers)


def covered_segments(storage_dir: str, segments: tuple[int, str, int] | None, key: VerifyKey,
                     out: Release) -> list[str]:
    if segments is None:
        return []
    seq, digest, chunks = segments
    by_seq = {s: name for name in os.listdir(storage_dir) if (s := seq_from_file_name(name)) is not None}
    names = [by_seq[s] for s in sorted(by_seq) if s < seq]
    # A later segment that names another checkpoint of the receipt's own segment (the one
    # a storage fault let it name) can be judged only against that segment: keep it.
    follows_elsewhere = [s for s, h in _headers(storage_dir).items()
                         if s > seq and h and isinstance(h.get("prev"), dict) and h["prev"].get("seq") == seq
                         and (h["prev"].get("chunks"), h["prev"].get("hash")) != (chunks, digest)]
    if seq in by_seq:
        with open(os.path.join(storage_dir, by_seq[seq]), "rb") as f:
            report = verify_segment_file(f, key)
        cps = [(cp.chunk_count, cp.hash.hex()) for cp in report.checkpoints]
        if (chunks, digest) not in cps:
            out.kept_reason.append(f"the receipt names a checkpoint that segment {seq} on this card does not have")
            return []
        if cps[-1] == (chunks, digest) and follows_elsewhere:
            out.kept_reason.append(f"segment {seq}: segment {follows_elsewhere[0]} follows another of its checkpoints")
        elif cps[-1] == (chunks, digest):
            names.append(by_seq[seq])
        else:
            out.kept_reason.append(f"segment {seq}: the intake holds it only to chunk {chunks}")
    return names


def _same_at_intake(storage_dir: str, names: list[str], held: dict[int, str] | None, out: Release) -> list[str]:
    """Only segments the intake says (in a signed answer of this run) it holds with these
    very bytes: a receipt vouches for a prefix of *a* history, and a forked or cloned
    device's card may hold other bytes under the same numbers."""
    if held is None:
        if names:
            out.kept_reason.append("the intake's list of held segments is unknown (no state this run)")
        return []
    keep = []
    for name in names:
        with open(os.path.join(storage_dir, name), "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        if held.get(seq_from_file_name(name)) == digest:
            keep.append(name)
        else:
            out.kept_reason.append(f"{name}: the intake does not hold these bytes")
    return keep


def release(receipt: dict, identity: Identity, storage_dir: str, keystore: KeyStore, clock: Clock,
            fs: FileSystem = OS_FS, held: dict[int, str] | None = None) -> Release:
    """Check `receipt`, log it, and delete what it covers. `held` is seq -> sha256 of
    the segments the intake's signed `state` lists; no segment is deleted without it. Raises ReceiptError (and
    changes nothing) unless it is signed by a trusted intake key for this device."""
    device_hex = identity.device_public_key.hex()
    segs, audit = check_receipt(receipt, device_hex, list(identity.intake_public_keys))
    key = VerifyKey(identity.device_public_key)
    out = Release()
    doomed = _same_at_intake(storage_dir, covered_segments(storage_dir, segs, key, out), held, out)
    audit_names = covered_audit_files(storage_dir, audit, key, out)
    keep_from = keep_audit_from(storage_dir, doomed, key)
    if keep_from is not None:
        needed = [n for n in audit_names if not _all_before(storage_dir, n, keep_from, key)]
        if needed:
            out.kept_reason.append(f"audit entries from {keep_from} explain segments still on the card")
        audit_names = [n for n in audit_names if n not in needed]
    newest = _audit_files(storage_dir)[-1][1] if _audit_files(storage_dir) else None
    # The newest audit file alone is no reason to log: a receipt for it would open a
    # newer file holding only itself, and every later run would do the same again.
    if not doomed and not [n for n in audit_names if n != newest]:
        return out
    signing_key = SigningKey(keystore.signing_seed())
    if bytes(signing_key.verify_key) != identity.device_public_key:
        raise ValueError("the key store's signing key does not match device.json")
    # The firmware's own audit log and chain state (device/firmware.py boot): the entry
    # continues the device's chain and opens a new audit file, which is then the newest.
    chain = ChainState.load(keystore)
    log = AuditLog(DirectoryStorage(storage_dir, fs), signing_key, identity.device_id, chain,
                   lambda: chain.save(keystore))
    try:
        entry = log.append("receipt", clock.monotonic_us(), clock.wall_time_us(), receipt=receipt)
    finally:
        log.close()
    out.logged_entry = entry["n"]
    # The entry opened a newer file, so every covered file may go; never the newest.
    newest = _audit_files(storage_dir)[-1][1]
    for name in doomed + [n for n in audit_names if n != newest]:
        fs.unlink(os.path.join(storage_dir, name))
        # One at a time, oldest first, each made durable before the next: a power cut
        # must never leave an older file gone and a newer one back (a hole mid-history).
        fs.fsync_dir(storage_dir)
        out.deleted.append(name)
    return out
