"""Byte layout of segment files (docs/format.md §3): constants, records, checkpoints, header."""
from __future__ import annotations

import base64
import binascii
import json
import struct
from dataclasses import dataclass

MAGIC = b"\x89OBWC\r\n\x1a"
VERSION = 2                      # what the writer writes
SUPPORTED_VERSIONS = (1, 2)      # what a reader accepts (v1 footage keeps verifying)
PREAMBLE = MAGIC + struct.pack(">H", VERSION)
PREAMBLE_BYTES = len(PREAMBLE)

TYPE_HEADER = ord("H")
TYPE_CHUNK = ord("C")
TYPE_CHECKPOINT = ord("K")
RECORD_HEAD = struct.Struct(">BI")  # type, length

HEADER_MAX_BYTES = 65_536
SS_OVERHEAD_BYTES = 17
# One kind byte plus up to 1 MiB of data per chunk: a one-second flush at
# 8 Mbit/s fits one chunk, so "chunk N" is roughly "second N".
CHUNK_PLAINTEXT_MAX = 1 + 1_048_576
CHUNK_BODY_MIN = SS_OVERHEAD_BYTES + 1
CHUNK_BODY_MAX = CHUNK_PLAINTEXT_MAX + SS_OVERHEAD_BYTES

CHUNK_KIND_MEDIA = b"m"
CHUNK_KIND_METADATA = b"j"

CHECKPOINT_MAGIC = b"OBWCCKPT"
_CHECKPOINT_SIGNED = struct.Struct(">8sQQQQ32sB")
CHECKPOINT_BODY_BYTES = _CHECKPOINT_SIGNED.size + 64
CHECKPOINT_RECORD_BYTES = RECORD_HEAD.size + CHECKPOINT_BODY_BYTES
FLAG_FINAL = 0x01
CHECKPOINT_DOMAIN = b"OBWC-v1-checkpoint\x00"

SEGMENT_FORMAT_NAME = "openbwc-segment"
PAYLOAD_TYPE = "video/mp4;fragmented"


def segment_file_name(seq: int) -> str:
    return f"seg-{seq:010d}.bwc"


def seq_from_file_name(name: str) -> int | None:
    if len(name) == 18 and name.startswith("seg-") and name.endswith(".bwc") and name[4:14].isdigit():
        return int(name[4:14])
    return None


def record(record_type: int, body: bytes) -> bytes:
    return RECORD_HEAD.pack(record_type, len(body)) + body


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    chunk_count: int
    offset: int
    media_end_us: int
    hash: bytes
    final: bool
    signature: bytes = b""

    def signed_part(self) -> bytes:
        return _CHECKPOINT_SIGNED.pack(
            CHECKPOINT_MAGIC, self.seq, self.chunk_count, self.offset,
            max(0, self.media_end_us), self.hash, FLAG_FINAL if self.final else 0,
        )

    def message(self) -> bytes:
        return CHECKPOINT_DOMAIN + self.signed_part()

    def to_record(self) -> bytes:
        body = self.signed_part() + self.signature
        assert len(body) == CHECKPOINT_BODY_BYTES
        return record(TYPE_CHECKPOINT, body)


class CheckpointShapeError(ValueError):
    pass


def parse_checkpoint(body: bytes) -> Checkpoint:
    if len(body) != CHECKPOINT_BODY_BYTES:
        raise CheckpointShapeError(f"checkpoint is {len(body)} bytes, expected {CHECKPOINT_BODY_BYTES}")
    magic, seq, chunks, offset, media_end_us, digest, flags = _CHECKPOINT_SIGNED.unpack_from(body)
    if magic != CHECKPOINT_MAGIC:
        raise CheckpointShapeError("checkpoint magic is wrong")
    if flags & ~FLAG_FINAL:
        raise CheckpointShapeError(f"checkpoint has unknown flags {flags:#x}")
    return Checkpoint(seq, chunks, offset, media_end_us, digest, bool(flags & FLAG_FINAL),
                      body[_CHECKPOINT_SIGNED.size:])


def looks_like_final_checkpoint(record_bytes: bytes) -> bool:
    """True if these bytes are shaped like a final checkpoint record (§4 step 2)."""
    if len(record_bytes) != CHECKPOINT_RECORD_BYTES:
        return False
    rtype, length = RECORD_HEAD.unpack_from(record_bytes)
    body = record_bytes[RECORD_HEAD.size:]
    return (rtype == TYPE_CHECKPOINT and length == CHECKPOINT_BODY_BYTES
            and body.startswith(CHECKPOINT_MAGIC) and body[72] == FLAG_FINAL)


