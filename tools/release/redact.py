"""`bwc redact`: an exported event and a redaction plan -> a release copy and its signed
release record (docs/release.md).

The release is written only outside evidence storage, under names that cannot pass for an
export's (`<stem>.release.mp4`, `<stem>.release.json`), owner-only and all or nothing
(tools/staging.py) like an export.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone

from nacl.signing import SigningKey

from tools.release import context
from tools.release.cuts import CUT_MARKER_S
from tools.release.tracking import tracker_version
from tools.release.face_list import FaceListError
from tools.release.faces import FaceDetectionError, face_source, face_summary, faces_for_release
from tools.release.media import VIDEO_CRF, redact_media
from tools.release.files import sha256_file
from tools.release.plan import Plan, PlanError, check_against_event
from tools.release.record import record_bytes, sign_record
from tools.staging import Staging, make_out_dir, publish

RELEASE_SUFFIX = ".release"
EXPORT_FORMAT = "openbwc-export"


class RedactError(Exception):
    """Refused; nothing written."""


@dataclass(frozen=True)
class Original:
    mp4_path: str
    sidecar_path: str
    sidecar: dict

    @property
    def stem(self) -> str:
        return os.path.splitext(os.path.basename(self.mp4_path))[0]


@dataclass(frozen=True)
class Released:
    mp4_path: str
    record_path: str
    frames: int
    masked_frames: int
    frames_cut: int = 0
    tracks_lost_frames: int = 0


def load_original(mp4_path: str) -> Original:
    """An exported event: its MP4 and the sidecar beside it (the same name, .json)."""
    if not os.path.isfile(mp4_path):
        raise RedactError(f"{mp4_path}: no such file")
    sidecar_path = os.path.splitext(mp4_path)[0] + ".json"
    try:
        with open(sidecar_path, encoding="utf-8") as f:
            sidecar = json.load(f)
    except FileNotFoundError:
        raise RedactError(f"{mp4_path}: no export sidecar {os.path.basename(sidecar_path)} beside it") from None
    except (OSError, ValueError) as exc:
        raise RedactError(f"{sidecar_path}: not a readable export sidecar ({exc})") from None
    if not isinstance(sidecar, dict):
        raise RedactError(f"{sidecar_path}: not an export sidecar")
    if sidecar.get("format") == "openbwc-release-record" or mp4_path.endswith(RELEASE_SUFFIX + ".mp4"):
        raise RedactError(f"{mp4_path}: this is already a release copy; redact the export it was made from")
    if sidecar.get("format") != EXPORT_FORMAT:
        raise RedactError(f"{sidecar_path}: not a bwc export sidecar")
    for key in ("event_id", "device_id", "device_key", "media_s", "video", "segments", "verification"):
        if key not in sidecar:
            raise RedactError(f"{sidecar_path}: the sidecar has no {key!r}; export again with this version of bwc")
    return Original(mp4_path, sidecar_path, sidecar)


def inside_evidence_storage(path: str) -> str | None:
    """The evidence directory `path` is in (or is), if any: one holding segment files,
    audit files or a device's chain state."""
    from device.evidence.audit_lines import audit_file_number
    from device.evidence.format import seq_from_file_name
    here = os.path.realpath(path)
    while True:
        try:
            names = os.listdir(here)
        except OSError:
            names = []
        if "chain.json" in names or any(seq_from_file_name(n) is not None or audit_file_number(n) is not None
                                        for n in names):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def redact(original: Original, plan: Plan, plan_path: str, key: SigningKey, out_dir: str,
           cert_chain_pem: bytes | None = None) -> Released:
    """With `cert_chain_pem` (the release key's certificate first), the release carries a
    C2PA manifest (docs/release-credentials.md) naming the record by its SHA-256."""
    side = original.sidecar
    check_against_event(plan, float(side["media_s"]), int(side["video"]["width"]), int(side["video"]["height"]),
                        plan_path)
    if plan.cuts or plan.faces.enabled or any(r.track for r in plan.regions):
        _require_opencv(plan_path)
    credentials = _credentials_module() if cert_chain_pem is not None else None
    if cert_chain_pem is not None:
        try:    # before the long re-encode: a certificate for another key, or unfit to sign
            credentials.check_chain(cert_chain_pem, key)
        except credentials.CredentialsError as exc:
            raise RedactError(f"--cert: {exc}") from None
    storage = inside_evidence_storage(out_dir)
    if storage is not None:
        raise RedactError(f"{out_dir}: inside evidence storage ({storage}); a release copy is never written there")
    stem = original.stem + RELEASE_SUFFIX
    identity = _original_identity(original)
    # The faces before anything is written: a review list for another original is refused
    # with nothing made, and the detector's pass writes nothing.
    faces = _faces(original, identity["mp4_sha256"], plan, plan_path)
    created = make_out_dir(out_dir)
    try:
        return _write(original, plan, plan_path, key, out_dir, cert_chain_pem, credentials, identity, faces, stem)
    except BaseException:
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)   # ours, and nothing was published into it
        raise


