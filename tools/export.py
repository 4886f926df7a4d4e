"""`bwc export`: verify, decrypt with a custodian key, one MP4 + JSON sidecar per event (TOOL-2).

Per event: every intact event is exported whatever is wrong with the others; the rest
are listed with their reason (tools/exportability.py) on the terminal, in
`export-summary.json` and in every sidecar. Streaming: segments are decrypted chunk by
chunk straight into the remuxer (tools/plainstream.py), so memory stays flat however
long the footage is. Plaintext is owner-only and published all or nothing
(tools/staging.py).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from nacl.public import PrivateKey
from nacl.signing import VerifyKey

from device.evidence.decrypt import DecryptError, NotARecipient, unwrap_segment_key
from device.evidence.keys import key_id
from device.evidence.storage_verify import Segment, StorageReport, verify_storage
from tools import exportability as ex
from tools.staging import FILE_MODE, Interrupts, Staging, make_out_dir, publish

if TYPE_CHECKING:
    from tools import notice

SUMMARY_FILE = "export-summary.json"


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


@dataclass
class EventResult:
    """One event of the storage and what became of it."""
    event_id: str
    segments: list[Segment]
    stem: str
    refusal: ex.NotExported | None = None
    counts: dict[str, int] = field(default_factory=dict)
    metadata: list[dict] = field(default_factory=list)
    announcements: list[dict] = field(default_factory=list)

    @property
    def exported(self) -> bool:
        return self.refusal is None

    @property
    def media_s(self) -> float:
        return self.segments[-1].report.last.media_end_us / 1e6

    @property
    def origin_utc_us(self) -> int:
        return self.segments[0].header["event_origin_utc_us"]


@dataclass
class ExportResult:
    report: StorageReport
    events: list[EventResult]
    exported: list[ExportedEvent]
    summary_path: str
    exit_code: int

    @property
    def not_exported(self) -> list[EventResult]:
        return [e for e in self.events if not e.exported]


def _utc(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def export_storage(storage_dir: str, secret: PrivateKey, device_key: VerifyKey, out_dir: str,
                   device_key_pinned: bool, announce_dir: str | None = None) -> tuple[StorageReport, list[ExportedEvent]]:
    """export_events() for callers that only need the report and the exported events."""
    result = export_events(storage_dir, secret, device_key, out_dir, device_key_pinned, announce_dir)
    return result.report, result.exported


def export_events(storage_dir: str, secret: PrivateKey, device_key: VerifyKey, out_dir: str,
                  device_key_pinned: bool, announce_dir: str | None = None) -> ExportResult:
    """Raises ExportError (nothing written) for usage errors and for a storage with no
    authenticated event; otherwise exports what it can and says why not for the rest.
    `announce_dir`: the agency's announcement files, besides the shipped ones, so each
    logged cue can be looked for in the audio (tools/notice.py); ConfigError if unreadable."""
    # PyAV and numpy are imported here, not at the top: `bwc verify` imports this module
    # (tools/report.py) and must start light.
    from tools import notice
    known_assets = notice.KnownAssets(announce_dir)   # before anything is written
    report = verify_storage(storage_dir, device_key)
    if not report.segments:
        if report.problems:
            problems = "; ".join(f"{f}: {r}" for f, r in report.problems[:5])
            raise ExportError(f"verification failed, nothing exported ({problems})", 1)
        raise ExportError(f"{storage_dir} holds no recorded events", 2)
    storage_real, out_real = os.path.realpath(storage_dir), os.path.realpath(out_dir)
    if os.path.commonpath([storage_real, out_real]) == storage_real:
        raise ExportError("--out must not be inside the evidence storage: plaintext never goes on the card", 2)
    _require_recipient(report, secret, storage_dir)
    events = [_plan(report, event_id, segs, secret) for event_id, segs in report.events().items()]
    _refuse_clashes(out_dir, [e.stem + ext for e in events if e.exported for ext in (".mp4", ".json")]
                    + [SUMMARY_FILE])

    with Interrupts() as interrupts:
        created = make_out_dir(out_dir)
        try:
            with Staging(out_dir) as staging:
                code = _stage(events, report, secret, device_key, device_key_pinned, storage_dir, staging,
                              interrupts, known_assets)
                interrupts.check()  # the last point at which a signal stops the run
                try:
                    publish(staging.files, out_dir)
                except FileExistsError as exc:
                    raise ExportError(f"{exc.filename2 or exc.filename} already exists; "
                                      f"export into an empty directory", 2) from None
        except BaseException:
            # Staging and anything published are gone by now; remove the directory
            # only if this run made it and it is empty (never someone else's files).
            if created:
                _remove_empty_dir(out_dir)
            raise
    exported = [ExportedEvent(e.event_id, os.path.join(out_dir, e.stem + ".mp4"),
                              os.path.join(out_dir, e.stem + ".json"), e.media_s) for e in events if e.exported]
    return ExportResult(report, events, exported, os.path.join(out_dir, SUMMARY_FILE), code)


def _stage(events: list[EventResult], report: StorageReport, secret: PrivateKey, device_key: VerifyKey,
           pinned: bool, storage_dir: str, staging: Staging, interrupts: Interrupts,
           known_assets: notice.KnownAssets) -> int:
    """Every exportable event's MP4, then (once every outcome is known) the sidecars and
    the summary, into the staging directory; returns the run's exit code."""
    for event in events:
        if event.exported:
            interrupts.check()
            event.refusal = _export_media(event, secret, staging, interrupts, known_assets)
    code = ex.export_exit_code(report, [e.refusal for e in events if e.refusal])
    verification = report.to_json()
    entries = _event_entries(events)
    for event in events:
        if event.exported:
            staging.write_json(event.stem + ".json", _sidecar(event, report, verification, entries, pinned))
    staging.write_json(SUMMARY_FILE, _summary(storage_dir, secret, device_key, pinned, code, verification, entries))
    return code


