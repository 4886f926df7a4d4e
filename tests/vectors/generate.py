"""Generate the evidence-format v1 test vectors (docs/format.md).

Usage: python tests/vectors/generate.py [OUT_DIR]      (default: this directory)

Writes one `<scenario>.vector` file per scenario. A vector file is age-testkit style:
ASCII header lines `key: value`, one blank line, then the raw segment file bytes.

    expect:          the verify outcome, one of the closed set of docs/format.md §4
                     (authentic, truncated, not_evidence, unsupported_version,
                     header_failure, wrong_device, signature_failure, structure_failure)
    device_pub:      hex Ed25519 public key to verify with (the expected device)
    custodian_key:   hex X25519 secret key of the custodian who tries to decrypt
    decrypt:         ok            - decrypting the authenticated chunks with custodian_key
                                     succeeds and yields payload_sha256
                     not_recipient - the segment is not encrypted to custodian_key
                     none          - nothing is authenticated (a failure outcome, or a
                                     file cut off before its header was signed), so there
                                     is nothing to decrypt
    chunks:          authenticated chunk count (authentic and truncated only): the
                     chunk_count of the last valid checkpoint
    payload_sha256:  SHA-256 (hex) of the concatenated data of the `m` (media) chunks among
                     the authenticated chunks, kind byte stripped (decrypt: ok only)
    comment:         what the vector is about

Keys are fixed: device Ed25519 seed bytes([1])*32; custodian A X25519 secret
bytes([2])*32; non-custodian B bytes([3])*32; second custodian C bytes([4])*32
(two_recipients*); another device seed bytes([5])*32 (wrong_device). Plaintext comes
from random.Random(seed) with fixed seeds, and every length and offset is fixed, so the
header lines above come out the same on every run.

The segment *bytes* do not: libsodium draws the segment key, the secretstream header
and the sealed boxes' ephemeral keys from its own CSPRNG, so ciphertext, `recipients`,
`stream_header` and every hash and signature that covers them differ from run to run.
The committed vectors are the pinned ones; regenerating them gives equivalent, not
identical, files (tests/unit/test_vectors.py checks that both agree with the reader).

Segments are written by the reference writer (device.evidence.segment_file.SegmentFile)
into memory; tampered and cut-short variants are derived by byte surgery. Vectors that
need a well-formed but invalid header (missing member, bool as int) are built from
primitives and re-signed with the device key, so the header rule is the only fault.
This module deliberately does not use the reader or decryptor (segment_reader.py,
decrypt.py): expectations are computed from what was written.
"""
from __future__ import annotations

import hashlib
import json
import random
import struct
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from nacl.public import PrivateKey  # noqa: E402
from nacl.signing import SigningKey  # noqa: E402

from device.evidence.format import (  # noqa: E402
    CHECKPOINT_RECORD_BYTES, CHUNK_BODY_MAX, CHUNK_KIND_MEDIA, CHUNK_KIND_METADATA,
    CHUNK_PLAINTEXT_MAX, MAGIC, PREAMBLE_BYTES, RECORD_HEAD, TYPE_HEADER, Checkpoint, record,
)
from device.evidence.segment_file import SegmentFile  # noqa: E402
from hal.storage import WritableFile  # noqa: E402

DEVICE = SigningKey(bytes([1]) * 32)
CUSTODIAN_A = PrivateKey(bytes([2]) * 32)
NON_CUSTODIAN_B = PrivateKey(bytes([3]) * 32)
CUSTODIAN_C = PrivateKey(bytes([4]) * 32)
OTHER_DEVICE = SigningKey(bytes([5]) * 32)

HEADER_KEYS = ("expect", "device_pub", "custodian_key", "decrypt", "chunks", "payload_sha256", "comment")
T = CHECKPOINT_RECORD_BYTES
_DATA_MAX = CHUNK_PLAINTEXT_MAX - 1


