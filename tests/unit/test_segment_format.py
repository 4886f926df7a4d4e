"""Segment files (docs/format.md §3, §4, §7): write → verify → decrypt, and what tampering
or power loss looks like to a custodian."""
from __future__ import annotations

import copy
import hashlib
import json
import random
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.public import PrivateKey
from nacl.signing import SigningKey

from device.evidence.decrypt import NotARecipient, decrypt_segment
from device.evidence.format import (
    CHECKPOINT_RECORD_BYTES, CHUNK_KIND_MEDIA, CHUNK_KIND_METADATA, CHUNK_PLAINTEXT_MAX, PREAMBLE,
    TYPE_HEADER, Checkpoint, HeaderError, check_header, record,
)
from device.evidence.segment_file import SegmentFile
from device.evidence.segment_reader import (
    AUTHENTIC, INTEGRITY_FAILURES, TRUNCATED, UNSUPPORTED_VERSION, verify_segment,
)
from hal.storage import WritableFile

DEVICE = SigningKey(bytes([1]) * 32)
CUSTODIAN = PrivateKey(bytes([2]) * 32)
STRANGER = PrivateKey(bytes([3]) * 32)
DATA_MAX = CHUNK_PLAINTEXT_MAX - 1


class MemoryFile(WritableFile):
    def __init__(self) -> None:
        self.data = bytearray()
        self.calls: list[str] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.data += data
        self.calls.append("write")

    def sync(self) -> None:
        self.calls.append("sync")

    def close(self) -> None:
        self.closed = True


def fields(seq: int = 1, **overrides) -> dict:
    out = {
        "device_id": "test-device", "device_key": bytes(DEVICE.verify_key).hex(), "firmware": "0.1.0",
        "seq": seq, "prev": None, "audit_n": 0, "event_id": "ab" * 16, "event_segment": 0,
        "event_origin_utc_us": 1_700_000_000_000_000, "event_origin_monotonic_us": 9_000_000,
        "media_start_us": 0, "created_utc_us": 1_700_000_000_000_000,
        "video": {"codec": "h264", "width": 320, "height": 240, "fps": 15}, "audio": None,
    }
    out.update(overrides)
    return out


def new_segment(custodians=(CUSTODIAN,), **field_overrides) -> tuple[SegmentFile, MemoryFile]:
    out = MemoryFile()
    return SegmentFile(out, DEVICE, fields(**field_overrides), [k.public_key for k in custodians]), out


def verify(data: bytes):
    return verify_segment(bytes(data), DEVICE.verify_key)


def small_clean_segment() -> bytes:
    """H K0 C C K1 C K2 C(FINAL) Kf Kf: every record type, two flushes, about 1.5 KB."""
    seg, out = new_segment()
    seg.add(CHUNK_KIND_METADATA, b'{"type":"activation","media_us":0}')
    seg.add(CHUNK_KIND_MEDIA, random.Random(1).randbytes(40))
    seg.checkpoint(500_000)
    seg.add(CHUNK_KIND_MEDIA, random.Random(2).randbytes(30))
    seg.checkpoint(1_000_000)
    seg.close(random.Random(3).randbytes(20), 1_200_000)
    return bytes(out.data)


CLEAN = small_clean_segment()


# -- round trip --------------------------------------------------------------------------

def test_round_trip_media_and_metadata():
    rng = random.Random(7)
    seg, out = new_segment()
    flushes = [rng.randbytes(n) for n in (1000, 0, 70_000)]
    meta = [{"type": "activation", "media_us": 0, "source": "button"},
            {"type": "marker", "media_us": 1_500_000, "source": "button"}]
    seg.add(CHUNK_KIND_METADATA, json.dumps(meta[0]).encode())
    seg.add(CHUNK_KIND_MEDIA, flushes[0])
    seg.checkpoint(1_000_000)
    seg.add(CHUNK_KIND_MEDIA, flushes[1])
    seg.add(CHUNK_KIND_METADATA, json.dumps(meta[1]).encode())
    seg.checkpoint(2_000_000)
    seg.add(CHUNK_KIND_MEDIA, flushes[2])
    seg.checkpoint(3_000_000)
    last = rng.randbytes(500)
    final = seg.close(last, 3_250_000)
    assert out.closed

    report = verify(out.data)
    assert report.outcome == AUTHENTIC, report.reason
    assert report.header == seg.header
    assert [cp.chunk_count for cp in report.checkpoints] == [0, 2, 4, 5, 6]
    assert [cp.media_end_us for cp in report.checkpoints] == [0, 1_000_000, 2_000_000, 3_000_000, 3_250_000]
    assert report.last == final and final.final
    plain = decrypt_segment(bytes(out.data), report, CUSTODIAN)
    assert plain.media == b"".join(flushes) + last
    assert plain.metadata == meta
    assert plain.chunks == 6 and plain.ended_cleanly
    with pytest.raises(NotARecipient):
        decrypt_segment(bytes(out.data), report, STRANGER)