def _require_recipient(report: StorageReport, secret: PrivateKey, storage_dir: str) -> None:
    """A key that opens none of the footage is a usage error: refuse before writing."""
    my_id = key_id(bytes(secret.public_key))
    ids = {r.get("key_id", "?") for seg in report.segments for r in seg.header["recipients"] if isinstance(r, dict)}
    if my_id not in ids:
        raise ExportError(f"this key ({my_id}) is not a custodian key for any event in {storage_dir}; it is "
                          f"encrypted to custodian key(s) {', '.join(sorted(ids))}. Nothing was exported.", 2)


def _plan(report: StorageReport, event_id: str, segs: list[Segment], secret: PrivateKey) -> EventResult:
    stem = f"event-{_utc(segs[0].header['event_origin_utc_us'])[:19].replace(':', '').replace('-', '')}Z-{event_id[:8]}"
    event = EventResult(event_id, segs, stem, ex.event_exportability(report, event_id, segs))
    if event.refusal is None:
        for seg in segs:
            try:
                unwrap_segment_key(seg.header, secret)
            except NotARecipient:
                ids = sorted({r.get("key_id", "?") for r in seg.header["recipients"] if isinstance(r, dict)})
                event.refusal = ex.NotExported(ex.NOT_A_RECIPIENT, f"{seg.name} is not encrypted to this key; "
                                                                   f"it is encrypted to {', '.join(ids)}")
                break
            except DecryptError as exc:
                event.refusal = ex.NotExported(ex.DECRYPTION_FAILURE, str(exc))
                break
    return event


