"""The signed release record (docs/release.md §4): what a release copy was made from, every
operation that made it, and who released it, signed with the releasing custodian's
Ed25519 key.

Signed like a custody receipt (device/evidence/receipt.py): a domain prefix, then the
canonical JSON of every member but `signature`, so no other OpenBWC signature can be
replayed as a release record's.
"""
from __future__ import annotations

import json

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from tools.release.files import read_bounded, unique_members

RECORD_FORMAT = "openbwc-release-record"
RECORD_VERSION = 1
RECORD_DOMAIN = b"OBWC-v1-release-record\x00"
RECORD_MAX_BYTES = 64 * 1024 * 1024     # masks of every frame of hours of footage fit well within
_MEMBERS = {"format", "version", "kind", "release", "released_by", "reason", "statement", "release_key",
            "original", "operations", "masks", "audio_spans", "cuts", "context", "tool"}


class RecordError(ValueError):
    """Not a release record, malformed, or its signature does not hold."""


def canonical(body: dict) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def sign_record(key: SigningKey, body: dict) -> dict:
    body = dict(body, format=RECORD_FORMAT, version=RECORD_VERSION, kind="release",
                release_key=bytes(key.verify_key).hex())
    unknown = set(body) - _MEMBERS
    if unknown:
        raise ValueError(f"unexpected release record members {sorted(unknown)}")
    return dict(body, signature=key.sign(RECORD_DOMAIN + canonical(body)).signature.hex())


def record_bytes(record: dict) -> bytes:
    """The file as written (its SHA-256 is what the C2PA manifest names)."""
    return json.dumps(record, indent=2, sort_keys=True, allow_nan=False).encode() + b"\n"


def read_record(path: str) -> dict:
    return parse_record(read_bounded(path, RECORD_MAX_BYTES, "a release record", RecordError), path)


def parse_record(raw: bytes, source: str) -> dict:
    try:
        record = json.loads(raw.decode("utf-8"), parse_constant=_no_constant, object_pairs_hook=unique_members)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise RecordError(f"{source}: not a JSON release record") from None
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        raise RecordError(f"{source}: not an OpenBWC release record")
    if record.get("version") != RECORD_VERSION or type(record.get("version")) is not int:   # 1.0 is not 1
        raise RecordError(f"{source}: release record version {record.get('version')!r} is not supported")
    if set(record) != _MEMBERS | {"signature"} or record["kind"] != "release":
        raise RecordError(f"{source}: unexpected or missing members")
    problem = (_shape_problem(record) or _masks_problem(record["masks"])
               or _spans_problem(record["audio_spans"]) or _cuts_problem(record["cuts"]))
    if problem:
        raise RecordError(f"{source}: {problem}")
    return record


def _count(value: object, least: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and least <= value <= 10**9


def _seconds(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 10**7


def _shape_problem(record: dict) -> str | None:
    """The members a verifier reads as objects, names and lists are those."""
    release, original = record["release"], record["original"]
    if not isinstance(release, dict) or not isinstance(release.get("mp4"), str) \
            or release.get("credentials", "absent") not in (None, "c2pa"):
        return "release must be an object naming its mp4 and its credentials (c2pa or null)"
    if not isinstance(original, dict) or not isinstance(original.get("mp4"), str) \
            or not isinstance(original.get("event_id"), str) or not isinstance(original.get("segments"), list):
        return "original must be an object with its mp4, event_id and segments"
    return None


def _masks_problem(masks: object) -> str | None:
    """What a verifier holds the release to must mean one thing: [index, pts_s, boxes] with
    whole-pixel boxes inside the first quadrant, in increasing frame order."""
    if not isinstance(masks, list):
        return "masks must be a list"
    last = -1
    for entry in masks:
        if not (isinstance(entry, list) and len(entry) == 3 and _count(entry[0]) and _seconds(entry[1])
                and isinstance(entry[2], list) and entry[0] > last):
            return "masks: an entry is not [frame_index, pts_s, boxes] in increasing frame order"
        last = entry[0]
        for box in entry[2]:
            if not (isinstance(box, list) and len(box) == 6 and all(_count(v) for v in box[:2])
                    and all(_count(v, 1) for v in box[2:4]) and box[4] in ("blur", "mask")
                    and box[5] in ("region", "face")):
                return f"masks: frame {entry[0]}: a box is not [x, y, w, h, style, source]"
    return None


def _spans_problem(spans: object) -> str | None:
    if not isinstance(spans, list):
        return "audio_spans must be a list"
    for span in spans:
        if not (isinstance(span, list) and len(span) == 3 and _seconds(span[0]) and _seconds(span[1])
                and span[0] < span[1] and span[2] in ("mute", "tone")):
            return "audio_spans: an entry is not [start_s, end_s, mode] with start_s < end_s"
    return None


_CUT_KEYS = {"start_s", "end_s", "reason", "removed_s", "marker_s", "offset_s"}


def _cuts_problem(cuts: object) -> str | None:
    """Each cut: the plan's span and reason, and where it lies in both files, in order."""
    if not isinstance(cuts, list):
        return "cuts must be a list"
    last_end = -1.0
    for cut in cuts:
        if not (isinstance(cut, dict) and set(cut) == _CUT_KEYS and _seconds(cut["start_s"])
                and _seconds(cut["end_s"]) and cut["start_s"] < cut["end_s"] and cut["start_s"] >= last_end
                and isinstance(cut["reason"], str) and cut["reason"].strip()
                and _pair(cut["removed_s"], strict=False) and _pair(cut["marker_s"], strict=True)
                and isinstance(cut["offset_s"], (int, float)) and not isinstance(cut["offset_s"], bool)
                and abs(cut["offset_s"]) <= 10**7):
            return "cuts: an entry is not {start_s, end_s, reason, removed_s, marker_s, offset_s} in order"
        last_end = cut["end_s"]
    return None


def _pair(value: object, strict: bool) -> bool:
    return (isinstance(value, list) and len(value) == 2 and all(_seconds(v) for v in value)
            and (value[0] < value[1] if strict else value[0] <= value[1]))


def check_signature(record: dict, release_key: VerifyKey, source: str) -> None:
    """Raises RecordError unless `record` is signed by `release_key`."""
    if record.get("release_key") != bytes(release_key).hex():
        raise RecordError(f"{source}: signed by another release key ({str(record.get('release_key'))[:16]}...)")
    signature = record.get("signature")
    body = {k: v for k, v in record.items() if k != "signature"}
    try:
        release_key.verify(RECORD_DOMAIN + canonical(body), bytes.fromhex(signature))
    except (BadSignatureError, ValueError, TypeError):
        raise RecordError(f"{source}: the release record's signature does not hold (altered or forged)") from None


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")