class MemoryFile(WritableFile):
    """A WritableFile in memory; `durable` is what a power cut would leave."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.durable = 0
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.data += data

    def sync(self) -> None:
        self.durable = len(self.data)

    def close(self) -> None:
        self.closed = True


def header_fields(seq: int = 1, prev: dict | None = None, signing_key: SigningKey = DEVICE) -> dict:
    """The device/event/media members of a segment header (SegmentFile adds the rest)."""
    return {
        "device_id": "vector-device", "device_key": bytes(signing_key.verify_key).hex(),
        "firmware": "0.1.0", "seq": seq, "prev": prev,
        "event_id": "00112233445566778899aabbccddeeff", "event_segment": 0,
        "event_origin_utc_us": 1_700_000_000_000_000, "event_origin_monotonic_us": 42_000_000,
        "media_start_us": 0, "created_utc_us": 1_700_000_000_000_000,
        "video": {"codec": "h264", "width": 640, "height": 480, "fps": 30},
        "audio": {"codec": "aac", "sample_rate_hz": 48_000, "channels": 1},
    }


# These vectors pin format v1 (footage from firmware 0.1 must keep verifying).
VECTOR_VERSION = 1
PREAMBLE = MAGIC + struct.pack(">H", VECTOR_VERSION)


class Written:
    """A segment written by SegmentFile, with its plaintext chunks tracked independently."""

    def __init__(self, custodians: list[PrivateKey] | None = None, signing_key: SigningKey = DEVICE,
                 fields: dict | None = None) -> None:
        self.out = MemoryFile()
        self.chunks: list[tuple[bytes, bytes]] = []   # (kind, data) in file order
        self.segment = SegmentFile(self.out, signing_key, fields or header_fields(signing_key=signing_key),
                                   [k.public_key for k in (custodians or [CUSTODIAN_A])], version=VECTOR_VERSION)

    def add(self, kind: bytes, data: bytes) -> None:
        self.segment.add(kind, data)
        pieces = [data[i:i + _DATA_MAX] for i in range(0, len(data), _DATA_MAX)] or [b""]
        self.chunks.extend((kind, piece) for piece in pieces)

    def checkpoint(self, media_end_us: int) -> None:
        self.segment.checkpoint(media_end_us)

    def close(self, last_media: bytes, media_end_us: int) -> bytes:
        self.segment.close(last_media, media_end_us)
        pieces = [last_media[i:i + _DATA_MAX] for i in range(0, len(last_media), _DATA_MAX)] or [b""]
        self.chunks.extend((CHUNK_KIND_MEDIA, piece) for piece in pieces)
        return bytes(self.out.data)

    def payload_sha256(self, chunk_count: int) -> str:
        return hashlib.sha256(b"".join(d for k, d in self.chunks[:chunk_count] if k == CHUNK_KIND_MEDIA)).hexdigest()


def records(data: bytes) -> list[tuple[int, int, int]]:
    """(type, start, end) of every complete record (a plain walk, no checking)."""
    out, pos = [], PREAMBLE_BYTES
    while pos + RECORD_HEAD.size <= len(data):
        rtype, length = RECORD_HEAD.unpack_from(data, pos)
        end = pos + RECORD_HEAD.size + length
        if end > len(data):
            break
        out.append((rtype, pos, end))
        pos = end
    return out


def of_type(data: bytes, letter: str) -> list[tuple[int, int]]:
    return [(start, end) for rtype, start, end in records(data) if rtype == ord(letter)]


def flip(data: bytes, offset: int, mask: int = 0x01) -> bytes:
    out = bytearray(data)
    out[offset] ^= mask
    return bytes(out)


def media(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def metadata(record_type: str, media_us: int, **fields: object) -> bytes:
    return json.dumps(dict(fields, type=record_type, media_us=media_us), sort_keys=True).encode()


def signed_segment_with_header(header: dict) -> bytes:
    """preamble || H(header as given, unchecked) || K0 signed by the device: a file whose
    only fault can be the header's content."""
    body = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    head = PREAMBLE + record(TYPE_HEADER, body)
    unsigned = Checkpoint(1, 0, len(head), 0, hashlib.sha256(head).digest(), False)
    k0 = Checkpoint(1, 0, len(head), 0, unsigned.hash, False, DEVICE.sign(unsigned.message()).signature)
    return head + k0.to_record()


# -- base segments ---------------------------------------------------------------------

