"""`bwc verify-release`: a release copy checked against its original with public keys
(and, for evidence storage, the custodian key that decrypts it) — docs/release.md §5.

1. The release record beside the release is signed by the given release key.
2. The original is the one the record names: from evidence storage, the segments the
   device signed (their checkpoint hashes) are the record's; from an export, its MP4 and
   sidecar hash to the record's, and the sidecar names the given device key.
3. Both are decoded and compared outside the declared masks and spans (tools/release/compare.py).
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field

from nacl.signing import VerifyKey

from tools.release import cuts, declared
from tools.release.compare import Comparison, compare_audio, compare_video
from tools.release.plan import Cut
from tools.release.files import sha256_file
from tools.release.record import RecordError, check_signature, read_record

EXIT_HONEST, EXIT_INTEGRITY, EXIT_USAGE, EXIT_EXPORT_ONLY = 0, 1, 2, 3


class VerifyReleaseError(Exception):
    """Cannot be checked (usage, unreadable input); `exit_code` 2."""


@dataclass
class ReleaseReport:
    release_mp4: str
    record_path: str
    original: str = ""
    original_kind: str = ""                 # "storage" | "export"
    record_signature: str = "not checked"
    original_identity: str = "not checked"
    device_signatures: str = "not checked"
    credentials: str = "not checked"
    comparison: Comparison | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.problems or (self.comparison is not None and self.comparison.count):
            return EXIT_INTEGRITY
        return EXIT_HONEST if self.original_kind == "storage" else EXIT_EXPORT_ONLY


def verify_release(release_mp4: str, original: str, device_key: VerifyKey, release_key: VerifyKey,
                   custodian_key_path: str | None = None, trust_anchors_pem: bytes | None = None) -> ReleaseReport:
    if not os.path.isfile(release_mp4):
        raise VerifyReleaseError(f"{release_mp4}: no such file")
    record_path = os.path.splitext(release_mp4)[0] + ".json"
    report = ReleaseReport(release_mp4, record_path, original=original)
    if not os.path.isfile(record_path):
        raise VerifyReleaseError(f"{record_path}: no release record (it must be beside the release, as bwc redact "
                                 "wrote it)")
    try:
        record = read_record(record_path)
        check_signature(record, release_key, record_path)
        report.record_signature = "valid"
    except RecordError as exc:
        report.record_signature = "INVALID"
        report.problems.append(str(exc))
        return report     # nothing in an unsigned record can be held against the release
    if record["release"].get("mp4") != os.path.basename(release_mp4):
        report.problems.append(f"the record is for {record['release'].get('mp4')!r}, not this file")
    _check_credentials(release_mp4, record, record_path, release_key, trust_anchors_pem, report)
    if _holds_segments(original):
        with tempfile.TemporaryDirectory(prefix="bwc-verify-release-") as scratch:
            original_mp4 = _from_storage(original, device_key, custodian_key_path, record, report, scratch)
            if original_mp4 is not None:
                _compare(original_mp4, release_mp4, record, report)
    else:
        original_mp4 = _from_export(original, device_key, record, report)
        if original_mp4 is not None:
            _compare(original_mp4, release_mp4, record, report)
    return report


def _check_credentials(release_mp4: str, record: dict, record_path: str, release_key: VerifyKey,
                       anchors_pem: bytes | None, report: ReleaseReport) -> None:
    """The C2PA manifest the record says the release carries (docs/release-credentials.md):
    signed by the release key, naming this record and the original, declaring the record's
    operations, and, with anchors, under a certificate they issued."""
    if record["release"].get("credentials") != "c2pa":
        report.credentials = "none (the record declares none)"
        return
    try:
        from tools.release import credentials
    except ImportError:
        raise VerifyReleaseError("the release carries C2PA credentials; checking them needs c2pa-python: "
                                 "pip install 'openbwc[release]'") from None
    try:
        creds = credentials.read(release_mp4, anchors_pem)
    except credentials.CredentialsError as exc:
        report.credentials = "INVALID"
        report.problems.append(f"content credentials: {exc}")
        return
    problems = credentials.check(creds, bytes(release_key).hex(), sha256_file(record_path),
                                 original_sha256=record["original"].get("mp4_sha256"),
                                 operations=record["operations"])
    untrusted_only = anchors_pem is None and creds.validation_state == "Valid"
    if untrusted_only:     # no anchor given: the chain's trust is the one thing not asked
        problems = [p for p in problems if not p.startswith("C2PA manifest not trusted")]
    if problems:
        report.credentials = "INVALID"
        report.problems.extend(f"content credentials: {p}" for p in problems)
    elif untrusted_only:
        report.credentials = (f"valid C2PA manifest signed by the release key ({creds.signer_subject}); "
                              "the certificate's issuer not checked (give --trust-anchor)")
    else:
        report.credentials = f"valid C2PA manifest, trusted: {creds.signer_subject}"


def _compare(original_mp4: str, release_mp4: str, record: dict, report: ReleaseReport) -> None:
    report.comparison = comparison = Comparison()
    try:
        spans, time_base = _cut_spans(original_mp4, record, report)
        if spans is None:
            return
        compare_video(original_mp4, release_mp4, record["masks"], comparison, spans)
        compare_audio(original_mp4, release_mp4, record["audio_spans"], comparison, spans, time_base)
        if comparison.count == 0:     # every frame paired: do the masks follow from the operations?
            report.problems.extend(declared.problems(record, comparison.frame_times_s))
    except (OSError, ValueError, TypeError, IndexError) as exc:   # av.error.* are OSError/ValueError
        report.problems.append(f"the media cannot be compared ({exc})")
    if comparison.frames == 0:
        report.problems.append("the original has no video frames to compare")


def _cut_spans(original_mp4: str, record: dict, report: ReleaseReport):
    """The cut table recomputed from the record's cut operations and the original's frame
    timestamps (docs/release.md §5): the record's `cuts` must be exactly that."""
    import av
    declared = [op for op in record["operations"] if isinstance(op, dict) and op.get("op") == "cut"]
    with av.open(original_mp4) as c:
        stream = c.streams.video[0]
        time_base, rate = stream.time_base, stream.average_rate
        pts = sorted(p.pts for p in c.demux(stream) if p.pts is not None) if declared else []
    try:
        plan_cuts = tuple(Cut(float(op["start_s"]), float(op["end_s"]), str(op["reason"])) for op in declared)
        markers = {float(op["marker_s"]) for op in declared}
    except (KeyError, TypeError, ValueError):
        report.problems.append("the record's cut operations are malformed")
        return None, time_base
    if len(markers) > 1 or any(not 0 < m <= 60 for m in markers):
        report.problems.append("the record's cut markers are not one length of up to 60 s")
        return None, time_base
    if plan_cuts:
        try:    # the markers are drawn to be checked (tools/release/marker_check.py)
            import cv2  # noqa: F401
        except ImportError:
            raise VerifyReleaseError("the release has cuts; checking their markers needs OpenCV: "
                                     "pip install 'openbwc[release]'") from None
    spans = cuts.plan_cuts(plan_cuts, pts, time_base, cuts.frame_ticks(pts, time_base, rate),
                           markers.pop() if markers else cuts.CUT_MARKER_S)
    if cuts.record_entries(spans, time_base) != record["cuts"]:
        report.problems.append("the record's cuts are not where its cut operations put them on this original")
        return None, time_base
    return spans, time_base


