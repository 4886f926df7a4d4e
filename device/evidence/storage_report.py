"""What verifying a set of one device's evidence found (docs/format.md §6; `bwc verify --json`)."""
from __future__ import annotations

from dataclasses import dataclass, field

from device.evidence.audit_verify import AuditReport
from device.evidence.segment_reader import AUTHENTIC, SegmentReport

INTEGRITY_FAILURE = "integrity_failure"
TRUNCATED = "truncated"
BEFORE_SET = "before_set"
OVERALL_OUTCOMES = (AUTHENTIC, INTEGRITY_FAILURE, TRUNCATED, BEFORE_SET)

# Every gap in a device's history is exactly one of these (VER-3).
GAP_BEFORE_SET = "before_set"        # earlier than anything present: exit 4
GAP_RECEIPT = "receipt"              # covered by a signed custody receipt: exit 0
GAP_STORAGE_FAULT = "storage_fault"  # explained by a signed fault entry: exit 3
GAP_POWER_LOSS = "power_loss"        # explained by a recovery entry, or the set ends in the cut: exit 3
GAP_KINDS = (GAP_BEFORE_SET, GAP_RECEIPT, GAP_STORAGE_FAULT, GAP_POWER_LOSS)


@dataclass(slots=True)
class Segment:
    name: str
    path: str
    report: SegmentReport

    @property
    def seq(self) -> int:
        return self.report.header["seq"]

    @property
    def header(self) -> dict:
        return self.report.header


@dataclass(frozen=True, slots=True)
class Gap:
    kind: str
    what: str                       # e.g. "segments 1–4", "segment 7 after chunk 3"
    explained_by: str = ""          # e.g. "audit entry 12 (recovery)"

    def to_json(self) -> dict:
        return {"kind": self.kind, "what": self.what, "explained_by": self.explained_by}


@dataclass(slots=True)
class StorageReport:
    outcome: str = AUTHENTIC
    problems: list[tuple[str, str]] = field(default_factory=list)   # (file, reason): tampering
    cut_short: list[tuple[str, str]] = field(default_factory=list)  # (file, reason): media lost, explained
    gaps: list[Gap] = field(default_factory=list)                  # every gap that is not tampering
    segments: list[Segment] = field(default_factory=list)          # authenticated, by seq
    files: dict[str, str] = field(default_factory=dict)            # name -> outcome
    ignored: list[str] = field(default_factory=list)               # hidden files (e.g. .DS_Store)
    audit: AuditReport | None = None
    format_versions: list[int] = field(default_factory=list)

    def events(self) -> dict[str, list[Segment]]:
        grouped: dict[str, list[Segment]] = {}
        for seg in self.segments:
            grouped.setdefault(seg.header["event_id"], []).append(seg)
        return grouped

    def problem(self, file: str, reason: str) -> None:
        self.problems.append((file, reason))

    def gap(self, kind: str, what: str, explained_by: str = "", file: str | None = None) -> None:
        self.gaps.append(Gap(kind, what, explained_by))
        if kind in (GAP_STORAGE_FAULT, GAP_POWER_LOSS) and file is not None:
            self.cut_short.append((file, f"{what}: {explained_by}" if explained_by else what))

    def decide(self) -> None:
        if self.problems:
            self.outcome = INTEGRITY_FAILURE
        elif self.cut_short or any(g.kind in (GAP_STORAGE_FAULT, GAP_POWER_LOSS) for g in self.gaps):
            self.outcome = TRUNCATED
        elif any(g.kind == GAP_BEFORE_SET for g in self.gaps):
            self.outcome = BEFORE_SET
        else:
            self.outcome = AUTHENTIC

    def to_json(self) -> dict:
        return {
            "outcome": self.outcome,
            "problems": [{"file": f, "reason": r} for f, r in self.problems],
            "cut_short": [{"file": f, "reason": r} for f, r in self.cut_short],
            "gaps": [g.to_json() for g in self.gaps],
            "files": self.files,
            "ignored_hidden_files": self.ignored,
            "events": [
                {"event_id": event_id, "segments": [s.seq for s in segs],
                 "media_s": segs[-1].report.last.media_end_us / 1e6}
                for event_id, segs in self.events().items()
            ],
            "audit_entries": len(self.audit.entries) if self.audit else 0,
            # Every storage fault the device logged, even one that lost nothing.
            "faults": [{"n": e["n"], "kind": e.get("kind"), "errno": e.get("errno"), "stage": e.get("stage"),
                        "seq": e.get("seq"), "utc_us": e.get("utc_us")}
                       for e in (self.audit.entries if self.audit else []) if e.get("type") == "fault"],
            "audit_range": None if self.audit is None or self.audit.first_n is None
            else [self.audit.first_n, self.audit.last_n],
            "format_versions": self.format_versions,
        }
