"""tools/plainstream.py: a segment's media decrypted on demand, as PyAV reads it.

The reader must give exactly what decrypt_segment gives, hold no more than a chunk,
never be seekable (so the MP4 demuxer reads front to back), and never raise inside
read(): PyAV calls it from C, where an exception is lost (a KeyboardInterrupt even makes
FFmpeg retry the read forever). Errors come back from check().
"""
from __future__ import annotations

import json
import random

import pytest
from nacl.public import PrivateKey
from nacl.signing import SigningKey

from device.evidence.decrypt import DecryptError, NotARecipient, decrypt_segment
from device.evidence.format import CHUNK_KIND_MEDIA, CHUNK_KIND_METADATA, CHUNK_PLAINTEXT_MAX
from device.evidence.segment_file import TAG_FINAL, SegmentFile
from device.evidence.segment_reader import verify_segment_file
from hal.dirstorage import DirectoryStorage
from tools import plainstream
from tools.plainstream import SegmentMediaReader

DEVICE = SigningKey(bytes([1]) * 32)
CUSTODIAN = PrivateKey(bytes([2]) * 32)
STRANGER = PrivateKey(bytes([3]) * 32)
FIELDS = {
    "device_id": "test-device", "device_key": bytes(DEVICE.verify_key).hex(), "firmware": "0.1.0",
    "seq": 1, "prev": None, "audit_n": 0, "event_id": "ab" * 16, "event_segment": 0,
    "event_origin_utc_us": 1_700_000_000_000_000, "event_origin_monotonic_us": 9_000_000,
    "media_start_us": 0, "created_utc_us": 1_700_000_000_000_000,
    "video": {"codec": "h264", "width": 320, "height": 240, "fps": 15}, "audio": None,
}


def _segment(tmp_path, faulty_final: bool = False):
    """A segment file with multi-chunk flushes and metadata between them; its path,
    its verification report, and the media and metadata that went in."""
    rng = random.Random(7)
    out = DirectoryStorage(str(tmp_path)).create("seg-0000000001.bwc")
    seg = SegmentFile(out, DEVICE, FIELDS, [CUSTODIAN.public_key])
    media, metadata = [], []
    for n in range(3):
        flush = rng.randbytes(CHUNK_PLAINTEXT_MAX + 1000 * n)   # two chunks each
        seg.add(CHUNK_KIND_MEDIA, flush)
        media.append(flush)
        record = {"type": "marker", "n": n}
        seg.add(CHUNK_KIND_METADATA, json.dumps(record).encode())
        metadata.append(record)
        seg.checkpoint((n + 1) * 1_000_000)
    if faulty_final:
        seg._add_chunk(CHUNK_KIND_MEDIA + b"early end", TAG_FINAL)   # a faulty device's stream
        seg.checkpoint(3_500_000)
        media.append(b"early end")
    else:
        tail = rng.randbytes(5000)
        seg.close(tail, 3_500_000)
        media.append(tail)
    path = str(tmp_path / "seg-0000000001.bwc")
    with open(path, "rb") as f:
        report = verify_segment_file(f, DEVICE.verify_key)
    assert report.ok, report.reason
    return path, report, b"".join(media), metadata


def _read_all(reader, size: int = 32 * 1024) -> bytes:
    parts = []
    while data := reader.read(size):
        assert len(data) <= size
        parts.append(data)
    return b"".join(parts)


def test_streams_exactly_what_decrypt_segment_gives(tmp_path):
    path, report, media, metadata = _segment(tmp_path)
    with open(path, "rb") as f:
        whole = decrypt_segment(f.read(), report, CUSTODIAN)
    with SegmentMediaReader(path, report, CUSTODIAN) as reader:
        assert reader.readable() and not reader.seekable()
        assert not hasattr(reader, "seek") and not hasattr(reader, "tell")
        assert _read_all(reader) == media == whole.media
        reader.check()
        assert reader.metadata == metadata == whole.metadata
        assert reader.media_bytes == len(media)


def test_holds_a_bounded_number_of_chunks(tmp_path):
    """One chunk in hand, at most AHEAD_CHUNKS decrypted ahead: never the segment."""
    path, report, _, _ = _segment(tmp_path)
    with SegmentMediaReader(path, report, CUSTODIAN) as reader:
        assert reader._ahead.maxsize == plainstream.AHEAD_CHUNKS
        sizes = []
        while reader.read(4096):
            sizes.append(len(reader._buffer))
    assert max(sizes) <= CHUNK_PLAINTEXT_MAX - 1


def test_releasing_a_reader_early_stops_its_decrypting_thread(tmp_path, monkeypatch):
    monkeypatch.setattr(plainstream, "AHEAD_CHUNKS", 1)   # the thread is blocked on a full queue
    path, report, media, _ = _segment(tmp_path)
    reader = SegmentMediaReader(path, report, CUSTODIAN)
    assert reader.read(10) == media[:10]
    reader.release()
    assert not reader._thread.is_alive()
    assert reader.read(10) == b""


def test_a_decryption_failure_ends_the_stream_and_is_raised_by_check(tmp_path):
    path, report, _, _ = _segment(tmp_path, faulty_final=True)
    with SegmentMediaReader(path, report, CUSTODIAN) as reader:
        _read_all(reader)          # never raises
        assert reader.read(10) == b""
        with pytest.raises(DecryptError, match="FINAL"):
            reader.check()


def test_an_interrupt_is_held_until_check(tmp_path):
    path, report, media, _ = _segment(tmp_path)
    calls = []

    def interrupt_check():
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with SegmentMediaReader(path, report, CUSTODIAN, interrupt_check) as reader:
        got = _read_all(reader)
        assert 0 < len(got) < len(media) and media.startswith(got)
        with pytest.raises(KeyboardInterrupt):
            reader.check()


def test_a_stranger_cannot_open_a_reader(tmp_path):
    path, report, _, _ = _segment(tmp_path)
    reader = SegmentMediaReader(path, report, STRANGER)
    assert reader.read(10) == b""
    with pytest.raises(NotARecipient):
        reader.check()
    reader.release()
