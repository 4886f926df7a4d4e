"""SEC-1, SEG-2, BUF-3: nothing in storage is plaintext media, and footage that only
ever sat in the pre-event buffer never reaches storage."""
from __future__ import annotations

import os
import struct

import av
import pytest

from device.evidence.decrypt import decrypt_segment
from device.evidence.keys import read_custodian_secret, read_device_public
from device.evidence.segment_reader import verify_segment
from scenario_support import make_device, packets, record, scenario_toml

pytestmark = pytest.mark.scenario

WINDOW = 64


def _storage_blobs(storage: str) -> dict[str, bytes]:
    blobs = {}
    for name in sorted(os.listdir(storage)):
        with open(os.path.join(storage, name), "rb") as f:
            blobs[name] = f.read()
    return blobs


def _sps_from_avcc(extradata: bytes) -> bytes:
    """The first SPS NAL unit of an avcC record (ISO 14496-15)."""
    assert extradata[0] == 1 and extradata[5] & 0x1F >= 1, extradata[:8].hex()
    (length,) = struct.unpack_from(">H", extradata, 6)
    sps = extradata[8:8 + length]
    assert sps[0] & 0x1F == 7, "not an SPS"
    return sps


def _top_level_boxes(data: bytes) -> list[bytes]:
    """The 8-byte header (size + type) of every top-level box, plus 8 bytes more where present."""
    headers, pos = [], 0
    while pos + 8 <= len(data):
        (size,) = struct.unpack_from(">I", data, pos)
        assert size >= 8, f"box size {size} at {pos}"
        headers.append(data[pos:pos + min(size, 16)])
        pos += size
    return headers


def test_no_plaintext_media_in_storage(main_recording):
    rec = main_recording
    blobs = _storage_blobs(rec.storage)
    found = []

    def check(label: str, needle: bytes) -> None:
        for name, blob in blobs.items():
            if needle in blob:
                found.append((label, name, needle[:16].hex()))

    # 64-byte windows from the exported video packets: keyframes, P-frames, every part of the event.
    video = packets(rec.mp4_path, "video")
    samples = 0
    for index, packet in enumerate(video):
        data = bytes(packet)
        if len(data) < WINDOW or (index % 3 and not packet.is_keyframe):
            continue
        for start in {0, (len(data) - WINDOW) // 2, len(data) - WINDOW}:
            check(f"video packet {index} @{start}", data[start:start + WINDOW])
            samples += 1
    assert samples >= 100, samples

    # The stream's SPS, as the MP4 stores it and as the camera emits it (Annex B).
    with av.open(rec.mp4_path) as container:
        sps = _sps_from_avcc(bytes(container.streams.video[0].codec_context.extradata))
    assert len(sps) >= 8
    check("SPS", sps)
    check("SPS (Annex B)", b"\x00\x00\x00\x01" + sps)

    # The MP4 box headers (size + ftyp/moov/moof/mdat) of every segment's plaintext and of the export.
    secret = read_custodian_secret(rec.custodian.secret_path)
    device_key = read_device_public(rec.device.pub_path)
    kinds = set()
    for name in rec.segment_files():
        report = verify_segment(blobs[name], device_key)
        plain = decrypt_segment(blobs[name], report, secret).media
        for header in _top_level_boxes(plain):
            kinds.add(header[4:8])
            check(f"{name} plaintext box {header[4:8]!r}", header)
        check(f"{name} plaintext start", plain[:WINDOW])
    assert {b"ftyp", b"moov", b"moof", b"mdat"} <= kinds, kinds
    with open(rec.mp4_path, "rb") as f:
        exported = f.read()
    for header in _top_level_boxes(exported):
        check(f"export box {header[4:8]!r}", header)
    check("export start", exported[:WINDOW])

    assert not found, f"plaintext found at rest: {found[:10]}"


def test_buffered_footage_never_touches_storage(tmp_path, custodian, main_recording):
    """No activation: the camera runs and fills the pre-event buffer, but storage gets
    only the audit log, and no file anywhere in the device directory holds the stream."""
    device = make_device(str(tmp_path / "device"), custodian, device_id="idle-cam")
    text = scenario_toml(8.0, [{"t_s": 2.0, "do": "button.press"}], keyframe_interval_s=1, pre_event_s=5)
    rec = record(device, custodian, text, export_dir=None)
    assert rec.camera_frames >= 200  # the camera really ran (8 s at 30 fps)

    assert rec.storage_files() == ["audit-0000000001.log"], rec.storage_files()
    assert [e["type"] for e in rec.audit_entries()] == ["boot", "shutdown"]

    # Same camera settings as the main recording, so the same SPS would appear if any
    # buffered video were written anywhere under the device directory.
    with av.open(main_recording.mp4_path) as container:
        sps = _sps_from_avcc(bytes(container.streams.video[0].codec_context.extradata))
    for directory, _, files in os.walk(device.directory):
        for name in files:
            with open(os.path.join(directory, name), "rb") as f:
                data = f.read()
            assert sps not in data, f"{name} holds the camera's SPS"
            for marker in (b"ftyp", b"moof", b"mdat"):
                assert marker not in data, f"{name} holds an MP4 box {marker!r}"
