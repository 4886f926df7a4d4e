"""What `bwc offload` sends, and in which order (docs/offload.md §8).

The audit log always goes first (it is small, and it is what explains every segment),
then segments: those of events with a `marker` entry first (the wearer flagged them),
then the others, oldest event first, within an event by seq. Only *closed* segments
are sent — ones with their final checkpoint, or that the firmware has moved past (a
newer segment exists, or its boot has recovered it after a power cut) — so offload
never sends a segment that may still grow. Whatever the intake's state says it holds
is skipped. Nothing here does network I/O; reading the card is the caller's
`verify_storage` report plus the audit files' bytes.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

from device.chainstate import ChainState
from device.evidence.audit_lines import audit_file_number
from device.evidence.segment_reader import AUTHENTIC
from device.evidence.storage_report import StorageReport
from device.offload.protocol import AUDIT_BATCH_MAX_BYTES

_READ_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class CardSegment:
    seq: int
    name: str
    path: str
    size: int
    sha256: str
    event_id: str
    final: bool                   # its last checkpoint is the final one


@dataclass(frozen=True, slots=True)
class AuditSend:
    """Bytes [offset, offset + len(data)) of audit file `file`: whole lines only."""
    file: int
    offset: int
    data: bytes


@dataclass(slots=True)
class Plan:
    audit: list[AuditSend] = field(default_factory=list)
    segments: list[CardSegment] = field(default_factory=list)     # in sending order
    held: list[CardSegment] = field(default_factory=list)         # the intake already accepted these
    open: list[CardSegment] = field(default_factory=list)         # not closed: left on the card
    # (name, why) of card files offload cannot send (unauthenticated, or not whole).
    unsendable: list[tuple[str, str]] = field(default_factory=list)


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_READ_BYTES):
            digest.update(block)
    return digest.hexdigest()


def card_segments(report: StorageReport) -> list[CardSegment]:
    """Every authenticated segment of a verified card, by seq, with its file's SHA-256."""
    out = []
    for seg in report.segments:
        last = seg.report.last
        out.append(CardSegment(seg.seq, seg.name, seg.path, os.path.getsize(seg.path), file_sha256(seg.path),
                               seg.header["event_id"], seg.report.outcome == AUTHENTIC and last.final))
    return out


def marked_events(report: StorageReport) -> set[str]:
    """Events the wearer marked (a `marker` entry names them)."""
    entries = report.audit.entries if report.audit else []
    return {e["event_id"] for e in entries if e.get("type") == "marker" and isinstance(e.get("event_id"), str)}


def settled_by_chain(chain: ChainState | None, seq: int) -> bool:
    """True if the firmware has finished with segment `seq`: it is not the segment the
    key store holds open, and no boot's recovery of it is still waiting to be logged."""
    if chain is None:
        return False
    pending = chain.pending_recovery or {}
    return seq < chain.next_seq and chain.open_seq != seq and pending.get("seq") != seq


def is_closed(seg: CardSegment, newest_seq: int, chain: ChainState | None) -> bool:
    return seg.final or seg.seq < newest_seq or settled_by_chain(chain, seg.seq)


def order_segments(segments: list[CardSegment], marked: set[str]) -> list[CardSegment]:
    """Marked events first, then the others; oldest event (lowest first seq) first; by seq."""
    first_seq: dict[str, int] = {}
    for seg in segments:
        first_seq[seg.event_id] = min(first_seq.get(seg.event_id, seg.seq), seg.seq)
    return sorted(segments, key=lambda s: (s.event_id not in marked, first_seq[s.event_id], s.seq))


def plan_segments(segments: list[CardSegment], marked: set[str], state: dict, chain: ChainState | None,
                  plan: Plan | None = None) -> Plan:
    plan = plan if plan is not None else Plan()
    accepted = {s["seq"]: s["sha256"] for s in state.get("segments", [])}
    newest = max((s.seq for s in segments), default=0)
    todo = []
    for seg in segments:
        if accepted.get(seg.seq) == seg.sha256:
            plan.held.append(seg)
        elif not is_closed(seg, newest, chain):
            plan.open.append(seg)
        else:
            # Accepted with another hash too: sent anyway, so the intake names the conflict.
            todo.append(seg)
    plan.segments = order_segments(todo, marked)
    return plan


def audit_batches(file: int, data: bytes, held_bytes: int) -> list[AuditSend]:
    """The whole lines of one audit file from the byte count the intake holds, in
    batches of at most AUDIT_BATCH_MAX_BYTES (a torn tail is never sent)."""
    end = data.rfind(b"\n") + 1
    out, pos = [], held_bytes
    while pos < end:
        cut = data.rfind(b"\n", pos, pos + AUDIT_BATCH_MAX_BYTES) + 1
        if cut <= pos:   # one line longer than a batch: no device writes one; send it alone
            cut = data.index(b"\n", pos) + 1
        out.append(AuditSend(file, pos, data[pos:cut]))
        pos = cut
    return out


def plan_audit(storage_dir: str, state: dict, plan: Plan | None = None) -> Plan:
    """Every numbered audit file on the card, oldest first, from what the intake holds."""
    plan = plan if plan is not None else Plan()
    held = {f["file"]: f["bytes"] for f in (state.get("audit") or {}).get("files", [])}
    numbered = sorted((n, name) for name in os.listdir(storage_dir)
                      if (n := audit_file_number(name)) is not None and n > 0)
    for number, name in numbered:
        with open(os.path.join(storage_dir, name), "rb") as f:
            data = f.read()
        have = held.get(number, 0)
        if have > len(data) or (have and data[have - 1:have] != b"\n"):
            plan.unsendable.append((name, f"the intake holds {have} bytes of it, which this card's file "
                                          f"does not end a line at"))
            continue
        plan.audit.extend(audit_batches(number, data, have))
    return plan


def make_plan(storage_dir: str, report: StorageReport, state: dict, chain: ChainState | None,
              segments: list[CardSegment] | None = None) -> Plan:
    """`segments`: card_segments(report), when the caller already hashed them."""
    plan = plan_audit(storage_dir, state)
    plan_segments(card_segments(report) if segments is None else segments, marked_events(report), state, chain,
                  plan)
    for name, outcome in sorted(report.files.items()):
        if outcome not in ("authentic", "truncated") and name.startswith("seg-"):
            plan.unsendable.append((name, f"does not verify on the card ({outcome})"))
    return plan
