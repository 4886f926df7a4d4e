"""Custody checks over a set of one device's evidence (docs/format.md §6.2–6.5).

Two chains run through a device's life: segments (`seq`, each naming its `prev`)
and audit entries (`n`, each naming the hash of the line before). A set may hold
any part of them. Each chain starts somewhere: what lies before its first item
present is *before this set*, or *accounted for by a receipt* that the device
logged. Inside the set every hole must be explained by a signed entry — a
recovery entry (power loss) or a fault entry (storage fault) — and the two chains
must agree: every segment the audit log names is present, every segment present
is named where the log covers it, and no segment is shorter than an entry says.
Anything else is tampering.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from device.evidence.audit_verify import AuditReport, card_change_covers
from device.evidence.receipt import ReceiptError, check_receipt
from device.evidence.segment_reader import AUTHENTIC
from device.evidence.storage_report import (
    GAP_BEFORE_SET, GAP_POWER_LOSS, GAP_RECEIPT, GAP_STORAGE_FAULT, Segment, StorageReport,
)

AUDIT = "audit log"   # the "file" named in problems about the audit log as a whole


@dataclass(slots=True)
class _Index:
    """The audit entries that matter to custody, by what they name."""
    recoveries: dict[int, dict] = field(default_factory=dict)     # seq -> recovery entry
    faults: dict[int, list[dict]] = field(default_factory=dict)   # seq -> fault entries
    event_ends: dict[str, dict] = field(default_factory=dict)     # event_id -> recovery/fault entry
    activations: dict[str, dict] = field(default_factory=dict)
    deactivations: dict[str, dict] = field(default_factory=dict)
    boots: list[int] = field(default_factory=list)                # entry numbers
    receipt_segments: tuple[int, str, int] | None = None          # (seq, hash, chunks) received
    receipt_audit: tuple[int, str] | None = None                  # (n, hash) received
    receipt_entry: int | None = None
    card_changes: list[dict] = field(default_factory=list)       # entries that start a changed card


def _index(report: StorageReport, device_key_hex: str) -> _Index:
    index = _Index()
    for entry in report.audit.entries:
        kind, n = entry.get("type"), entry["n"]
        seq = entry.get("seq")
        if isinstance(entry.get("card_change"), dict):
            index.card_changes.append(entry)
        if kind == "recovery":
            if isinstance(seq, int):
                index.recoveries[seq] = entry
            if isinstance(entry.get("event_id"), str):
                index.event_ends.setdefault(entry["event_id"], entry)
        elif kind == "fault":
            if isinstance(seq, int):
                index.faults.setdefault(seq, []).append(entry)
            if isinstance(entry.get("event_id"), str):
                index.event_ends.setdefault(entry["event_id"], entry)
        elif kind == "activation" and isinstance(entry.get("event_id"), str):
            index.activations[entry["event_id"]] = entry
        elif kind == "deactivation" and isinstance(entry.get("event_id"), str):
            index.deactivations[entry["event_id"]] = entry
        elif kind == "boot":
            index.boots.append(n)
        elif kind == "receipt":
            _index_receipt(report, index, entry, device_key_hex)
    return index


def _index_receipt(report: StorageReport, index: _Index, entry: dict, device_key_hex: str) -> None:
    try:
        segs, audit = check_receipt(entry.get("receipt"), device_key_hex)
    except ReceiptError as exc:
        report.problem(report.audit.file_of(entry["n"]), f"entry {entry['n']}: receipt does not verify ({exc})")
        return
    # The newest receipt vouches for the longest prefix of the history.
    if segs is not None and (index.receipt_segments is None or segs[0] >= index.receipt_segments[0]):
        index.receipt_segments = segs
    if audit is not None and (index.receipt_audit is None or audit[0] >= index.receipt_audit[0]):
        index.receipt_audit = audit
    index.receipt_entry = entry["n"]


def _entry(e: dict) -> str:
    return f"audit entry {e['n']} ({e['type']})"


def _has_checkpoint(seg: Segment, chunks: object, digest: object) -> bool:
    return any(cp.chunk_count == chunks and cp.hash.hex() == digest for cp in seg.report.checkpoints)


def _span(low: int, high: int, what: str) -> str:
    return f"{what} {low}" if low == high else f"{what} {low}–{high}"


def check_custody(report: StorageReport, unauthenticated: set[int], device_key_hex: str) -> None:
    audit: AuditReport = report.audit
    segs = report.segments
    index = _index(report, device_key_hex)
    if segs and audit.first_n is None and not report.problems:
        report.problem(AUDIT, "the audit log is missing or empty while segments remain")
    by_seq = {s.seq: s for s in segs}
    explained: set[int] = set()   # absent or unauthenticated numbers that an entry explains
    _check_chain_start(report, index, segs)
    _check_chain(report, index, segs, unauthenticated, explained)
    _check_events(report, index)
    _check_cut_segments(report, index, segs)
    _check_audit_covers_segments(report, segs)
    _check_audit_names(report, index, by_seq)
    _check_audit_start(report, index)
    _check_stray_files(report, index, segs, unauthenticated - explained)
    for what, why in audit.elsewhere:
        report.gap(GAP_BEFORE_SET, what, why)


def _receipt_covers_segments(index: _Index, prev: dict) -> bool:
    got = index.receipt_segments
    if got is None or got[0] < prev["seq"]:
        return False
    return got[0] > prev["seq"] or (got[1] == prev["hash"] and got[2] == prev["chunks"])


def _check_chain_start(report: StorageReport, index: _Index, segs: list[Segment]) -> None:
    if not segs or segs[0].header["prev"] is None:
        return
    first = segs[0]
    prev = first.header["prev"]
    if prev["seq"] >= first.seq:
        report.problem(first.name, f"names segment {prev['seq']} as its predecessor (replayed or reordered)")
        return
    what = _span(1, first.seq - 1, "segments") if first.seq > 1 else "earlier segments"
    if _receipt_covers_segments(index, prev):
        report.gap(GAP_RECEIPT, what, f"receipt in audit entry {index.receipt_entry}")
        return
    change = next((e for e in index.card_changes if e["card_change"].get("resumes_after", {}).get("seq")
                   == prev["seq"]), None)
    report.gap(GAP_BEFORE_SET, what, f"offloaded or on another card ({_entry(change)})" if change else "")


def _absent_explained(index: _Index, seq: int) -> dict | None:
    rec = index.recoveries.get(seq)
    if rec is not None and rec.get("found") in ("absent", "unauthenticated"):
        return rec
    for fault in index.faults.get(seq, []):
        if fault.get("chunks") is None:
            return fault
    return None


def _check_chain(report, index, segs, unauthenticated, explained) -> None:
    for p, q in zip(segs, segs[1:]):
        prev = q.header["prev"]
        if prev is None:
            report.problem(q.name, f"claims to be the device's first segment, but segment {p.seq} precedes it")
            continue
        if prev["seq"] != p.seq:
            change = next((e for e in index.card_changes
                           if card_change_covers(e["card_change"], "seq", p.seq, prev["seq"])), None)
            if change is not None and p.seq < prev["seq"] < q.seq:
                # The device wrote segments p+1 … prev to another card in between.
                report.gap(GAP_BEFORE_SET, _span(p.seq + 1, prev["seq"], "segments"),
                           f"on another card ({_entry(change)})")
                _explain_numbers(report, index, prev["seq"] + 1, q, unauthenticated, explained)
            elif p.seq < prev["seq"] < q.seq:
                report.problem(q.name, f"follows segment {prev['seq']}, which is missing (deleted)")
            else:
                report.problem(q.name, f"does not follow segment {p.seq}: reordered, replayed or spliced")
            continue
        last = p.report.last
        if prev["hash"] == last.hash.hex() and prev["chunks"] == last.chunk_count:
            pass
        elif _has_checkpoint(p, prev["chunks"], prev["hash"]) and any(
                f.get("chunks") == prev["chunks"] and f.get("hash") == prev["hash"]
                for f in index.faults.get(p.seq, [])):
            pass   # a fault hid from the device that more of the segment reached the card
        else:
            report.problem(q.name, f"does not chain to segment {p.seq} (hash mismatch: spliced or altered)")
            continue
        _explain_numbers(report, index, p.seq + 1, q, unauthenticated, explained)


def _explain_numbers(report, index, low: int, q: Segment, unauthenticated, explained) -> None:
    """Segment numbers low … q.seq−1 hold nothing authenticated: each needs a reason."""
    for seq in range(low, q.seq):
        why = _absent_explained(index, seq)
        if why is not None:
            explained.add(seq)
            kind = GAP_POWER_LOSS if why["type"] == "recovery" else GAP_STORAGE_FAULT
            report.gap(kind, f"segment {seq} (nothing recorded)", _entry(why))
        elif seq in unauthenticated and q.header["version"] == 1:
            explained.add(seq)      # firmware 0.1 named no such file in its log
            report.gap(GAP_POWER_LOSS, f"segment {seq} (cut before its header was signed)")
        else:
            report.problem(q.name, f"segment {seq} is missing (deleted)" if seq not in unauthenticated else
                           f"segment {seq} holds nothing authenticated and no entry explains it")
            explained.add(seq)


_EVENT_CONSTANTS = ("device_id", "event_origin_utc_us", "event_origin_monotonic_us")


def _check_identity(report: StorageReport) -> None:
    """One device, one name; an event's segments agree on its origin (§6.4)."""
    names = {s.header["device_id"] for s in report.segments}
    names |= {e.get("device_id") for e in report.audit.entries}
    if len(names) > 1:
        report.problem(AUDIT, f"the set names the device {len(names)} ways: {sorted(map(str, names))[:3]}")
    for seg in report.segments:
        h = seg.header
        if h["created_utc_us"] != h["event_origin_utc_us"] + h["media_start_us"]:
            report.problem(seg.name, "created_utc_us is not event_origin_utc_us + media_start_us")
    for event_id, segs in report.events().items():
        first = segs[0].header
        for seg in segs[1:]:
            if any(seg.header[k] != first[k] for k in _EVENT_CONSTANTS):
                report.problem(seg.name, f"event {event_id[:8]}: device or origin differs from its first segment")


