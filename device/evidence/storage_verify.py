"""Verifying a set of one device's evidence: a card, several cards gathered, a case file
(docs/format.md §6). Public key only; every gap is named (VER-3).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from nacl.signing import VerifyKey

from device.evidence.audit_lines import LEGACY_AUDIT_FILE, audit_file_number
from device.evidence.audit_verify import FileRun, merge_audit, read_audit_file, read_legacy_file
from device.evidence.custody import check_custody
from device.evidence.format import seq_from_file_name
from device.evidence.segment_reader import SegmentReport, verify_segment_file
from device.evidence.storage_report import (  # noqa: F401 - re-exported for callers
    BEFORE_SET, INTEGRITY_FAILURE, TRUNCATED, Gap, Segment, StorageReport,
)
from device.evidence.storage_verify_v1 import verify_storage_v1

# Segment files are independent to verify, and hashlib and PyNaCl release the GIL while
# they hash and check signatures, so a thread per core reads them side by side.
VERIFY_THREADS = min(4, os.cpu_count() or 1)

# An audit file larger than this is not one a device wrote (a shift writes a few KiB).
AUDIT_FILE_MAX_BYTES = 64 * 1024 * 1024


def verify_storage(directory: str, device_key: VerifyKey) -> StorageReport:
    """Raises OSError if the directory cannot be read; everything else is reported."""
    names = sorted(os.listdir(directory))
    if _is_v1_set(directory, names):
        return verify_storage_v1(directory, device_key)
    report = StorageReport()
    report.ignored = [n for n in names if n.startswith(".")]
    names = [n for n in names if not n.startswith(".")]
    unauthenticated: set[int] = set()
    audit_runs = []
    versions: set[int] = set()
    segment_names = [n for n in names if audit_file_number(n) is None and seq_from_file_name(n) is not None
                     and os.path.isfile(os.path.join(directory, n))]
    with ThreadPoolExecutor(VERIFY_THREADS, thread_name_prefix="bwc-verify") as pool:
        # Results are taken in name order, so the report does not depend on thread timing.
        verified = dict(zip(segment_names, pool.map(lambda n: _verify_file(os.path.join(directory, n), device_key),
                                                    segment_names)))
    for name in names:
        path = os.path.join(directory, name)
        if audit_file_number(name) is not None and os.path.isfile(path):
            audit_runs.append(_read_audit(name, path, device_key))
            continue
        name_seq = seq_from_file_name(name)
        if name not in verified:
            report.problem(name, "unexpected file in evidence storage")
            continue
        seg_report = verified[name]
        report.files[name] = seg_report.outcome
        if not seg_report.ok:
            report.problem(name, seg_report.reason)
            continue
        if seg_report.header is not None and seg_report.header["seq"] != name_seq:
            report.problem(name, f"file name says segment {name_seq} but its signed header says "
                                 f"{seg_report.header['seq']} (renamed, replayed or duplicated)")
            continue
        if seg_report.authenticated:
            report.segments.append(Segment(name, path, seg_report))
            versions.add(seg_report.header["version"])
        else:
            unauthenticated.add(name_seq)
    report.segments.sort(key=lambda s: s.seq)
    report.format_versions = sorted(versions)
    report.audit = merge_audit(audit_runs)
    report.files.update(report.audit.files)
    report.problems.extend(report.audit.problems)
    report.cut_short.extend(report.audit.cut_short)
    check_custody(report, unauthenticated, bytes(device_key).hex())
    report.decide()
    return report


def _verify_file(path: str, device_key: VerifyKey) -> SegmentReport:
    with open(path, "rb") as f:
        return verify_segment_file(f, device_key)


def _read_audit(name: str, path: str, device_key: VerifyKey):
    if os.path.getsize(path) > AUDIT_FILE_MAX_BYTES:
        return FileRun(name, problem=f"{os.path.getsize(path)} bytes: far larger than any audit file")
    with open(path, "rb") as f:
        data = f.read()
    return read_legacy_file(data, device_key) if name == LEGACY_AUDIT_FILE else read_audit_file(name, data, device_key)


def _is_v1_set(directory: str, names: list[str]) -> bool:
    """Footage written by firmware 0.1 only: verified by the v1 rules (§6.1)."""
    if any(audit_file_number(n) not in (None, 0) for n in names):
        return False
    for name in names:
        if seq_from_file_name(name) is None:
            continue
        with open(os.path.join(directory, name), "rb") as f:
            preamble = f.read(10)
        if len(preamble) == 10 and preamble[8:10] != b"\x00\x01":
            return False
    return True