def test_every_recipient_decrypts_and_a_stranger_cannot():
    second = PrivateKey(bytes([9]) * 32)
    seg, out = new_segment(custodians=(CUSTODIAN, second))
    seg.close(b"media", 1)
    report = verify(out.data)
    assert len(report.header["recipients"]) == 2
    for key in (CUSTODIAN, second):
        assert decrypt_segment(bytes(out.data), report, key).media == b"media"
    with pytest.raises(NotARecipient):
        decrypt_segment(bytes(out.data), report, STRANGER)


def test_a_segment_needs_a_custodian():
    with pytest.raises(ValueError):
        SegmentFile(MemoryFile(), DEVICE, fields(), [])


def test_large_add_and_large_close_split_into_full_chunks():
    seg, out = new_segment()
    big = random.Random(5).randbytes(DATA_MAX + 10)
    seg.add(CHUNK_KIND_MEDIA, big)
    seg.checkpoint(1)
    tail = random.Random(6).randbytes(2 * DATA_MAX + 1)
    seg.close(tail, 2)
    report = verify(out.data)
    assert report.outcome == AUTHENTIC
    assert [length for _, length in report.chunks] == [
        CHUNK_PLAINTEXT_MAX + 17, 1 + 10 + 17,                    # the add
        CHUNK_PLAINTEXT_MAX + 17, 1 + 1 + 17, CHUNK_PLAINTEXT_MAX + 17]  # the close: FINAL carries the last MiB
    assert decrypt_segment(bytes(out.data), report, CUSTODIAN).media == big + tail


def test_every_flush_is_one_write_then_sync_and_k0_is_durable_at_open():
    seg, out = new_segment()
    assert out.calls == ["write", "sync"]
    assert verify(out.data).outcome == TRUNCATED and verify(out.data).authenticated
    seg.add(CHUNK_KIND_MEDIA, b"x" * 100)
    assert out.calls == ["write", "sync"]  # added chunks are not written before the checkpoint
    seg.checkpoint(10)
    seg.close(b"y", 20)
    assert out.calls == ["write", "sync"] * 3


# -- tampering: every single-byte change is caught ----------------------------------------

@pytest.mark.parametrize("mask", [0x01, 0xFF], ids=["xor01", "xorFF"])
def test_every_single_byte_change_is_an_integrity_failure(mask):
    assert verify(CLEAN).outcome == AUTHENTIC
    passed = []
    for offset in range(len(CLEAN)):
        damaged = bytearray(CLEAN)
        damaged[offset] ^= mask
        report = verify(damaged)
        if report.outcome not in INTEGRITY_FAILURES or report.chunks:
            passed.append((offset, report.outcome))
    assert passed == [], f"damaged bytes not caught (offset, outcome): {passed[:20]}"


# -- power loss: every prefix is a truncation ---------------------------------------------

def test_every_prefix_is_truncated_and_authenticated_content_only_grows():
    checkpoint_counts = {cp.chunk_count for cp in verify(CLEAN).checkpoints}
    previous = 0
    for length in range(len(CLEAN)):
        report = verify(CLEAN[:length])
        assert report.outcome == TRUNCATED, (length, report.reason)
        count = len(report.chunks)
        assert count >= previous, length
        assert (report.last.chunk_count if report.last else 0) == count
        assert count == 0 or count in checkpoint_counts
        previous = count
    assert previous == 4   # the last prefix (the copy torn by one byte) holds everything
    assert verify(CLEAN).outcome == AUTHENTIC


def test_a_torn_final_copy_still_decrypts_everything():
    full = verify(CLEAN)
    torn = CLEAN[:-CHECKPOINT_RECORD_BYTES]
    report = verify(torn)
    assert report.outcome == TRUNCATED and report.last == full.last
    expected = decrypt_segment(CLEAN, full, CUSTODIAN)
    got = decrypt_segment(torn, report, CUSTODIAN)
    assert got.media == expected.media and got.ended_cleanly


def test_prefix_decrypts_to_a_prefix_of_the_media():
    report_full = verify(CLEAN)
    full_media = decrypt_segment(CLEAN, report_full, CUSTODIAN).media
    for length in range(0, len(CLEAN), 37):
        report = verify(CLEAN[:length])
        if report.authenticated:
            media = decrypt_segment(CLEAN[:length], report, CUSTODIAN).media
            assert full_media.startswith(media)


