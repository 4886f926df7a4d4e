"""Verifying audit logs with the device's public key (docs/format.md §5, §6).

A set of audit files (one card's, several cards' gathered together, or a case
file's extract) is merged by entry number: each file must be one unbroken run of
the chain, runs may overlap only with byte-identical lines, and together they must
cover one contiguous range of entry numbers. What lies before the first entry
present is *before this set*; a file that ends in part of a line was cut short by
a power cut or a storage fault, which a later entry (or the set's end) explains.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from nacl.signing import VerifyKey

from device.evidence.audit_lines import (
    ENTRY_TYPES, GENESIS, LEGACY_AUDIT_FILE, could_be_torn, line_hash, parse_line, split_lines,
)
from device.evidence.segment_reader import AUTHENTIC, SIGNATURE_FAILURE, STRUCTURE_FAILURE, TRUNCATED


@dataclass(slots=True)
class FileRun:
    """One audit file: its whole lines (n -> line bytes) and what follows them."""
    name: str
    lines: dict[int, bytes] = field(default_factory=dict)
    entries: dict[int, dict] = field(default_factory=dict)
    tail: bytes = b""              # bytes after the last newline: part of a line, or nothing
    problem: str | None = None
    torn_lines: int = 0            # v1: torn lines a recovery entry names


@dataclass(slots=True)
class AuditReport:
    outcome: str
    reason: str = ""
    entries: list[dict] = field(default_factory=list)   # by n, each once
    first_n: int | None = None
    last_n: int | None = None
    first_prev: str | None = None    # the `prev` of the first entry present
    problems: list[tuple[str, str]] = field(default_factory=list)
    cut_short: list[tuple[str, str]] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    torn_lines: int = 0
    line_hashes: dict[int, str] = field(default_factory=dict)   # n -> SHA256 of its line
    entry_files: dict[int, str] = field(default_factory=dict)   # n -> the (first) file holding it
    elsewhere: list[tuple[str, str]] = field(default_factory=list)  # (what, why): holes another card fills

    def file_of(self, n: int) -> str:
        return self.entry_files.get(n, "audit log")

    @property
    def ok(self) -> bool:
        return self.outcome in (AUTHENTIC, TRUNCATED)


def _entry_ok(entry: dict) -> bool:
    return (isinstance(entry.get("n"), int) and not isinstance(entry.get("n"), bool) and entry["n"] >= 0
            and isinstance(entry.get("prev"), str) and entry.get("type") in ENTRY_TYPES)


def read_audit_file(name: str, data: bytes, key: VerifyKey) -> FileRun:
    """One v2 audit file: every whole line must verify and continue the one before it."""
    run = FileRun(name)
    lines, tail = split_lines(data)
    previous: tuple[int, str] | None = None
    for number, line in enumerate(lines, start=1):
        entry = parse_line(line, key)
        if entry is None or not _entry_ok(entry):
            run.problem = f"line {number}: bad signature or not an entry"
            return run
        if previous is not None and (entry["n"] != previous[0] + 1 or entry["prev"] != previous[1]):
            run.problem = f"line {number}: breaks the hash chain (entry removed, inserted or reordered)"
            return run
        run.lines[entry["n"]], run.entries[entry["n"]] = line, entry
        previous = (entry["n"], line_hash(line))
    if tail:
        entry = parse_line(tail, key)
        if entry is not None and _entry_ok(entry) and (
                previous is None or (entry["n"] == previous[0] + 1 and entry["prev"] == previous[1])):
            run.lines[entry["n"]], run.entries[entry["n"]] = tail, entry   # whole, only its newline missing
        elif not could_be_torn(tail):
            run.problem = f"line {len(lines) + 1}: not an entry and not an entry cut short (altered)"
            return run
        run.tail = tail
    return run


def read_legacy_file(data: bytes, key: VerifyKey) -> FileRun:
    """Firmware 0.1's audit.log: torn lines may sit mid-file, each named by the
    recovery entry that follows them (docs/format.md §5.4)."""
    run = FileRun(LEGACY_AUDIT_FILE)
    lines, tail = split_lines(data)
    prev, expected_n = GENESIS, 0
    torn: list[tuple[int, bytes]] = []
    for number, line in enumerate(lines, start=1):
        entry = parse_line(line, key)
        if entry is None or not _entry_ok(entry):
            torn.append((number, line))
            continue
        if entry["n"] != expected_n or entry["prev"] != prev:
            run.problem = f"line {number}: breaks the hash chain (entry removed, inserted or reordered)"
            return run
        if torn:
            named = entry.get("torn_lines_sha256") if entry.get("type") == "recovery" else None
            if named != [line_hash(t) for _, t in torn]:
                run.problem = f"line {torn[0][0]}: bad signature or not an entry"
                return run
            run.torn_lines += len(torn)
            torn = []
        run.lines[entry["n"]], run.entries[entry["n"]] = line, entry
        prev, expected_n = line_hash(line), expected_n + 1
    if torn:
        run.problem = f"line {torn[0][0]}: bad signature or not an entry"
        return run
    if tail:
        entry = parse_line(tail, key)
        if entry is not None and _entry_ok(entry) and entry["n"] == expected_n and entry["prev"] == prev:
            run.lines[entry["n"]], run.entries[entry["n"]] = tail, entry
        elif not could_be_torn(tail):
            run.problem = f"line {len(lines) + 1}: not an entry and not an entry cut short (altered)"
            return run
        run.tail = tail
    return run


def merge_audit(runs: list[FileRun]) -> AuditReport:
    report = AuditReport(outcome=AUTHENTIC)
    lines: dict[int, bytes] = {}
    entries: dict[int, dict] = {}
    for run in runs:
        if run.problem:
            report.problems.append((run.name, run.problem))
            report.files[run.name] = STRUCTURE_FAILURE
            continue
        report.files[run.name] = TRUNCATED if run.tail else AUTHENTIC
        report.torn_lines += run.torn_lines
        for n, line in run.lines.items():
            if n in lines and lines[n] != line:
                report.problems.append((run.name, f"entry {n} differs from the entry {n} of another audit file "
                                                  f"(forked or spliced log)"))
                report.files[run.name] = SIGNATURE_FAILURE
                break
            lines[n], entries[n] = line, run.entries[n]
            report.entry_files.setdefault(n, run.name)
    if not lines:
        report.outcome = STRUCTURE_FAILURE if report.problems else AUTHENTIC
        _torn_only(runs, report)
        return _finish(report)
    report.first_n, report.last_n = min(lines), max(lines)
    for low, high in _missing_runs(lines, report.first_n, report.last_n):
        _explain_hole(low, high, entries.get(high + 1), report)
    for n in range(report.first_n + 1, report.last_n + 1):
        if n in lines and n - 1 in lines and entries[n]["prev"] != line_hash(lines[n - 1]):
            report.problems.append(("audit", f"entry {n} does not chain to entry {n - 1} (spliced)"))
            break
    first = entries[report.first_n]
    report.first_prev = first["prev"]
    if report.first_n == 0 and first["prev"] != GENESIS:
        report.problems.append(("audit", "entry 0 does not start the chain"))
    report.entries = [entries[n] for n in sorted(entries)]
    report.line_hashes = {n: line_hash(line) for n, line in lines.items()}
    _explain_torn_tails(runs, lines, entries, report)
    return _finish(report)


def _missing_runs(lines: dict, first: int, last: int) -> list[tuple[int, int]]:
    runs, low = [], None
    for n in range(first, last + 2):
        if n not in lines and n <= last:
            low = n if low is None else low
        elif low is not None:
            runs.append((low, n - 1))
            low = None
    return runs


def _explain_hole(low: int, high: int, after: dict, report: AuditReport) -> None:
    """Entries low..high are absent; the entry after them may say why (§6.3)."""
    what = f"audit entry {low}" if low == high else f"audit entries {low}–{high}"
    change = after.get("card_change")
    if isinstance(change, dict) and card_change_covers(change, "audit_n", low - 1, high):
        report.elsewhere.append((what, f"on another card (audit entry {high + 1})"))
        return
    named = after.get("unconfirmed_entry") if after["type"] == "recovery" else None
    if low == high and isinstance(named, dict) and named.get("n") == low and named.get("sha256") == after["prev"]:
        # Power was cut while this line was being written, and the next boot found
        # another card: the line may never have reached any card.
        report.cut_short.append(("audit", f"entry {low} may never have reached storage: power was lost as "
                                          f"it was written (explained by audit entry {low + 1})"))
        return
    report.problems.append(("audit log", f"{what} missing (removed from the log)"))


def card_change_covers(change: dict, key: str, held: int | None, resumes: int) -> bool:
    """True if a card_change member says the card held up to `held` and the device's
    history resumes after `resumes` (docs/format.md §5.3)."""
    found, after = change.get("found"), change.get("resumes_after")
    return (isinstance(found, dict) and isinstance(after, dict) and found.get(key) == held
            and after.get(key) == resumes)



def _file_order(name: str) -> int:
    from device.evidence.audit_lines import audit_file_number
    number = audit_file_number(name)
    return -1 if number is None else number


def _last_before(ordered: list[FileRun], run: FileRun) -> int | None:
    """The last entry of the nearest earlier file that has one (a file that holds only
    a torn tail continues the one before it)."""
    before = [r for r in ordered if _file_order(r.name) < _file_order(run.name) and r.lines]
    return max(before[-1].lines) if before else None


def _tail_is_whole(run: FileRun) -> bool:
    return bool(run.lines) and run.lines[max(run.lines)] == run.tail


def _torn_only(runs: list[FileRun], report: AuditReport) -> None:
    for run in runs:
        if run.tail and not run.problem:
            report.cut_short.append((run.name, "holds only part of an entry: cut short by power loss"))


def _explain_torn_tails(runs, lines, entries, report: AuditReport) -> None:
    ordered = sorted((r for r in runs if not r.problem), key=lambda r: _file_order(r.name))
    for run in runs:
        if run.problem or not run.tail:
            continue
        after = max(run.lines) if run.lines else _last_before(ordered, run)
        nxt = (after + 1) if after is not None else None
        if _tail_is_whole(run):
            # Only the newline is missing. Written again in another file after a fault?
            if sum(after in other.lines for other in runs if not other.problem) > 1:
                continue
        elif nxt is not None and nxt in lines and lines[nxt].startswith(run.tail):
            # The device wrote this line again in a later file (after a fault or a new card).
            report.torn_lines += 1
            continue
        if nxt is None:
            # No entry at all before it: only the device's very first line can be torn here.
            if 0 in lines and lines[0].startswith(run.tail):
                report.torn_lines += 1
            elif not lines:
                report.cut_short.append((run.name, "holds only part of an entry: cut short by power loss"))
            else:
                report.problems.append((run.name, "holds part of an entry that no other file explains"))
            continue
        if nxt > report.last_n:
            report.cut_short.append((run.name, f"ends in part of entry {nxt}: cut short by power loss"))
        elif nxt not in entries:
            continue   # a hole: reported as one already
        elif entries[nxt]["type"] in ("recovery", "fault"):
            what = "power loss" if entries[nxt]["type"] == "recovery" else "a storage fault"
            report.cut_short.append((run.name, f"ends in part of an entry: cut short by {what} "
                                               f"(explained by audit entry {nxt})"))
        else:
            report.problems.append((run.name, f"ends in part of an entry, but the log goes on at entry {nxt} "
                                              f"with no recovery or fault entry (cut)"))


def _finish(report: AuditReport) -> AuditReport:
    if report.problems:
        report.outcome = STRUCTURE_FAILURE
        report.reason = "; ".join(f"{f}: {r}" for f, r in report.problems[:3])
    elif report.cut_short:
        report.outcome = TRUNCATED
        report.reason = report.cut_short[0][1]
    return report


def _span(numbers: list[int]) -> str:
    return f"{numbers[0]}" if len(numbers) == 1 else f"{numbers[0]}–{numbers[-1]}"


def verify_audit(data: bytes, key: VerifyKey) -> AuditReport:
    """Firmware 0.1's single audit.log on its own (kept for v1 tools and tests)."""
    return merge_audit([read_legacy_file(data, key)])
