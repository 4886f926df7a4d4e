"""Human-readable verification reports, and finding the device key a storage names."""
from __future__ import annotations

import os

from nacl.signing import VerifyKey

from device.evidence.format import seq_from_file_name
from device.evidence.segment_reader import read_header_unverified
from device.evidence.storage_verify import INTEGRITY_FAILURE, StorageReport
from tools.export import ExportError

_WORDS = {"authentic": "AUTHENTIC and complete",
          "truncated": "AUTHENTIC, but media was lost to power loss or a storage fault (each loss explained)",
          "before_set": "AUTHENTIC, but an earlier part of the device's history is not in this set",
          INTEGRITY_FAILURE: "INTEGRITY FAILURE"}
_GAP_WORDS = {"before_set": "before this set", "receipt": "accounted for by a receipt",
              "storage_fault": "lost to a storage fault", "power_loss": "cut short by power loss"}


def format_report(report: StorageReport) -> str:
    lines = []
    for name, outcome in sorted(report.files.items()):
        lines.append(f"  {outcome:<18} {name}")
    for name, reason in report.cut_short:
        lines.append(f"  cut short          {name}: {reason}")
    for fault in report.to_json()["faults"]:
        lines.append(f"  fault              audit entry {fault['n']}: {fault['kind']} {fault['errno'] or ''} "
                     f"while {fault['stage']} (segment {fault['seq']})".rstrip())
    for gap in report.gaps:
        if gap.kind in ("before_set", "receipt"):
            by = f" ({gap.explained_by})" if gap.explained_by else ""
            lines.append(f"  gap                {gap.what}: {_GAP_WORDS[gap.kind]}{by}")
    for name, reason in report.problems:
        lines.append(f"  FAILED             {name}: {reason}")
    for name in report.ignored:
        lines.append(f"  ignored            {name} (hidden file, not evidence)")
    events = report.events()
    audit = len(report.audit.entries) if report.audit else 0
    lines.append(f"Result: {_WORDS[report.outcome]} — {len(report.segments)} segment(s), "
                 f"{len(events)} event(s), {audit} audit entr{'y' if audit == 1 else 'ies'}")
    return "\n".join(lines)


def verify_exit_code(report: StorageReport) -> int:
    """`bwc verify`'s exit code for this report (docs/tools.md): 0 authentic and complete,
    1 integrity failure, 3 truncated (each loss explained), 4 before the set."""
    return {INTEGRITY_FAILURE: 1, "truncated": 3, "before_set": 4}.get(report.outcome, 0)


def storage_device_key(storage_dir: str) -> VerifyKey:
    """The device key the footage itself names (all segments must agree)."""
    found: set[str] = set()
    for name in sorted(os.listdir(storage_dir)):
        if seq_from_file_name(name) is None:
            continue
        with open(os.path.join(storage_dir, name), "rb") as f:
            header = read_header_unverified(f.read(70_000))
        if header is not None:
            found.add(header["device_key"])
    if not found:
        raise ExportError(f"{storage_dir} holds no readable segments", 2)
    if len(found) > 1:
        raise ExportError(f"{storage_dir} mixes footage from {len(found)} device keys; pass --device-pub", 1)
    return VerifyKey(bytes.fromhex(found.pop()))
