"""`bwc export`: verify, decrypt with a custodian key, one MP4 + JSON sidecar per event (TOOL-2)."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone

from nacl.public import PrivateKey
from nacl.signing import VerifyKey

from device.evidence.decrypt import NotARecipient, decrypt_segment, unwrap_segment_key
from device.evidence.keys import key_id
from device.evidence.storage_verify import INTEGRITY_FAILURE, StorageReport, verify_storage
from tools.remux import remux_event


class ExportError(Exception):
    """Export refused; nothing was written. `exit_code` follows docs/tools.md."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class ExportedEvent:
    event_id: str
    mp4_path: str
    sidecar_path: str
    media_s: float


def _utc(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def export_storage(storage_dir: str, secret: PrivateKey, device_key: VerifyKey, out_dir: str,
                   device_key_pinned: bool) -> tuple[StorageReport, list[ExportedEvent]]:
    report = verify_storage(storage_dir, device_key)
    if report.outcome == INTEGRITY_FAILURE:
        problems = "; ".join(f"{f}: {r}" for f, r in report.problems[:5])
        raise ExportError(f"verification failed, nothing exported ({problems})", 1)
    if not report.segments:
        raise ExportError(f"{storage_dir} holds no recorded events", 2)
    # Check the key against every segment before writing anything.
    for seg in report.segments:
        try:
            unwrap_segment_key(seg.header, secret)
        except NotARecipient:
            ids = sorted({r.get("key_id", "?") for r in seg.header["recipients"] if isinstance(r, dict)})
            raise ExportError(f"this key ({key_id(bytes(secret.public_key))}) is not a custodian key for "
                              f"{seg.name}; it is encrypted to custodian key(s) {', '.join(ids)}. "
                              f"Nothing was exported.", 2) from None
    storage_real, out_real = os.path.realpath(storage_dir), os.path.realpath(out_dir)
    if os.path.commonpath([storage_real, out_real]) == storage_real:
        raise ExportError("--out must not be inside the evidence storage: plaintext never goes on the card", 2)
    created_out_dir = not os.path.exists(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    verification = report.to_json()
    audit_entries = report.audit.entries if report.audit else []
    staging = tempfile.mkdtemp(prefix=".export-", dir=out_dir)
    try:
        staged = [_export_event(event_id, segs, secret, staging, verification, audit_entries, device_key_pinned)
                  for event_id, segs in report.events().items()]
        exported = _publish(staged, out_dir)
    except BaseException:
        if created_out_dir:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report, exported


def _publish(staged: list[ExportedEvent], out_dir: str) -> list[ExportedEvent]:
    """Move every staged file into `out_dir`, all or none, never replacing a file."""
    published: list[str] = []
    try:
        for ev in staged:
            for path in (ev.mp4_path, ev.sidecar_path):
                target = os.path.join(out_dir, os.path.basename(path))
                try:
                    os.link(path, target)  # fails instead of overwriting
                except FileExistsError:
                    raise ExportError(f"{target} already exists; export into an empty directory", 2) from None
                published.append(target)
    except BaseException:
        for target in published:
            os.unlink(target)
        raise
    return [ExportedEvent(ev.event_id, os.path.join(out_dir, os.path.basename(ev.mp4_path)),
                          os.path.join(out_dir, os.path.basename(ev.sidecar_path)), ev.media_s)
            for ev in staged]


def _export_event(event_id, segs, secret, staging, verification, audit_entries, pinned) -> ExportedEvent:
    first = segs[0].header
    origin_utc_us = first["event_origin_utc_us"]
    stem = f"event-{_utc(origin_utc_us)[:19].replace(':', '').replace('-', '')}Z-{event_id[:8]}"
    parts, metadata, files = [], [], []
    for seg in segs:
        with open(seg.path, "rb") as f:
            plain = decrypt_segment(f.read(), seg.report, secret)
        parts.append(plain.media)
        metadata.extend(plain.metadata)
        files.append({"file": seg.name, "seq": seg.seq, "outcome": seg.report.outcome,
                      "reason": seg.report.reason, "chunks": seg.report.last.chunk_count,
                      "media_start_s": seg.header["media_start_us"] / 1e6,
                      "media_end_s": seg.report.last.media_end_us / 1e6})
    tmp_mp4 = os.path.join(staging, stem + ".mp4")
    counts = remux_event(parts, tmp_mp4, origin_utc_us, f"OpenBWC {first['device_id']} event {event_id}")
    media_s = segs[-1].report.last.media_end_us / 1e6
    sidecar = {
        "format": "openbwc-export", "version": 1,
        "event_id": event_id, "device_id": first["device_id"], "firmware": first["firmware"],
        "device_key": first["device_key"], "device_key_pinned": pinned,
        "origin_utc": _utc(origin_utc_us), "origin_monotonic_us": first["event_origin_monotonic_us"],
        "media_s": media_s, "packets": counts,
        "video": first["video"], "audio": first["audio"],
        "activation": next((m for m in metadata if m.get("type") == "activation"), None),
        "markers": [m for m in metadata if m.get("type") == "marker"],
        "deactivation": next((m for m in metadata if m.get("type") == "deactivation"), None),
        "metadata": metadata,
        "segments": files,
        "audit": [e for e in audit_entries if e.get("event_id") in (event_id, None)],
        "verification": {
            "outcome": "truncated" if any(f["outcome"] != "authentic" for f in files) else verification["outcome"],
            "storage": verification,
        },
    }
    tmp_json = os.path.join(staging, stem + ".json")
    with open(tmp_json, "w", encoding="utf-8") as f:
        json.dump(sidecar, f, indent=2, sort_keys=True)
    return ExportedEvent(event_id, tmp_mp4, tmp_json, media_s)
