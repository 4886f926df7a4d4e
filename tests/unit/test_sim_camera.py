"""SimCamera: real x264 packets, one per frame, on the clock's schedule (SIM-1)."""
from __future__ import annotations

import re
import threading
from fractions import Fraction

import av
import numpy as np
import pytest

from hal.media import MediaPacket, VideoFormat
from simulator.camera import SimCamera, SourceVideoError, open_h264_encoder
from simulator.clock import VirtualClock
from simulator.pattern import read_frame, render_frame

FMT_360P = VideoFormat(width=640, height=360, fps=30, keyframe_interval_s=1.0, bitrate_bps=1_000_000)
FMT_180P = VideoFormat(width=320, height=180, fps=30, keyframe_interval_s=1.0, bitrate_bps=1_000_000)


def nal_types(data: bytes) -> list[int]:
    """NAL unit types of an Annex B access unit, in order."""
    return [data[m.end()] & 0x1F for m in re.finditer(b"\x00\x00\x01", data)]


def capture(camera: SimCamera, clock: VirtualClock, duration_us: int) -> list[tuple[int, MediaPacket]]:
    """Run the camera for `duration_us`, recording (delivery time, packet)."""
    got: list[tuple[int, MediaPacket]] = []
    camera.start(lambda packet: got.append((clock.monotonic_us(), packet)))
    clock.advance(duration_us)
    return got


def decode(packets: list[MediaPacket], height: int) -> list[np.ndarray]:
    decoder = av.CodecContext.create("h264", "r")
    lumas = []
    for packet in packets:
        lumas.extend(f.to_ndarray()[:height] for f in decoder.decode(av.Packet(packet.data)))
    lumas.extend(f.to_ndarray()[:height] for f in decoder.decode(None))
    return lumas


