"""Verifying a format-v1 storage directory (firmware 0.1): files, chain, events, audit (docs/format.md §6.1)."""
from __future__ import annotations

import os

from nacl.signing import VerifyKey

from device.evidence.audit_lines import LEGACY_AUDIT_FILE as AUDIT_FILE
from device.evidence.audit_verify import AuditReport, verify_audit
from device.evidence.format import seq_from_file_name
from device.evidence.segment_reader import AUTHENTIC, TRUNCATED, verify_segment_file
from device.evidence.storage_report import INTEGRITY_FAILURE, Segment, StorageReport

def verify_storage_v1(directory: str, device_key: VerifyKey) -> StorageReport:
    """Raises OSError if the directory cannot be read; everything else is reported."""
    report = StorageReport(format_versions=[1])
    names = sorted(os.listdir(directory))
    report.ignored = [n for n in names if n.startswith(".")]
    names = [n for n in names if not n.startswith(".")]
    torn_seqs: set[int] = set()
    for name in names:
        path = os.path.join(directory, name)
        if name == AUDIT_FILE:
            continue
        name_seq = seq_from_file_name(name)
        if name_seq is None or not os.path.isfile(path):
            report.problems.append((name, "unexpected file in evidence storage"))
            continue
        with open(path, "rb") as f:
            seg_report = verify_segment_file(f, device_key)
        report.files[name] = seg_report.outcome
        if not seg_report.ok:
            report.problems.append((name, seg_report.reason))
            continue
        if seg_report.header is not None and seg_report.header["seq"] != name_seq:
            report.problems.append((name, f"file name says segment {name_seq} but its signed header says "
                                          f"{seg_report.header['seq']} (renamed, replayed or duplicated)"))
            continue
        if seg_report.outcome == TRUNCATED:
            report.cut_short.append((name, seg_report.reason))
        if seg_report.authenticated:
            report.segments.append(Segment(name, path, seg_report))
        else:
            torn_seqs.add(name_seq)
    report.segments.sort(key=lambda s: s.seq)
    _check_chain(report, torn_seqs)
    _check_events(report)
    _check_audit(report, directory, device_key)
    if report.problems:
        report.outcome = INTEGRITY_FAILURE
    elif report.cut_short:
        report.outcome = TRUNCATED
    return report


def _check_chain(report: StorageReport, torn_seqs: set[int]) -> None:
    previous: Segment | None = None
    for seg in report.segments:
        prev = seg.header["prev"]
        if previous is None:
            if prev is not None:
                report.problems.append((seg.name, f"segment {prev['seq']} before it is missing"))
        elif prev is None or prev["seq"] != previous.seq:
            missing = f"segment {prev['seq']}" if prev else "its predecessor"
            report.problems.append((seg.name, f"does not follow segment {previous.seq}: {missing} "
                                              f"is missing, or segments were reordered"))
        else:
            last = previous.report.last
            if prev["hash"] != last.hash.hex() or prev["chunks"] != last.chunk_count:
                report.problems.append((seg.name, f"does not chain to segment {previous.seq} "
                                                  f"(hash mismatch: spliced or altered)"))
            gap = set(range(previous.seq + 1, seg.seq)) - torn_seqs
            if gap:
                report.problems.append((seg.name, f"segments {sorted(gap)} are missing"))
        previous = seg


def _check_events(report: StorageReport) -> None:
    for event_id, segs in report.events().items():
        for index, seg in enumerate(segs):
            if seg.header["event_segment"] != index:
                report.problems.append((seg.name, f"event {event_id[:8]}: segment {index} of the event "
                                                  f"is missing or out of order"))
                break
            if index == 0:
                continue
            before = segs[index - 1]
            if before.report.outcome != AUTHENTIC:
                # After a power cut the device boots into a new event, so only an
                # event's last segment can honestly be cut short.
                report.problems.append((before.name, f"segment {before.seq} is cut short but the "
                                                     f"event continues in segment {seg.seq}"))
                continue
            if seg.header["media_start_us"] != before.report.last.media_end_us:
                report.problems.append((seg.name, f"media time does not continue from segment {before.seq}"))


def _check_audit(report: StorageReport, directory: str, device_key: VerifyKey) -> None:
    path = os.path.join(directory, AUDIT_FILE)
    if not os.path.exists(path):
        if report.segments:
            report.problems.append((AUDIT_FILE, "audit log is missing"))
        return
    with open(path, "rb") as f:
        audit = verify_audit(f.read(), device_key)
    report.audit = audit
    report.files[AUDIT_FILE] = audit.outcome
    if not audit.ok:
        report.problems.append((AUDIT_FILE, audit.reason))
        return
    if audit.outcome == TRUNCATED:
        report.cut_short.append((AUDIT_FILE, audit.reason))
    by_seq = {seg.seq: seg for seg in report.segments}
    events = report.events()
    started: set[str] = set()
    stopped: set[str] = set()
    for entry in audit.entries:
        if entry["type"] == "activation":
            started.add(entry.get("event_id"))
            seg = by_seq.get(entry.get("first_seq"))
            if seg is None or seg.header["event_id"] != entry.get("event_id"):
                report.problems.append((AUDIT_FILE, f"entry {entry['n']}: event starts in segment "
                                                    f"{entry.get('first_seq')}, which is missing"))
        elif entry["type"] == "deactivation":
            stopped.add(entry.get("event_id"))
            seg = by_seq.get(entry.get("last_seq"))
            segs = events.get(entry.get("event_id"), [])
            if seg is None or not segs or segs[-1] is not seg:
                report.problems.append((AUDIT_FILE, f"entry {entry['n']}: event ends in segment "
                                                    f"{entry.get('last_seq')}, which is missing"))
            elif seg.report.outcome != AUTHENTIC or seg.report.last.hash.hex() != entry.get("last_hash"):
                report.problems.append((seg.name, "last segment of the event does not match the audit log"))
    recovered = {e.get("event_id") for e in audit.entries if e["type"] == "recovery"}
    newest_event = report.segments[-1].header["event_id"] if report.segments else None
    for event_id, segs in events.items():
        if event_id not in started:
            if event_id in recovered or (event_id == newest_event and event_id not in stopped):
                # Power failed between opening the event's first segment and logging
                # its activation: the boot after it (if any) names the event.
                report.cut_short.append((segs[0].name, f"event {event_id[:8]} has no activation entry: "
                                                       f"power was lost as it started"))
            else:
                report.problems.append((segs[0].name, f"event {event_id[:8]} has no activation in the audit log"))
        elif event_id not in stopped:
            report.cut_short.append((segs[-1].name, f"event {event_id[:8]} has no stop entry: "
                                                    f"recording was cut short"))