def _check_stray_files(report, index, segs, stray: set[int]) -> None:
    """Files with nothing authenticated outside the chain (§6.2): a segment whose
    header never became durable. Named by an entry, or the device's next number with
    no boot since; anything else is an unexplained file."""
    newest = segs[-1] if segs else None
    for seq in sorted(stray):
        name = f"seg-{seq:010d}.bwc"
        why = _absent_explained(index, seq)
        if why is not None:
            kind = GAP_POWER_LOSS if why["type"] == "recovery" else GAP_STORAGE_FAULT
            report.gap(kind, f"segment {seq} (nothing recorded)", _entry(why))
        elif (newest is None or seq == newest.seq + 1) and (newest is None or not _boot_after(index, newest)) \
                and seq == max(stray):
            report.gap(GAP_POWER_LOSS, f"segment {seq} (cut before its header was signed)",
                       "the set ends here; no later boot", name)
        else:
            report.problem(name, "holds nothing authenticated, and no entry explains it")


def _check_events(report: StorageReport, index: _Index) -> None:
    _check_identity(report)
    first_seq = report.segments[0].seq if report.segments else None
    for event_id, segs in report.events().items():
        start = segs[0].header["event_segment"]
        if start != 0 and segs[0].seq != first_seq:
            report.problem(segs[0].name, f"event {event_id[:8]}: its first segments are missing")
        for offset, seg in enumerate(segs):
            if seg.header["event_segment"] != start + offset:
                report.problem(seg.name, f"event {event_id[:8]}: segment {start + offset} of the event "
                                         f"is missing or out of order")
                break
            if offset == 0:
                continue
            before = segs[offset - 1]
            if before.report.outcome != AUTHENTIC:
                report.problem(before.name, f"segment {before.seq} is cut short but the event continues "
                                            f"in segment {seg.seq}")
            elif seg.header["media_start_us"] != before.report.last.media_end_us:
                report.problem(seg.name, f"media time does not continue from segment {before.seq}")


