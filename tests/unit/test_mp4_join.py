"""tools/mp4_join.py: the direct join writes the MP4 the PyAV remux writes (the same packets,
times, flags and bytes), and declines, writing nothing, whatever it does not understand.

Segments are real camera-muxer output (device/muxer.py) of simulated packets.
"""
from __future__ import annotations

import struct

import av
import pytest

from device.muxer import FragmentMuxer
from hal.media import AudioFormat, VideoFormat
from simulator.audio import SimAir, SimMicrophone
from simulator.camera import SimCamera
from simulator.clock import VirtualClock
from tools.mp4_join import Declined
from tools.remux import MoovReserveTooSmall, remux_event

VIDEO = VideoFormat(width=160, height=90, fps=10, keyframe_interval_s=1.0, bitrate_bps=100_000)
SEGMENT_US = 2_000_000
AUDIO_LATE_US = 300_000   # no pre-event audio: the audio starts after the video


class Source:
    """A segment's media handed out in uneven pieces, as plainstream.py does."""

    def __init__(self, data: bytes, piece_bytes: int = 7_001) -> None:
        self.data, self.piece_bytes, self.pos, self.media_bytes = data, piece_bytes, 0, 0

    def read(self, size: int) -> bytes:
        piece = self.data[self.pos:self.pos + min(size, self.piece_bytes)]
        self.pos += len(piece)
        self.media_bytes += len(piece)
        return piece


@pytest.fixture(scope="module")
def packets():
    clock = VirtualClock()
    camera, mic = SimCamera(clock, VIDEO), SimMicrophone(clock, SimAir())
    captured = []
    camera.start(captured.append)
    mic.start(captured.append)
    t0 = clock.monotonic_us()
    clock.wait_until(t0 + 5_000_000)
    return [(p, p.timestamp_us - t0) for p in captured
            if p.kind == "video" or p.timestamp_us - t0 >= AUDIO_LATE_US]


def _segments(packets, video: VideoFormat = VIDEO) -> list[bytes]:
    """The event's segments, cut at the first keyframe after each SEGMENT_US (as the writer does)."""
    segments: list[tuple[FragmentMuxer, list[bytes]]] = []
    start_us = None
    for packet, media_us in packets:
        if packet.kind == "video" and packet.keyframe and (start_us is None or media_us - start_us >= SEGMENT_US):
            segments.append((FragmentMuxer(video, AudioFormat(), 1_000_000, 0), []))
            start_us = media_us
        if segments:
            muxer, parts = segments[-1]
            muxer.add(packet, media_us)
            parts.append(muxer.take_output())
    return [b"".join(parts) + muxer.close() for muxer, parts in segments]


def _remux(segments: list[bytes], path, fast: bool, expected: int | None = 1000) -> dict[str, int]:
    return remux_event([Source(s) for s in segments], str(path), 1_767_225_601_000_000, "title", expected, fast)


def _demuxed(path) -> list[tuple]:
    with av.open(str(path)) as container:
        streams = [(s.type, s.time_base, s.start_time, s.duration, s.frames) for s in container.streams]
        packets = [(p.stream.type, p.pts, p.dts, p.duration, p.is_keyframe, bytes(p))
                   for p in container.demux() if p.size]
        # Per stream: how the two files interleave their tracks' chunks may differ.
        return streams + sorted(packets, key=lambda p: p[0])


def test_the_join_writes_the_packets_and_stream_times_of_the_pyav_remux(packets, tmp_path):
    segments = _segments(packets)
    assert len(segments) >= 2
    fast = _remux(segments, tmp_path / "fast.mp4", fast=True)
    slow = _remux(segments, tmp_path / "slow.mp4", fast=False)
    assert fast == slow and fast["video"] and fast["audio"]
    assert _demuxed(tmp_path / "fast.mp4") == _demuxed(tmp_path / "slow.mp4")
    with av.open(str(tmp_path / "fast.mp4")) as container:
        audio = container.streams.audio[0]
        assert audio.start_time * audio.time_base >= AUDIO_LATE_US / 1e6 - 0.03   # in sync: starts late
        assert container.metadata["title"] == "title"