# Header members and the JSON types they must have (docs/format.md §3.2).
_HEADER_TYPES: dict[str, tuple[type, ...]] = {
    "format": (str,), "version": (int,), "device_id": (str,), "device_key": (str,),
    "firmware": (str,), "seq": (int,), "prev": (dict, type(None)), "event_id": (str,),
    "event_segment": (int,), "event_origin_utc_us": (int,), "event_origin_monotonic_us": (int,),
    "media_start_us": (int,), "created_utc_us": (int,), "video": (dict,),
    "audio": (dict, type(None)), "payload": (str,), "recipients": (list,),
    "stream_header": (str,), "chunk_plaintext_max": (int,),
}


class HeaderError(ValueError):
    pass


# Members a v2 header adds (docs/format.md §3.2).
_HEADER_TYPES_V2: dict[str, tuple[type, ...]] = {"audit_n": (int,)}
STREAM_HEADER_BYTES = 24
_HEX_DIGITS = frozenset("0123456789abcdef")


def encode_header(header: dict, version: int = VERSION) -> bytes:
    check_header(header, version)
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _no_duplicate_members(pairs: list[tuple[str, object]]) -> dict:
    # Two readers must never see different values in one signed header.
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise HeaderError("header repeats a member name")
    return dict(pairs)


def decode_header(body: bytes, version: int = VERSION) -> dict:
    try:
        header = json.loads(body.decode("utf-8"), object_pairs_hook=_no_duplicate_members)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HeaderError(f"header is not JSON: {exc}") from None
    except RecursionError:
        raise HeaderError("header is nested too deeply") from None
    except ValueError as exc:  # e.g. an integer too long to convert
        raise HeaderError(f"header is not valid JSON: {exc}") from None
    check_header(header, version)
    return header


def check_header(header: object, version: int = VERSION) -> None:
    if not isinstance(header, dict):
        raise HeaderError("header is not a JSON object")
    required = dict(_HEADER_TYPES, **_HEADER_TYPES_V2) if version >= 2 else _HEADER_TYPES
    for name, types in required.items():
        if name not in header:
            raise HeaderError(f"header lacks {name!r}")
        value = header[name]
        # bool is an int in Python; JSON true/false is never a valid number here.
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise HeaderError(f"header member {name!r} has the wrong type")
    if header["format"] != SEGMENT_FORMAT_NAME:
        raise HeaderError(f"header format is {header['format']!r}, expected {SEGMENT_FORMAT_NAME!r}")
    if header["version"] != version:
        raise HeaderError(f"header version {header['version']} does not match the preamble")
    if not _is_hex(header["device_key"], 64):
        raise HeaderError("header device_key must be 64 lowercase hex digits")
    if version >= 2 and not 0 <= header["audit_n"] < 2**62:
        raise HeaderError("header audit_n out of range")
    try:
        stream_header = base64.b64decode(header["stream_header"], validate=True)
    except (binascii.Error, ValueError):
        raise HeaderError("header stream_header is not base64") from None
    if len(stream_header) != STREAM_HEADER_BYTES:
        raise HeaderError(f"header stream_header must encode {STREAM_HEADER_BYTES} bytes")
    if not 1 <= header["seq"] < 10**10 or header["event_segment"] < 0:
        raise HeaderError("header seq/event_segment out of range")
    if not _is_hex(header["event_id"], 32):
        raise HeaderError("header event_id must be 32 lowercase hex digits")
    for name in ("event_origin_utc_us", "created_utc_us"):
        if not 0 <= header[name] < 2**62:
            raise HeaderError(f"header {name} out of range")
    if not header["recipients"]:
        raise HeaderError("header has no recipients")
    if header["chunk_plaintext_max"] != CHUNK_PLAINTEXT_MAX:
        raise HeaderError(f"header chunk_plaintext_max must be {CHUNK_PLAINTEXT_MAX}")
    prev = header["prev"]
    if prev is not None and not (
        _is_int(prev.get("seq")) and isinstance(prev.get("hash"), str) and _is_int(prev.get("chunks"))
    ):
        raise HeaderError("header 'prev' must be {seq, hash, chunks}")


def _is_hex(text: str, digits: int) -> bool:
    return len(text) == digits and set(text) <= _HEX_DIGITS


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
