"""device/muxer.py + device/fmp4.py: the fragments the firmware builds by hand must read in
FFmpeg's mov demuxer and in `ffprobe` as a custodian's tools read them: every sample, at its
own time, whatever prefix of fragments survived, with a cut in the middle of a GOP (a press)
and audio that starts after the video (the pre-event holds no audio)."""
from __future__ import annotations

import json
import shutil
import subprocess

import av
import pytest

from device.fragment_scan import FragmentScanner
from device.muxer import FragmentMuxer
from hal.media import AudioFormat, MediaPacket, VideoFormat
from simulator.replay import encode_audio_loop, encode_video_loop

VIDEO = VideoFormat(width=320, height=180, fps=30, keyframe_interval_s=1.0, bitrate_bps=500_000)
FRAME_US, BLOCK_US = 33_333, 21_333
AUDIO_FROM_US = 1_500_000     # the activation: audio only from here on
CUT_AFTER_US = 1_500_000      # the press falls mid-GOP


@pytest.fixture(scope="module")
def stream():
    frames, blocks = encode_video_loop(VIDEO), encode_audio_loop(AudioFormat())
    packets = [MediaPacket("video", frames[n % len(frames)][0], n * FRAME_US, FRAME_US, frames[n % len(frames)][1])
               for n in range(95)]
    packets += [MediaPacket("audio", blocks[n % len(blocks)], AUDIO_FROM_US + n * BLOCK_US, BLOCK_US, True)
                for n in range(80)]
    packets.sort(key=lambda p: p.timestamp_us)
    muxer = FragmentMuxer(VIDEO, AudioFormat(), 1_000_000, 1_700_000_000_000_000)
    flushes, cut = [], False
    for packet in packets:
        if not cut and packet.timestamp_us >= CUT_AFTER_US:
            muxer.cut()
            cut = True
            flushes.append(muxer.take_output())
            assert muxer.delivered("video")[0] == max(p.timestamp_us for p in packets
                                                      if p.kind == "video" and p.timestamp_us < CUT_AFTER_US)
        assert muxer.add(packet, packet.timestamp_us)
        flushes.append(muxer.take_output())
    flushes.append(muxer.close())
    return packets, [f for f in flushes if f]


def _demux(path: str) -> dict[str, list[int]]:
    with av.open(path) as container:
        out = {"video": [], "audio": []}
        for packet in container.demux():
            if packet.size:
                out[packet.stream.type].append(round(packet.pts * packet.time_base * 1_000_000))
    return out


def test_every_sample_reads_back_at_its_own_time(tmp_path, stream):
    packets, flushes = stream
    path = str(tmp_path / "whole.mp4")
    with open(path, "wb") as f:
        f.write(b"".join(flushes))
    demuxed = _demux(path)
    for kind in ("video", "audio"):
        expected = [p.timestamp_us for p in packets if p.kind == kind]
        assert len(demuxed[kind]) == len(expected)
        # The track's own timescale rounds (48 kHz audio): within a sample period.
        assert all(abs(a - b) <= 21 for a, b in zip(sorted(demuxed[kind]), expected))
    with av.open(path) as container:
        assert sum(1 for _ in container.decode(video=0)) == len(demuxed["video"])


def test_any_prefix_of_flushes_is_a_playable_file(tmp_path, stream):
    _, flushes = stream
    for n in range(1, len(flushes) + 1):
        path = str(tmp_path / f"prefix{n}.mp4")
        with open(path, "wb") as f:
            f.write(b"".join(flushes[:n]))
        counts = {}
        scanner = FragmentScanner()
        for flush in flushes[:n]:
            for track, k in scanner.feed(flush).items():
                counts[track] = counts.get(track, 0) + k
        demuxed = _demux(path)
        assert len(demuxed["video"]) == counts.get(1, 0) and len(demuxed["audio"]) == counts.get(2, 0)


def test_ffprobe_reads_both_tracks_and_the_audio_start(tmp_path, stream):
    ffprobe = shutil.which("ffprobe")
    assert ffprobe, "ffprobe missing: apt-get install ffmpeg"
    _, flushes = stream
    path = tmp_path / "whole.mp4"
    path.write_bytes(b"".join(flushes))
    out = subprocess.run([ffprobe, "-v", "error", "-show_entries", "stream=codec_name,start_time",
                          "-of", "json", str(path)], capture_output=True, text=True, check=True)
    streams = {s["codec_name"]: float(s["start_time"]) for s in json.loads(out.stdout)["streams"]}
    assert streams["h264"] == 0.0
    assert abs(streams["aac"] - AUDIO_FROM_US / 1e6) < 0.001