def test_a_segment_cut_short_after_a_fragment_keeps_its_whole_fragments(packets, tmp_path):
    segments = _segments(packets)
    last = segments[-1]
    # Cut right after the last complete fragment before the end (a power loss between flushes).
    cut = last.rfind(b"moof") - 4
    segments[-1] = last[:cut]
    fast = _remux(segments, tmp_path / "fast.mp4", fast=True)
    slow = _remux(segments, tmp_path / "slow.mp4", fast=False)
    assert fast == slow
    assert _demuxed(tmp_path / "fast.mp4") == _demuxed(tmp_path / "slow.mp4")


def test_an_index_too_large_for_its_room_is_reported_and_nothing_is_left(packets, tmp_path, monkeypatch):
    from tools import remux
    monkeypatch.setattr(remux, "MOOV_BASE_BYTES", 64)
    with pytest.raises(MoovReserveTooSmall):
        _remux(_segments(packets), tmp_path / "fast.mp4", fast=True, expected=0)
    assert not (tmp_path / "fast.mp4").exists()


def _insert_in_first_traf(segment: bytes, extra: bytes) -> bytes:
    """`extra` as the first child of the first traf, with the moof and traf sizes (and the
    data offsets, relative to the moof) adjusted, so only the unknown box is wrong."""
    moof = segment.find(b"moof") - 4
    traf = segment.find(b"traf", moof) - 4
    data = bytearray(segment[:traf + 8] + extra + segment[traf + 8:])
    for at in (moof, traf):
        struct.pack_into(">I", data, at, struct.unpack_from(">I", data, at)[0] + len(extra))
    moof_end = moof + struct.unpack_from(">I", data, moof)[0]
    pos = moof
    while True:
        pos = data.find(b"trun", pos + 1, moof_end)
        if pos < 0:
            break
        if struct.unpack_from(">I", data, pos + 4)[0] & 1:
            struct.pack_into(">i", data, pos + 12, struct.unpack_from(">i", data, pos + 12)[0] + len(extra))
    return bytes(data)


def _declines(segments, tmp_path, match: str) -> None:
    with pytest.raises(Declined, match=match):
        _remux(segments, tmp_path / "fast.mp4", fast=True)
    assert not (tmp_path / "fast.mp4").exists()


def test_an_unknown_box_in_a_fragment_is_declined(packets, tmp_path):
    segments = _segments(packets)
    segments[1] = _insert_in_first_traf(segments[1], struct.pack(">I4s", 16, b"sbgp") + bytes(8))
    _declines(segments, tmp_path, "unexpected boxes in a traf")
    # ... and the PyAV path, which understands it, still exports the event.
    assert _remux(segments, tmp_path / "slow.mp4", fast=False)["video"]


def test_a_later_segment_described_differently_is_declined(packets, tmp_path):
    segments = _segments(packets)
    other = VideoFormat(width=320, height=180, fps=10, keyframe_interval_s=1.0, bitrate_bps=100_000)
    segments[1] = _segments(packets, other)[1]
    _declines(segments, tmp_path, "described differently")


def test_overlapping_segments_are_declined(packets, tmp_path):
    segments = _segments(packets)
    _declines([segments[0], segments[0]], tmp_path, "do not increase")


def test_a_segment_cut_inside_a_box_is_declined(packets, tmp_path):
    segments = _segments(packets)
    segments[-1] = segments[-1][:segments[-1].rfind(b"mdat") + 100]
    _declines(segments, tmp_path, "inside an mdat")


def test_a_first_segment_without_video_parameters_is_declined(packets, tmp_path):
    audio_only = [(p, t) for p, t in packets if p.kind == "audio"][:20]
    muxer = FragmentMuxer(VIDEO, AudioFormat(), 1_000_000, 0)
    for packet, media_us in audio_only:
        muxer.add(packet, media_us)
    segment = muxer.take_output() + muxer.close()
    _declines([segment, *_segments(packets)], tmp_path, "video sample entry")


def test_media_that_stops_because_a_read_failed_reports_that_failure(packets, tmp_path):
    """plainstream.py ends a failed read as end of file and raises the failure in check()."""

    class Failing(Source):
        def check(self) -> None:
            raise OSError(5, "Input/output error")

    segments = _segments(packets)
    sources = [Source(segments[0]), Failing(segments[1][:segments[1].rfind(b"mdat") + 100])]
    with pytest.raises(OSError, match="Input/output error"):
        remux_event(sources, str(tmp_path / "fast.mp4"), 0, "title", 1000, True)
    assert not (tmp_path / "fast.mp4").exists()