def single_chunk() -> Written:
    w = Written()
    w.close(media(1, 2000), 1_000_000)
    return w


def small_multi(custodians: list[PrivateKey] | None = None) -> Written:
    """H K0 C(j) C(m) K1 C(m) K2 C(j) C(m) K3 C(m,FINAL) Kf Kf: six chunks, small."""
    w = Written(custodians)
    w.add(CHUNK_KIND_METADATA, metadata("activation", 0, source="button", activation_monotonic_us=42_000_000,
                                        pre_event_s=0, delivered_pre_event_us=0))
    w.add(CHUNK_KIND_MEDIA, media(10, 3000))
    w.checkpoint(1_000_000)
    w.add(CHUNK_KIND_MEDIA, media(11, 2500))
    w.checkpoint(2_000_000)
    w.add(CHUNK_KIND_METADATA, metadata("marker", 2_500_000, source="button"))
    w.add(CHUNK_KIND_MEDIA, media(12, 2000))
    w.checkpoint(3_000_000)
    w.close(media(13, 1200), 3_500_000)
    return w


def big_multi() -> Written:
    """Several flushes, metadata, and one media add of 1 MiB + 5000 bytes (two chunks)."""
    w = Written()
    w.add(CHUNK_KIND_METADATA, metadata("activation", 0, source="trigger:holster",
                                        activation_monotonic_us=42_000_000, pre_event_s=0,
                                        delivered_pre_event_us=0))
    w.add(CHUNK_KIND_MEDIA, media(20, 4000))
    w.checkpoint(1_000_000)
    w.add(CHUNK_KIND_MEDIA, media(21, _DATA_MAX + 5000))
    w.checkpoint(2_000_000)
    w.add(CHUNK_KIND_METADATA, metadata("marker", 2_200_000, source="button"))
    w.add(CHUNK_KIND_MEDIA, media(22, 3000))
    w.checkpoint(3_000_000)
    w.close(media(23, 1000), 3_400_000)
    return w


def empty_final() -> Written:
    w = Written()
    w.add(CHUNK_KIND_MEDIA, media(30, 2500))
    w.checkpoint(1_000_000)
    w.close(b"", 1_000_000)
    return w


# -- scenarios -------------------------------------------------------------------------

def _hex_pub(key: SigningKey) -> str:
    return bytes(key.verify_key).hex()


def _vector(expect: str, body: bytes, comment: str, *, chunks: int | None = None,
            written: Written | None = None, decrypt: str = "none", custodian: PrivateKey = CUSTODIAN_A,
            device: SigningKey = DEVICE) -> tuple[dict, bytes]:
    headers = {"expect": expect, "device_pub": _hex_pub(device), "custodian_key": bytes(custodian).hex(),
               "decrypt": decrypt}
    if chunks is not None:
        headers["chunks"] = str(chunks)
    if decrypt == "ok":
        assert written is not None and chunks is not None
        headers["payload_sha256"] = written.payload_sha256(chunks)
    headers["comment"] = comment
    return headers, body