# -- confidentiality ----------------------------------------------------------------------

def test_segment_never_contains_its_plaintext():
    # Low-entropy, recognisable media: any plaintext leak would show up.
    media = b"".join(b"ftyp-mdat-frame-%06d-" % i for i in range(4000))
    secret_note = b'{"type":"marker","media_us":1,"source":"officer-name-here"}'
    seg, out = new_segment()
    seg.add(CHUNK_KIND_MEDIA, media[:40_000])
    seg.add(CHUNK_KIND_METADATA, secret_note)
    seg.checkpoint(1)
    seg.close(media[40_000:], 2)
    data = bytes(out.data)
    assert verify(data).outcome == AUTHENTIC
    for start in range(0, len(media) - 32, 32):
        assert media[start:start + 32] not in data, start
    assert b"officer-name-here" not in data
    assert b"ftyp-mdat" not in data   # not even a 9-byte fragment of the media


# -- header validation --------------------------------------------------------------------

def full_header() -> dict:
    seg, _ = new_segment()
    return copy.deepcopy(seg.header)


REQUIRED = sorted(full_header())
WRONG_TYPE = {str: 1, int: "1", dict: [], list: {}, type(None): 1}


def test_a_written_header_passes():
    check_header(full_header())


@pytest.mark.parametrize("member", REQUIRED)
def test_header_missing_member_is_rejected(member):
    header = full_header()
    del header[member]
    with pytest.raises(HeaderError, match=f"lacks '{member}'"):
        check_header(header)


@pytest.mark.parametrize("member", REQUIRED)
def test_header_member_of_wrong_type_is_rejected(member):
    header = full_header()
    header[member] = WRONG_TYPE[type(header[member])] if header[member] is not None else 1
    with pytest.raises(HeaderError, match=f"'{member}' has the wrong type"):
        check_header(header)


INT_MEMBERS = [m for m in REQUIRED if type(full_header()[m]) is int]


@pytest.mark.parametrize("member", INT_MEMBERS)
@pytest.mark.parametrize("value", [True, False])
def test_header_bool_is_not_an_int(member, value):
    header = full_header()
    header[member] = value
    with pytest.raises(HeaderError, match="wrong type"):
        check_header(header)


def test_header_float_is_not_an_int():
    header = full_header()
    header["seq"] = 1.0
    with pytest.raises(HeaderError, match="wrong type"):
        check_header(header)


@pytest.mark.parametrize("change, message", [
    ({"format": "something-else"}, "format"),
    ({"version": 1}, "does not match the preamble"),
    ({"seq": 0}, "out of range"),
    ({"event_segment": -1}, "out of range"),
    ({"recipients": []}, "no recipients"),
    ({"prev": {"seq": 1, "hash": "00" * 32}}, "prev"),
    ({"prev": {"seq": "1", "hash": "00" * 32, "chunks": 3}}, "prev"),
])
def test_header_values_out_of_range_are_rejected(change, message):
    header = full_header()
    header.update(change)
    with pytest.raises(HeaderError, match=message):
        check_header(header)


def test_header_that_is_not_an_object_is_rejected():
    with pytest.raises(HeaderError, match="not a JSON object"):
        check_header([full_header()])


def test_header_prev_bool_is_not_an_int():
    header = full_header()
    header["prev"] = {"seq": True, "hash": "00" * 32, "chunks": 0}
    with pytest.raises(HeaderError):
        check_header(header)


def test_deeply_nested_header_is_a_header_failure_not_a_crash():
    report = verify(PREAMBLE + record(TYPE_HEADER, b"[" * 60_000))
    assert report.outcome == "header_failure"


def test_writer_refuses_an_invalid_header():
    with pytest.raises(HeaderError, match="lacks 'firmware'"):
        SegmentFile(MemoryFile(), DEVICE, {k: v for k, v in fields().items() if k != "firmware"},
                    [CUSTODIAN.public_key])


def test_unknown_header_members_are_allowed_and_signed():
    seg, out = new_segment(extra_member={"note": "kept"})
    seg.close(b"m", 1)
    report = verify(out.data)
    assert report.outcome == AUTHENTIC and report.header["extra_member"] == {"note": "kept"}
    data = bytes(out.data).replace(b'"kept"', b'"gone"')
    assert verify(data).outcome == "header_failure"