def _from_export(original: str, device_key: VerifyKey, record: dict, report: ReleaseReport) -> str | None:
    report.original_kind = "export"
    named = record["original"]
    mp4 = os.path.join(original, named.get("mp4", "")) if os.path.isdir(original) else original
    if not os.path.isfile(mp4):
        raise VerifyReleaseError(f"{mp4}: no such file (the record's original is {named.get('mp4')!r})")
    sidecar = os.path.splitext(mp4)[0] + ".json"
    if not os.path.isfile(sidecar):
        raise VerifyReleaseError(f"{sidecar}: no export sidecar beside the original")
    mismatched = [what for what, path, key in (("MP4", mp4, "mp4_sha256"), ("sidecar", sidecar, "sidecar_sha256"))
                  if sha256_file(path) != named.get(key)]
    if mismatched:
        report.original_identity = "DIFFERENT"
        report.problems.append(f"the original's {' and '.join(mismatched)} is not the one the release record names")
        return None
    try:
        with open(sidecar, encoding="utf-8") as f:
            side = json.load(f)
    except (OSError, ValueError) as exc:
        raise VerifyReleaseError(f"{sidecar}: not readable ({exc})") from None
    if side.get("device_key") != bytes(device_key).hex():
        report.original_identity = "DIFFERENT"
        report.problems.append("the original was exported from another device's footage than --device-pub")
        return None
    report.original_identity = "matches the record"
    report.device_signatures = "not re-checked (the original is an export; give the evidence storage and --key)"
    return mp4


def _from_storage(storage: str, device_key: VerifyKey, key_path: str | None, record: dict,
                  report: ReleaseReport, scratch: str) -> str | None:
    from device.evidence.keys import read_custodian_secret
    from device.evidence.storage_verify import verify_storage
    from tools.export import ExportError, export_events
    report.original_kind = "storage"
    if key_path is None:
        raise VerifyReleaseError(f"{storage} is evidence storage: give --key, the custodian key that decrypts it")
    named = record["original"]
    events = verify_storage(storage, device_key).events()
    segments = events.get(named.get("event_id"))
    if not segments:
        report.original_identity = "NOT FOUND"
        report.problems.append(f"event {str(named.get('event_id'))[:8]} is not in {storage} (or not signed by "
                               "--device-pub)")
        return None
    signed = [{"file": s.name, "seq": s.seq, "chunks": s.report.last.chunk_count, "hash": s.report.last.hash.hex()}
              for s in segments if s.report.last is not None]
    if signed != named.get("segments"):
        report.original_identity = "DIFFERENT"
        report.problems.append("the device-signed segments of the event are not the ones the release record names")
        return None
    report.original_identity = "matches the record"
    report.device_signatures = "valid (every segment of the event)"
    try:
        result = export_events(storage, read_custodian_secret(key_path), device_key, os.path.join(scratch, "x"), True)
    except ExportError as exc:
        raise VerifyReleaseError(f"cannot decrypt the original: {exc}") from None
    for event in result.exported:
        if event.event_id == named["event_id"]:
            return event.mp4_path
    report.problems.append("the event could not be exported from the storage")
    return None


def _holds_segments(path: str) -> bool:
    from device.evidence.format import seq_from_file_name
    return os.path.isdir(path) and any(seq_from_file_name(n) is not None for n in os.listdir(path))