def build_vectors() -> dict[str, tuple[dict, bytes]]:
    v: dict[str, tuple[dict, bytes]] = {}

    one = single_chunk()
    one_data = bytes(one.out.data)
    v["authentic_single_chunk"] = _vector(
        "authentic", one_data, "closed at once: one FINAL media chunk of 2000 bytes",
        chunks=1, written=one, decrypt="ok")

    big = big_multi()
    v["authentic_multi_checkpoint"] = _vector(
        "authentic", bytes(big.out.data),
        "4 flushes, 2 metadata (j) chunks, a 1 MiB + 5000 byte media add split into 2 chunks",
        chunks=len(big.chunks), written=big, decrypt="ok")

    empty = empty_final()
    v["authentic_empty_final"] = _vector(
        "authentic", bytes(empty.out.data), "closed with nothing left to flush: the FINAL chunk is an empty m",
        chunks=2, written=empty, decrypt="ok")

    two = small_multi([CUSTODIAN_A, CUSTODIAN_C])
    two_data = bytes(two.out.data)
    v["two_recipients"] = _vector(
        "authentic", two_data, "encrypted to custodians A and C; decrypted by A",
        chunks=6, written=two, decrypt="ok")
    v["two_recipients_other"] = _vector(
        "authentic", two_data, "encrypted to custodians A and C; decrypted by C",
        chunks=6, written=two, decrypt="ok", custodian=CUSTODIAN_C)

    base = small_multi()
    data = bytes(base.out.data)
    chunks = of_type(data, "C")
    cps = of_type(data, "K")   # K0 K1 K2 K3 Kf Kf
    assert len(chunks) == 6 and len(cps) == 6

    v["not_recipient"] = _vector(
        "authentic", data, "authentic, but custodian_key is B, which is not a recipient",
        chunks=6, decrypt="not_recipient", custodian=NON_CUSTODIAN_B)

    # -- power loss ----------------------------------------------------------------
    start, end = chunks[4]    # the m chunk after the marker, covered only by K3
    v["truncated_mid_chunk"] = _vector(
        "truncated", data[:(start + end) // 2], "cut in the middle of a chunk written after K2",
        chunks=3, written=base, decrypt="ok")
    v["truncated_after_checkpoint"] = _vector(
        "truncated", data[:cps[1][1]], "cut exactly at the end of checkpoint K1",
        chunks=2, written=base, decrypt="ok")
    v["truncated_after_chunk"] = _vector(
        "truncated", data[:chunks[2][1]], "cut after a complete chunk whose checkpoint was never written",
        chunks=2, written=base, decrypt="ok")
    v["truncated_before_k0"] = _vector(
        "truncated", data[:cps[0][0]], "preamble and header only: K0 missing, nothing authenticated",
        chunks=0)
    v["truncated_inside_k0"] = _vector(
        "truncated", data[:cps[0][0] + 70], "cut inside K0: nothing authenticated", chunks=0)
    v["truncated_final_copy_missing"] = _vector(
        "truncated", data[:-T], "ends right after the first final checkpoint: its copy is missing",
        chunks=6, written=base, decrypt="ok")
    v["truncated_inside_final_copy"] = _vector(
        "truncated", data[:-50], "ends inside the copy of the final checkpoint (a prefix of it)",
        chunks=6, written=base, decrypt="ok")
    v["truncated_preamble"] = _vector("truncated", data[:5], "5 bytes of the magic", chunks=0)
    v["truncated_empty_file"] = _vector("truncated", b"", "empty file (power lost right after create)",
                                        chunks=0)

    # -- not ours / not readable ---------------------------------------------------
    garbage = b"GIF89a" + random.Random(40).randbytes(250)
    v["not_evidence"] = _vector("not_evidence", garbage, "garbage that does not start with the magic")
    v["unsupported_version"] = _vector(
        "unsupported_version", data[:8] + struct.pack(">H", 3) + data[10:],
        "authentic file with the preamble version changed to 3")

    # -- header --------------------------------------------------------------------
    h_start, h_end = of_type(data, "H")[0]
    v["header_failure_json"] = _vector(
        "header_failure", data[:h_start + 5] + b"<" + data[h_start + 6:],
        "first byte of the header body replaced: not JSON (not re-signed)")
    header = json.loads(data[h_start + 5:h_end])
    changed = data[:h_end].replace(b'"firmware":"0.1.0"', b'"firmware":"9.9.9"')
    assert len(changed) == h_end and changed != data[:h_end]
    v["header_failure_unsigned"] = _vector(
        "header_failure", changed + data[h_end:],
        "valid header with its firmware member altered: K0 no longer signs it")
    missing = dict(header)
    del missing["firmware"]
    v["header_failure_missing_member"] = _vector(
        "header_failure", signed_segment_with_header(missing),
        "header lacks the required member firmware (K0 re-signed by the device)")
    as_bool = dict(header, seq=True)
    v["header_failure_bool_as_int"] = _vector(
        "header_failure", signed_segment_with_header(as_bool),
        "header member seq is JSON true, not an int (K0 re-signed by the device)")
    v["header_failure_first_record_not_header"] = _vector(
        "header_failure", data[:h_start] + b"C" + data[h_start + 1:],
        "the first record's type byte changed from H to C")

    v["wrong_device"] = _vector(
        "wrong_device", one_data, "authentic segment of device 1, verified against another device's key",
        device=OTHER_DEVICE)

    # -- signatures ----------------------------------------------------------------
    start, end = chunks[2]
    v["signature_failure_flipped_chunk_byte"] = _vector(
        "signature_failure", flip(data, (start + end) // 2),
        "one ciphertext bit flipped in a chunk covered by K2")
    v["signature_failure_bad_signature"] = _vector(
        "signature_failure", flip(data, cps[1][1] - 1), "last byte of K1's signature changed")
    (s3, e3), (s4, e4) = chunks[3], chunks[4]
    v["signature_failure_chunks_reordered"] = _vector(
        "signature_failure", data[:s3] + data[s4:e4] + data[s3:e3] + data[e4:],
        "the two chunks between K2 and K3 swapped (same total length, K3 unchanged)")

    # -- structure -----------------------------------------------------------------
    k1_end = cps[1][1]
    v["structure_failure_unknown_record"] = _vector(
        "structure_failure", data[:k1_end] + record(ord("X"), b"hello") + data[k1_end:],
        "a record of unknown type X inserted after K1")
    v["structure_failure_final_copy_differs"] = _vector(
        "structure_failure", flip(data, len(data) - 1), "last byte of the final checkpoint's copy changed")
    v["structure_failure_trailing_data"] = _vector(
        "structure_failure", data + b"\x00" * 16, "16 bytes appended after the final checkpoint's copy")
    start, _ = chunks[0]
    too_long = data[:start + 1] + struct.pack(">I", CHUNK_BODY_MAX + 1) + data[start + 5:]
    v["structure_failure_chunk_too_long"] = _vector(
        "structure_failure", too_long, f"first chunk's length set to {CHUNK_BODY_MAX + 1} (one over the maximum)")
    start, end = chunks[1]
    v["structure_failure_clean_end_after_cut"] = _vector(
        "structure_failure", data[:start + 100] + data[-2 * T:],
        "cut inside a chunk, then the clean end (final checkpoint and copy) appended: not a power cut")
    final_a = data[-2 * T:-T]
    v["signature_failure_final_flag_cleared"] = _vector(
        "signature_failure", data[:-2 * T] + final_a[:77] + b"\x00" + final_a[78:] + data[-T:],
        "final flag cleared in the first final checkpoint (the flag is signed); its copy still claims a clean end")
    head = signed_segment_with_header(header)
    k0_body = head[-T + 5:]
    final_k0 = Checkpoint(1, 0, len(head) - T, 0, k0_body[40:72], True)
    final_k0 = Checkpoint(1, 0, len(head) - T, 0, k0_body[40:72], True,
                          DEVICE.sign(final_k0.message()).signature).to_record()
    v["structure_failure_final_k0"] = _vector(
        "structure_failure", head[:-T] + final_k0 + final_k0,
        "the header's own checkpoint K0 signed as final (and copied): a clean end with no chunk")
    return v


def render(headers: dict, body: bytes) -> bytes:
    lines = []
    for key in HEADER_KEYS:
        if key in headers:
            value = headers[key]
            assert "\n" not in value and value.isascii()
            lines.append(f"{key}: {value}\n")
    return "".join(lines).encode("ascii") + b"\n" + body


def parse(blob: bytes) -> tuple[dict, bytes]:
    head, sep, body = blob.partition(b"\n\n")
    if not sep:
        raise ValueError("vector has no blank line after its header")
    headers = {}
    for line in head.decode("ascii").split("\n"):
        key, sep, value = line.partition(": ")
        if not sep or key not in HEADER_KEYS or key in headers:
            raise ValueError(f"bad vector header line {line!r}")
        headers[key] = value
    return headers, body


def write_vectors(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, (headers, body) in build_vectors().items():
        path = out_dir / f"{name}.vector"
        path.write_bytes(render(headers, body))
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out_dir = Path(args[0]) if args else Path(__file__).resolve().parent
    for path in write_vectors(out_dir):
        print(f"{path.stat().st_size:>9}  {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