def _remove_empty_dir(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass


def _refuse_clashes(out_dir: str, names: list[str]) -> None:
    for name in names:
        path = os.path.join(out_dir, name)
        if os.path.lexists(path):
            raise ExportError(f"{path} already exists; export into an empty directory", 2)


def _export_media(event: EventResult, secret: PrivateKey, staging: Staging,
                  interrupts: Interrupts, known_assets: notice.KnownAssets) -> ex.NotExported | None:
    """Decrypt and remux one event into the staging directory; the reason if it fails."""
    import av
    from tools import notice
    from tools.plainstream import SegmentMediaReader
    from tools.remux import Declined, MoovReserveTooSmall, RemuxError, expected_packets, remux_event
    first = event.segments[0].header
    path = staging.new_file(event.stem + ".mp4")
    metadata: list[dict] = []

    def readers():
        # One segment file open at a time; its metadata and the FINAL-tag check are
        # collected once the remuxer has read it to the end.
        for seg in event.segments:
            with SegmentMediaReader(seg.path, seg.report, secret, interrupts.check) as reader:
                yield reader
                reader.drain()
                reader.check()
                metadata.extend(reader.metadata)

    title = f"OpenBWC {first['device_id']} event {event.event_id}"
    sources = readers()
    refusal = None
    extra = [expected_packets(event.media_s, first["video"], first["audio"])]
    try:
        while True:
            try:
                counts = remux_event(sources, path, first["event_origin_utc_us"], title, *extra)
                break
            except (MoovReserveTooSmall, Declined) as exc:
                # More packets than the header's rates say: again, with FFmpeg's
                # faststart; media the direct join does not understand: with PyAV.
                extra = [] if isinstance(exc, MoovReserveTooSmall) else [extra[0], False]
                sources.close()
                metadata.clear()
                sources = readers()
        if not any(counts.values()):
            refusal = ex.NotExported(ex.EMPTY, "no media: the event holds no audio or video packet")
    except DecryptError as exc:
        refusal = ex.NotExported(ex.DECRYPTION_FAILURE, str(exc))
    except (RemuxError, av.error.FFmpegError) as exc:
        if isinstance(exc, OSError):
            raise  # the output disk, not the footage
        refusal = ex.NotExported(ex.UNREADABLE_MEDIA, str(exc))
    finally:
        sources.close()  # the open segment file, should the remuxer have stopped early
    if refusal is not None:
        staging.discard(path)
        return refusal
    os.chmod(path, FILE_MODE)  # FFmpeg reopened it by name; keep the mode explicit
    event.counts, event.metadata = counts, metadata
    # ANN-2/4: look for each logged notice in the audio just written (its audio track only).
    interrupts.check()
    event.announcements = notice.announcements(path, metadata, event.origin_utc_us, known_assets, _utc)
    return None


def _event_entries(events: list[EventResult]) -> list[dict]:
    """Every event of the storage and its outcome, as the summary and each sidecar list them."""
    return [{
        "event_id": e.event_id, "origin_utc": _utc(e.origin_utc_us), "media_s": e.media_s,
        "segments": [s.name for s in e.segments],
        "outcome": ex.EXPORTED if e.exported else e.refusal.code,
        "reason": None if e.exported else e.refusal.reason,
        "mp4": e.stem + ".mp4" if e.exported else None,
        "sidecar": e.stem + ".json" if e.exported else None,
    } for e in events]


def _summary(storage_dir, secret, device_key, pinned, code, verification, entries) -> dict:
    return {
        "format": "openbwc-export-summary", "version": 1,
        "storage": os.path.abspath(storage_dir), "exit_code": code,
        "device_key": bytes(device_key).hex(), "device_key_pinned": pinned,
        "custodian_key_id": key_id(bytes(secret.public_key)),
        "exported": sum(e["outcome"] == ex.EXPORTED for e in entries),
        "not_exported": sum(e["outcome"] != ex.EXPORTED for e in entries),
        "events": entries,
        "verification": verification,
    }


def _us(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def media_gaps(metadata: list[dict], origin_monotonic_us: int) -> list[dict]:
    """The sidecar's `media_gaps`: the `media_gap` records (docs/format.md §3.4) paired
    into spans per track, in seconds of the event's media (monotonic times minus the
    event's origin); `end_s` None when the track never came back in this event."""
    gaps, open_gaps = [], {}
    for record in metadata:
        track = record.get("track")
        start_us = _us(record.get("gap_start_monotonic_us"))
        if record.get("type") != "media_gap" or start_us is None or not isinstance(track, str):
            continue
        start_s = (start_us - origin_monotonic_us) / 1e6
        if record.get("phase") == "lost":
            if track not in open_gaps:
                open_gaps[track] = {"track": track, "start_s": start_s, "end_s": None, "duration_s": None}
                gaps.append(open_gaps[track])
        elif record.get("phase") == "back" and _us(record.get("gap_end_monotonic_us")) is not None:
            # A `back` carries the whole span; its `lost` may sit in a segment that is gone.
            end_us = record["gap_end_monotonic_us"]
            gap = open_gaps.pop(track, None)
            if gap is None:
                gap = {"track": track}
                gaps.append(gap)
            gap.update(start_s=start_s, end_s=(end_us - origin_monotonic_us) / 1e6,
                       duration_s=(end_us - start_us) / 1e6)
    return gaps


def _sidecar(event: EventResult, report: StorageReport, verification: dict, entries: list[dict],
             pinned: bool) -> dict:
    from device.config import FIRMWARE_BUILD_UTC_US  # device.config loads hal (and numpy): not for `bwc verify`
    first = event.segments[0].header
    metadata = event.metadata
    audit_entries = report.audit.entries if report.audit else []
    cut_short = {name for name, _ in report.cut_short}
    files = [{"file": seg.name, "seq": seg.seq, "outcome": seg.report.outcome,
              "reason": seg.report.reason, "chunks": seg.report.last.chunk_count,
              # The device-signed content hash of the last checkpoint: what a release
              # record names the original by (docs/release.md).
              "hash": seg.report.last.hash.hex(),
              "media_start_s": seg.header["media_start_us"] / 1e6,
              "media_end_s": seg.report.last.media_end_us / 1e6} for seg in event.segments]
    return {
        "format": "openbwc-export", "version": 1,
        "event_id": event.event_id, "device_id": first["device_id"], "firmware": first["firmware"],
        "device_key": first["device_key"], "device_key_pinned": pinned,
        "origin_utc": _utc(event.origin_utc_us), "origin_monotonic_us": first["event_origin_monotonic_us"],
        # FLT-4: a date before the firmware was built is a clock that was never set; the
        # order of everything (monotonic) still holds, the calendar date does not.
        "origin_utc_trusted": event.origin_utc_us >= FIRMWARE_BUILD_UTC_US,
        "media_s": event.media_s, "packets": event.counts,
        "video": first["video"], "audio": first["audio"],
        "activation": next((m for m in metadata if m.get("type") == "activation"), None),
        "markers": [m for m in metadata if m.get("type") == "marker"],
        "deactivation": next((m for m in metadata if m.get("type") == "deactivation"), None),
        "announcements": event.announcements,
        "media_gaps": media_gaps(metadata, first["event_origin_monotonic_us"]),
        "metadata": metadata,
        "segments": files,
        "audit": [e for e in audit_entries if e.get("event_id") in (event.event_id, None)],
        "verification": {
            # This event's own outcome; the storage's (which may be worse because of
            # other events) is under "storage".
            "outcome": "truncated" if any(f["outcome"] != "authentic" or f["file"] in cut_short
                                          for f in files) else "authentic",
            "storage": verification,
        },
        # The other events of this storage too, so a sidecar on its own says what else
        # was there and why it was not exported.
        "storage_events": entries,
    }