def test_three_seconds_one_packet_per_frame_keyframes_on_the_grid():
    clock = VirtualClock()
    t0 = clock.monotonic_us()
    camera = SimCamera(clock, FMT_360P)
    got = capture(camera, clock, 3_000_000 - 1)  # frames 0..89; frame 90 is due at exactly t0 + 3 s
    packets = [p for _, p in got]

    assert len(packets) == 90 and camera.frame_count == 90
    assert [i for i, p in enumerate(packets) if p.keyframe] == [0, 30, 60]
    assert [p.timestamp_us for p in packets] == [t0 + round(n * 1_000_000 / 30) for n in range(90)]
    # Delivered synchronously, at the capture time itself.
    assert all(delivered == p.timestamp_us for delivered, p in got)
    assert all(p.kind == "video" and p.duration_us == 33_333 and isinstance(p.data, bytes) for p in packets)

    # Keyframes are IDRs with SPS and PPS in front (Annex B); other frames are plain slices.
    for i, packet in enumerate(packets):
        types = nal_types(packet.data)
        assert packet.data.startswith(b"\x00\x00\x00\x01") or packet.data.startswith(b"\x00\x00\x01")
        if i % 30 == 0:
            assert types.index(7) < types.index(8) < types.index(5), types
        else:
            assert 7 not in types and 5 not in types and 1 in types, types

    lumas = decode(packets, 360)
    assert [read_frame(y) for y in lumas] == [(n, p.timestamp_us // 1000) for n, p in enumerate(packets)]

    total_bits = 8 * sum(len(p.data) for p in packets)
    assert total_bits < 3 * 1_000_000 * 1.5  # near the configured rate, not unbounded


def test_keyframe_interval_and_fps_follow_the_format():
    fmt = VideoFormat(width=320, height=180, fps=25, keyframe_interval_s=2.0, bitrate_bps=500_000)
    clock = VirtualClock(start_monotonic_us=0)
    packets = [p for _, p in capture(SimCamera(clock, fmt), clock, 5_000_000 - 1)]
    assert len(packets) == 125
    assert [i for i, p in enumerate(packets) if p.keyframe] == [0, 50, 100]
    assert packets[1].timestamp_us == 40_000 and packets[1].duration_us == 40_000


def test_output_is_deterministic():
    runs = []
    for _ in range(2):
        clock = VirtualClock()
        runs.append([p for _, p in capture(SimCamera(clock, FMT_180P), clock, 1_000_000)])
    assert runs[0] == runs[1]


def test_running_the_encoder_ahead_changes_no_byte():
    # The camera encodes a few slots ahead in a thread (simulator/camera_encoder.py); a
    # custodian's footage must be what one encoder, fed frame by frame at capture time,
    # would have produced.
    clock = VirtualClock()
    got = [p for _, p in capture(SimCamera(clock, FMT_180P), clock, 2_000_000)]
    encoder = open_h264_encoder(FMT_180P)
    expected = []
    for number, packet in enumerate(got):
        frame = av.VideoFrame.from_ndarray(render_frame(number, packet.timestamp_us, 320, 180), format="yuv420p")
        frame.pts, frame.time_base = packet.timestamp_us, Fraction(1, 1_000_000)
        expected.extend(bytes(p) for p in encoder.encode(frame))
    assert [p.data for p in got] == expected


def test_no_encoder_thread_outlives_the_camera():
    before = threading.active_count()
    clock = VirtualClock()
    camera = SimCamera(clock, FMT_180P)
    for _ in range(20):   # a shift's worth of stops, starts and pulled cords
        camera.start(lambda p: None)
        clock.advance(100_000)
        camera.disconnect()
        clock.advance(50_000)
        camera.reconnect()
        clock.advance(50_000)
        camera.stop()
    camera.close()
    assert threading.active_count() == before


def test_stop_ends_delivery_and_restart_begins_with_a_keyframe():
    clock = VirtualClock()
    camera = SimCamera(clock, FMT_180P)
    got: list[MediaPacket] = []
    camera.start(got.append)
    clock.advance(500_000)
    assert len(got) == 16  # frames at 0 .. 500 ms inclusive
    camera.stop()
    camera.stop()  # twice is fine
    clock.advance(1_000_000)
    assert len(got) == 16
    assert clock.pending_timers() == 0

    restart_us = clock.monotonic_us()
    camera.start(got.append)
    clock.advance(100_000)
    assert got[16].keyframe and got[16].timestamp_us == restart_us
    # Frame numbers keep counting across a restart, so every burned-in number is unique.
    assert [read_frame(y)[0] for y in decode(got[16:], 180)] == [16, 17, 18, 19]


def test_start_twice_is_an_error():
    clock = VirtualClock()
    camera = SimCamera(clock, FMT_180P)
    camera.start(lambda p: None)
    with pytest.raises(RuntimeError):
        camera.start(lambda p: None)


def test_sink_may_stop_the_camera_from_inside_the_callback():
    clock = VirtualClock()
    camera = SimCamera(clock, FMT_180P)
    got = []

    def sink(packet):
        got.append(packet)
        if len(got) == 3:
            camera.stop()

    camera.start(sink)
    clock.advance(1_000_000)
    assert len(got) == 3


def test_disconnect_leaves_a_visible_gap_and_reconnect_starts_with_an_idr():
    clock = VirtualClock(start_monotonic_us=0)
    camera = SimCamera(clock, FMT_180P)
    got: list[MediaPacket] = []
    camera.start(got.append)
    clock.advance(200_000 - 1)  # frames 0..5
    camera.disconnect()
    clock.advance(300_000)  # slots 6..14 pass undelivered
    camera.reconnect()
    clock.advance(100_000)  # frames 15..17
    assert camera.frames_missed == 9 and camera.frame_count == 9
    numbers = [read_frame(y)[0] for y in decode(got, 180)]
    assert numbers == [0, 1, 2, 3, 4, 5, 15, 16, 17]
    assert got[6].keyframe and nal_types(got[6].data)[:2] == [7, 8]
    assert got[6].timestamp_us == round(15 * 1_000_000 / 30)


def make_source_video(path, frames: int = 10, fps: int = 10, width: int = 160, height: int = 96) -> list[int]:
    """A tiny H.264 MP4 whose frame i is a flat grey of level 20 + 20*i. Returns the levels."""
    levels = [20 + 20 * i for i in range(frames)]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "10"}
        for i, level in enumerate(levels):
            yuv = np.full((height * 3 // 2, width), 128, np.uint8)
            yuv[:height] = level
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return levels


def test_source_video_plays_at_its_own_speed_pillarboxed_and_looping(tmp_path):
    path = tmp_path / "source.mp4"
    levels = make_source_video(path)   # 10 frames at 10 fps, 160x96 (5:3)
    clock = VirtualClock()
    camera = SimCamera(clock, FMT_180P, source_path=str(path))
    packets = [p for _, p in capture(camera, clock, 2_000_000 - 1)]
    assert len(packets) == 60 and [i for i, p in enumerate(packets) if p.keyframe] == [0, 30]
    lumas = decode(packets, 180)
    assert [read_frame(y) for y in lumas] == [(n, p.timestamp_us // 1000) for n, p in enumerate(packets)]
    # Below the strip is the source picture at 1.0x: a 10 fps clip on a 30 fps camera shows
    # each frame three times and loops after 1 s. 5:3 in a 16:9 frame is pillarboxed:
    # 300 px wide, centred on black (simulator/source_frames.py, docs/simulator.md).
    inside = [float(y[60:, 20:300].mean()) for y in lumas]
    expected = [levels[(n // 3) % 10] for n in range(60)]
    assert np.allclose(inside, expected, atol=6), list(zip(inside, expected))
    bars = [max(float(y[60:, :8].mean()), float(y[60:, -8:].mean())) for y in lumas]
    assert max(bars) < 16 + 6, bars


def test_source_video_errors_are_clear(tmp_path):
    clock = VirtualClock()
    with pytest.raises(SourceVideoError, match="cannot open"):
        SimCamera(clock, FMT_180P, source_path=str(tmp_path / "missing.mp4"))

    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"this is not a video" * 100)
    with pytest.raises(SourceVideoError):
        SimCamera(clock, FMT_180P, source_path=str(garbage))

    audio_only = tmp_path / "audio.m4a"
    with av.open(str(audio_only), "w") as container:
        stream = container.add_stream("aac", rate=48_000)
        stream.layout = "mono"
        for i in range(5):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 48_000, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(SourceVideoError, match="no video stream"):
        SimCamera(clock, FMT_180P, source_path=str(audio_only))
    assert issubclass(SourceVideoError, ValueError)


def test_invalid_formats_are_refused():
    clock = VirtualClock()
    with pytest.raises(ValueError):
        SimCamera(clock, VideoFormat(641, 360, 30, 1.0, 1_000_000))
    with pytest.raises(ValueError):
        SimCamera(clock, VideoFormat(640, 360, 0, 1.0, 1_000_000))
    with pytest.raises(ValueError):
        SimCamera(clock, VideoFormat(640, 360, 30, 1.0, 1_000_000, codec="h265"))