def _write(original: Original, plan: Plan, plan_path: str, key: SigningKey, out_dir: str,
           cert_chain_pem: bytes | None, credentials, identity: dict, faces, stem: str) -> Released:
    side = original.sidecar
    for name in (stem + ".mp4", stem + ".json"):
        if os.path.exists(os.path.join(out_dir, name)):
            raise RedactError(f"{os.path.join(out_dir, name)} already exists; refusing to overwrite a release")
    with Staging(out_dir) as staging:
        mp4 = staging.new_file(stem + ".mp4")
        encoded = staging.new_file(stem + ".unsigned.mp4") if cert_chain_pem is not None else mp4
        try:
            result = redact_media(original.mp4_path, encoded, plan,
                                  faces=face_source(faces) if faces is not None else None)
        except FaceListError as exc:     # the list does not fit this video's frames
            raise RedactError(f"{plan_path}: [faces] {exc}") from None
        if faces is not None and result.frames != faces.frame_count:
            raise RedactError(f"{plan_path}: [faces] the face list has {faces.frame_count} frames, the video "
                              f"{result.frames}")
        body = {
            "release": {"mp4": stem + ".mp4", "created_utc": _utc_now(),
                        "encoder": {"video": f"libx264 crf {VIDEO_CRF}", "audio": "aac"},
                        "credentials": "c2pa" if cert_chain_pem is not None else None},
            "released_by": plan.released_by, "reason": plan.reason, "statement": plan.statement,
            "original": identity,
            "operations": _operations(plan, faces),
            "masks": result.masks,
            "audio_spans": [[a.start_s, a.end_s, a.mode] for a in plan.audio],
            "cuts": result.cuts,
            "context": context.timeline(side),
            "tool": _tool_version(),
        }
        raw = record_bytes(sign_record(key, body))
        path = staging.new_file(stem + ".json")
        with open(path, "wb") as f:
            f.write(raw)
        if cert_chain_pem is not None:
            os.unlink(mp4)     # embed writes the signed copy under the release's name, itself
            try:
                credentials.embed(encoded, mp4, original_mp4=original.mp4_path,
                                  record_sha256=hashlib.sha256(raw).hexdigest(), record_name=stem + ".json",
                                  actions=body["operations"], cert_chain_pem=cert_chain_pem, release_key=key,
                                  original_sha256=identity["mp4_sha256"], encoder=body["release"]["encoder"])
            except credentials.CredentialsError as exc:
                raise RedactError(f"content credentials: {exc}") from None
            staging.discard(encoded)
        published = publish(staging.files, out_dir)
    return Released(published[0], published[1], result.frames, len(result.masks), result.frames_cut,
                    result.frames_track_lost)


def _credentials_module():
    """C2PA comes with the release extra (c2pa-python), which a camera never installs."""
    try:
        from tools.release import credentials
    except ImportError:
        raise RedactError("--cert: content credentials need c2pa-python: pip install 'openbwc[release]'") from None
    return credentials


def _require_opencv(plan_path: str) -> None:
    """Tracking and the cut marker need OpenCV, an optional dependency (the camera never does)."""
    try:
        import cv2  # noqa: F401
    except ImportError:
        raise RedactError(f"{plan_path}: tracking and cuts need OpenCV: pip install 'openbwc[release]'") from None


def _original_identity(original: Original) -> dict:
    side = original.sidecar
    return {"device_id": side["device_id"], "device_key": side["device_key"], "event_id": side["event_id"],
            "origin_utc": side.get("origin_utc"), "media_s": side["media_s"],
            "mp4": os.path.basename(original.mp4_path), "mp4_sha256": sha256_file(original.mp4_path),
            "sidecar_sha256": sha256_file(original.sidecar_path),
            "segments": [{k: s.get(k) for k in ("file", "seq", "chunks", "hash")} for s in side["segments"]],
            "verification": side["verification"].get("outcome")}


def _faces(original: Original, mp4_sha256: str, plan: Plan, plan_path: str):
    """The face list the release hides (a reviewed one named by the plan, relative to the
    plan's directory, or the detector's, run now), or None without [faces]."""
    if not plan.faces.enabled:
        return None
    review = plan.faces.review_file
    if review is not None and not os.path.isabs(review):
        review = os.path.join(os.path.dirname(os.path.abspath(plan_path)), review)
    try:
        return faces_for_release(original.mp4_path, mp4_sha256, review_file=review,
                                 review_required=plan.faces.review_required)
    except (FaceListError, FaceDetectionError) as exc:
        raise RedactError(f"{plan_path}: [faces] {exc}") from None


def _operations(plan: Plan, faces=None) -> list[dict]:
    ops = [{"op": "region", "start_s": r.start_s, "end_s": r.end_s, "box": list(r.box), "style": r.style,
            "track": r.track, "tracker": tracker_version() if r.track else None, "label": r.label}
           for r in plan.regions]
    if faces is not None:
        # One operation for the faces: what found them, how far a reviewer changed the list.
        ops.append({"op": "faces", "style": plan.faces.style, "margin_fraction": plan.faces.margin_fraction,
                    "review_file": os.path.basename(plan.faces.review_file) if plan.faces.review_file else None,
                    **face_summary(faces)})
    ops += [{"op": "audio", "start_s": a.start_s, "end_s": a.end_s, "mode": a.mode,
             "tone_hz": a.tone_hz if a.mode == "tone" else None, "label": a.label} for a in plan.audio]
    ops += [{"op": "cut", "start_s": c.start_s, "end_s": c.end_s, "reason": c.reason, "marker_s": CUT_MARKER_S}
            for c in sorted(plan.cuts, key=lambda c: c.start_s)]
    return ops


def _utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _tool_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return f"openbwc {version('openbwc')}"
    except PackageNotFoundError:
        return "openbwc (source checkout)"