def _boot_after(index: _Index, seg: Segment) -> bool:
    opened = seg.header.get("audit_n")
    return isinstance(opened, int) and any(n >= opened for n in index.boots)


def _check_cut_segments(report: StorageReport, index: _Index, segs: list[Segment]) -> None:
    newest = segs[-1].seq if segs else None
    for seg in segs:
        if seg.report.outcome == AUTHENTIC:
            continue
        last = seg.report.last
        what = f"segment {seg.seq} after chunk {last.chunk_count}"
        rec = index.recoveries.get(seg.seq)
        if rec is not None and "found" not in rec and rec.get("chunks") == last.chunk_count:
            # Firmware 0.1's recovery entry (format v1): seq and chunks only.
            report.gap(GAP_POWER_LOSS, what, _entry(rec), seg.name)
            continue
        if rec is not None and rec.get("found") in ("cut", "closed"):
            if rec.get("found") == "cut" and rec.get("chunks") == last.chunk_count \
                    and rec.get("hash") == last.hash.hex():
                report.gap(GAP_POWER_LOSS, what, _entry(rec), seg.name)
            else:
                report.problem(seg.name, f"is shorter than {_entry(rec)} says "
                                         f"({rec.get('chunks')} chunks at boot, {last.chunk_count} now)")
            continue
        faults = [f for f in index.faults.get(seg.seq, []) if f.get("chunks") is not None]
        if faults:
            fault = faults[0]
            if _has_checkpoint(seg, fault.get("chunks"), fault.get("hash")):
                report.gap(GAP_STORAGE_FAULT, what, _entry(fault), seg.name)
            else:
                report.problem(seg.name, f"is shorter than {_entry(fault)} says")
            continue
        if seg.seq == newest and not _boot_after(index, seg):
            # The set ends in this cut: the device has not booted since (or that boot is
            # on another card).
            report.gap(GAP_POWER_LOSS, what, "the set ends here; no later boot", seg.name)
        else:
            report.problem(seg.name, "is cut short, and no recovery or fault entry explains it")