def signed_file_with_header(header: dict) -> bytes:
    """preamble || H(header, unchecked) || K0 correctly signed by the device."""
    head = PREAMBLE + record(TYPE_HEADER, json.dumps(header, sort_keys=True).encode())
    digest = hashlib.sha256(head).digest()
    unsigned = Checkpoint(header.get("seq", 1) if isinstance(header.get("seq"), int) else 1, 0, len(head), 0,
                          digest, False)
    signature = DEVICE.sign(unsigned.message()).signature
    return head + Checkpoint(unsigned.seq, 0, len(head), 0, digest, False, signature).to_record()


def test_signed_file_helper_makes_a_valid_file():
    assert verify(signed_file_with_header(full_header())).outcome == TRUNCATED
    assert verify(signed_file_with_header(full_header())).authenticated


@pytest.mark.parametrize("change", [{"firmware": None}, {"seq": True}, {"recipients": []}, {"version": 1}],
                         ids=["missing", "bool", "no-recipients", "version"])
def test_a_signed_but_invalid_header_is_a_header_failure(change):
    header = full_header()
    for name, value in change.items():
        if value is None:
            del header[name]
        else:
            header[name] = value
    report = verify(signed_file_with_header(header))
    assert report.outcome == "header_failure"
    assert not report.authenticated and report.header is None


# -- versions -----------------------------------------------------------------------------

@pytest.mark.parametrize("version", [0, 3, 0xFFFF])
def test_unknown_version_is_rejected_with_a_clear_message(version):
    data = CLEAN[:8] + struct.pack(">H", version) + CLEAN[10:]
    report = verify(data)
    assert report.outcome == UNSUPPORTED_VERSION
    assert f"version {version} is not supported" in report.reason
    assert report.header is None and not report.chunks


def test_unknown_version_is_rejected_before_reading_further():
    # Whatever follows a version-3 preamble (a future format) is not judged by v2 rules.
    report = verify(PREAMBLE[:8] + struct.pack(">H", 3) + b"\xff" * 300)
    assert report.outcome == UNSUPPORTED_VERSION


def test_preamble_is_the_documented_bytes():
    assert CLEAN[:10] == bytes.fromhex("894f4257430d0a1a") + b"\x00\x02"


# -- property: any media sizes and flush patterns round-trip -------------------------------

flush_plan = st.lists(
    st.tuples(st.sampled_from([CHUNK_KIND_MEDIA, CHUNK_KIND_METADATA]),
              st.one_of(st.integers(0, 3000), st.sampled_from([DATA_MAX - 1, DATA_MAX, DATA_MAX + 1])),
              st.booleans()),
    max_size=6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=flush_plan, last=st.integers(0, 3000), seed=st.integers(0, 2**32 - 1))
def test_any_flush_pattern_round_trips(plan, last, seed):
    rng = random.Random(seed)
    seg, out = new_segment()
    media, metadata, media_us = [], [], 0
    for kind, size, flush in plan:
        if kind == CHUNK_KIND_MEDIA:
            data = rng.randbytes(size)
            media.append(data)
        else:
            record = {"type": "marker", "media_us": media_us, "pad": "x" * min(size, 3000)}
            metadata.append(record)
            data = json.dumps(record).encode()
        seg.add(kind, data)
        if flush:
            media_us += 1000
            seg.checkpoint(media_us)
    tail = rng.randbytes(last)
    seg.close(tail, media_us + 1)

    report = verify(out.data)
    assert report.outcome == AUTHENTIC, report.reason
    plain = decrypt_segment(bytes(out.data), report, CUSTODIAN)
    assert plain.media == b"".join(media) + tail
    assert plain.metadata == metadata
    assert plain.ended_cleanly and plain.chunks == report.last.chunk_count


def test_a_final_tag_before_the_end_of_the_stream_fails_decryption():
    """§7 step 4: FINAL marks exactly the last chunk under a final checkpoint. A device
    bug that ended the stream early must not decrypt as if nothing were wrong."""
    from device.evidence.decrypt import DecryptError
    from device.evidence.segment_file import TAG_FINAL

    seg, out = new_segment()
    seg._add_chunk(CHUNK_KIND_MEDIA + b"early end", TAG_FINAL)   # the faulty device's mistake
    seg.checkpoint(500_000)
    report = verify(out.data)
    assert report.outcome == TRUNCATED and report.last.chunk_count == 1
    with pytest.raises(DecryptError, match="FINAL"):
        decrypt_segment(bytes(out.data), report, CUSTODIAN)


def test_a_cut_short_segment_without_final_tag_decrypts():
    seg, out = new_segment()
    seg.add(CHUNK_KIND_MEDIA, b"first second")
    seg.checkpoint(500_000)
    report = verify(out.data)
    plain = decrypt_segment(bytes(out.data), report, CUSTODIAN)
    assert plain.media == b"first second" and not plain.ended_cleanly
