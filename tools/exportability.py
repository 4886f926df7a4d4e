"""What `bwc export` may export, decided per event from the storage report alone.

This is the one place that reads the verifier's StorageReport beyond its list of
events, so when the verifier learns new gap classes only this module changes.
"""
from __future__ import annotations

from dataclasses import dataclass

from device.evidence.format import seq_from_file_name
from device.evidence.storage_verify import INTEGRITY_FAILURE, Segment, StorageReport

# Why an event was not exported (the `outcome` of a not-exported event in the summary).
EMPTY = "empty"                            # no media was signed
DAMAGED = "damaged"                        # a segment of it failed verification
MISSING_SEGMENTS = "missing_segments"      # a hole in its segments or its media time
NOT_A_RECIPIENT = "not_a_recipient"        # not encrypted to this custodian key
DECRYPTION_FAILURE = "decryption_failure"  # verified, but does not decrypt (§7)
UNREADABLE_MEDIA = "unreadable_media"      # decrypts, but is not a readable MP4
EXPORTED = "exported"

# Reasons that are evidence of tampering (or of a device so faulty its footage cannot
# be trusted): they make the export exit 1. The others exit 5.
TAMPERING = frozenset({DAMAGED, MISSING_SEGMENTS, DECRYPTION_FAILURE})

# Exit codes of `bwc export` (docs/tools.md).
EXIT_OK, EXIT_TAMPERED, EXIT_USAGE, EXIT_CUT_SHORT, EXIT_BEFORE_SET, EXIT_INCOMPLETE = 0, 1, 2, 3, 4, 5


@dataclass(frozen=True)
class NotExported:
    code: str     # one of the reasons above
    reason: str   # one line for a person


def event_exportability(report: StorageReport, event_id: str, segments: list[Segment]) -> NotExported | None:
    """None if the event's footage is intact as far as the report can tell, else why not.

    `segments` are the event's authenticated segments in seq order (report.events()).
    Problems the verifier attaches to the *link* into the event's first segment (a hole
    or splice before it) are about the storage's history, not this event, so they do
    not stop it: they already make the whole export exit 1.
    """
    first, last = segments[0], segments[-1]
    own = {s.name for s in segments}
    start_seq, end_seq = _audit_span(report, event_id, first.seq, last.seq)
    for name, outcome in sorted(report.files.items()):
        seq = seq_from_file_name(name)
        if seq is not None and start_seq <= seq <= end_seq and name not in own:
            reason = dict(report.problems).get(name, outcome)
            return NotExported(DAMAGED, f"{name} failed verification ({reason})")
    if first.header["event_segment"] != 0 or start_seq != first.seq:
        return NotExported(MISSING_SEGMENTS, f"its first segment(s), before {first.name}, are missing")
    for index, (before, seg) in enumerate(zip(segments, segments[1:]), start=1):
        if seg.header["event_segment"] != index:
            return NotExported(MISSING_SEGMENTS, f"segment {index} of the event is missing (before {seg.name})")
        if seg.header["media_start_us"] != before.report.last.media_end_us:
            return NotExported(MISSING_SEGMENTS, f"media time does not continue from {before.name} to {seg.name}")
    if end_seq != last.seq:
        return NotExported(MISSING_SEGMENTS, f"the audit log says the event ends in segment {end_seq}, "
                                             f"which is missing")
    if not _has_stop(report, event_id) and not _next_chains_to(report, last):
        return NotExported(MISSING_SEGMENTS, f"the segment after {last.name} is missing: "
                                             f"the event may continue there")
    exempt = first.name if not _links_to_predecessor(report, first) else None
    for name, reason in report.problems:
        if name in own and name != exempt:
            return NotExported(DAMAGED, f"{name}: {reason}")
    if all(s.report.last.chunk_count == 0 for s in segments):
        return NotExported(EMPTY, "no media: power was lost right after the event started, before its first flush")
    return None


def _audit_entries(report: StorageReport, event_id: str, entry_type: str) -> list[dict]:
    entries = report.audit.entries if report.audit else []
    return [e for e in entries if e.get("type") == entry_type and e.get("event_id") == event_id]


def _has_stop(report: StorageReport, event_id: str) -> bool:
    return bool(_audit_entries(report, event_id, "deactivation"))


def _audit_span(report: StorageReport, event_id: str, first_seq: int, last_seq: int) -> tuple[int, int]:
    """The event's first and last segment numbers as its signed audit entries name
    them, where they do (activation `first_seq`, deactivation `last_seq`)."""
    starts = [e.get("first_seq") for e in _audit_entries(report, event_id, "activation")]
    stops = [e.get("last_seq") for e in _audit_entries(report, event_id, "deactivation")]
    start = starts[0] if starts and isinstance(starts[0], int) else first_seq
    end = stops[-1] if stops and isinstance(stops[-1], int) else last_seq
    return min(start, first_seq), max(end, last_seq)


def _next_chains_to(report: StorageReport, last: Segment) -> bool:
    """An event cut short has no stop entry to name its end; then the next segment
    present, if any, must chain to this event's last one."""
    later = [s for s in report.segments if s.seq > last.seq]
    if not later:
        return True
    prev = later[0].header["prev"]
    return prev is not None and prev.get("seq") == last.seq


def _links_to_predecessor(report: StorageReport, seg: Segment) -> bool:
    """True if `seg` chains to the segment present just before it (or is the device's
    first segment), exactly as §6 step 2 asks."""
    earlier = [s for s in report.segments if s.seq < seg.seq]
    prev = seg.header["prev"]
    if not earlier:
        return prev is None
    before = earlier[-1].report.last
    return (prev is not None and prev.get("seq") == earlier[-1].seq and prev.get("hash") == before.hash.hex()
            and prev.get("chunks") == before.chunk_count)


def export_exit_code(report: StorageReport, not_exported: list[NotExported]) -> int:
    """The exit code for the run: tampering first, then events left out, then what the
    verifier says about the footage that was exported."""
    if report.outcome == INTEGRITY_FAILURE or any(n.code in TAMPERING for n in not_exported):
        return EXIT_TAMPERED
    if not_exported:
        return EXIT_INCOMPLETE
    if report.outcome == "authentic":
        return EXIT_OK
    if report.outcome == "before_set":
        return EXIT_BEFORE_SET
    # "truncated", and any outcome this exporter does not know yet: the verifier did
    # not call it tampering, but it did not say "complete" either.
    return EXIT_CUT_SHORT