def _check_audit_covers_segments(report: StorageReport, segs: list[Segment]) -> None:
    last_n = report.audit.last_n
    for seg in segs:
        opened = seg.header.get("audit_n")     # absent in format v1
        if isinstance(opened, int) and opened > 0 and (last_n is None or last_n < opened - 1):
            report.problem(AUDIT, f"the audit log ends before segment {seg.seq} was recorded "
                                  f"(entries from {last_n + 1 if last_n is not None else 0} are missing: cut)")
            return


def _covered_by_audit(report: StorageReport, seg: Segment) -> bool:
    """True if the audit entries written while this segment was open are in the set."""
    opened = seg.header.get("audit_n")
    first_n = report.audit.first_n
    return first_n is not None and (not isinstance(opened, int) or first_n <= opened)


def _receipt_covers(seq: object, index: _Index) -> bool:
    """A segment the audit log names may be absent only if a receipt covers it: an
    entry in the set vouches that the segment existed (repro 4 of issue 5)."""
    return isinstance(seq, int) and index.receipt_segments is not None and seq <= index.receipt_segments[0]


def _check_audit_names(report, index, by_seq) -> None:
    events = report.events()
    for event_id, segs in events.items():
        first = segs[0]
        if first.header["event_segment"] != 0 or not _covered_by_audit(report, first):
            continue
        act = index.activations.get(event_id)
        if act is None:
            if first.report.last.chunk_count == 0:
                report.gap(GAP_POWER_LOSS, f"event {event_id[:8]} (nothing recorded)",
                           "power was lost or storage failed as it started", first.name)
            else:
                report.problem(first.name, f"event {event_id[:8]} has no activation in the audit log")
        end = index.deactivations.get(event_id)
        # A recovery or fault entry ends the event if it names the event, or (format v1
        # recovery entries name no event) one of its segments.
        ended = event_id in index.event_ends or any(s.seq in index.recoveries or s.seq in index.faults
                                                    for s in segs)
        if end is None and act is not None and not ended:
            last = segs[-1]
            if last.seq != max(by_seq) or _boot_after(index, last):
                report.problem(last.name, f"event {event_id[:8]} has no stop entry, and no recovery or "
                                          f"fault entry explains why")
            elif last.report.outcome == AUTHENTIC:
                report.gap(GAP_POWER_LOSS, f"event {event_id[:8]} stop entry",
                           "the set ends here; no later boot", last.name)
    for entry in report.audit.entries:
        kind = entry.get("type")
        seq_name = {"activation": "first_seq", "deactivation": "last_seq"}.get(kind)
        if seq_name is not None:
            seq = entry.get(seq_name)
            if _receipt_covers(seq, index):
                continue
            seg = by_seq.get(seq)
            if seg is None or seg.header["event_id"] != entry.get("event_id"):
                report.problem(report.audit.file_of(entry["n"]),
                               f"entry {entry['n']}: the event's segment {seq} is missing")
            elif kind == "deactivation":
                segs = events.get(entry.get("event_id"), [])
                if segs[-1] is not seg or seg.report.outcome != AUTHENTIC \
                        or seg.report.last.hash.hex() != entry.get("last_hash"):
                    report.problem(seg.name, "last segment of the event does not match the audit log")
        elif kind in ("recovery", "fault") and isinstance(entry.get("seq"), int) \
                and entry.get("chunks") is not None:
            seq = entry["seq"]
            if not _receipt_covers(seq, index) and seq not in by_seq:
                report.problem(report.audit.file_of(entry["n"]),
                               f"{_entry(entry)} names segment {seq} with {entry.get('chunks')} "
                               f"chunks, which is missing (deleted)")
            elif kind == "recovery" and entry.get("found") == "closed" and seq in by_seq:
                seg = by_seq[seq]
                if seg.report.outcome != AUTHENTIC or seg.report.last.hash.hex() != entry.get("hash"):
                    report.problem(seg.name, f"does not match {_entry(entry)}")


def _check_audit_start(report: StorageReport, index: _Index) -> None:
    audit = report.audit
    if audit.first_n is None or audit.first_n == 0:
        return
    what = _span(0, audit.first_n - 1, "audit entries")
    got = index.receipt_audit
    if got is not None and (got[0] > audit.first_n - 1
                            or (got[0] == audit.first_n - 1 and got[1] == audit.first_prev)):
        report.gap(GAP_RECEIPT, what, f"receipt in audit entry {index.receipt_entry}")
    else:
        report.gap(GAP_BEFORE_SET, what)
