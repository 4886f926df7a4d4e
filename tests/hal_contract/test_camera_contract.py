"""Camera: what the pre-event buffer, the segment writer and the camera watchdog rely on
(BUF-*, FLT-1): H.264 access units on the board's clock, an IDR first, stop() bounded."""
from __future__ import annotations

import time

import av
import pytest

from backends import VIDEO
from hal.media import MediaPacket

# What "bounded" means for stop(): the firmware's watchdog gives the camera this long.
STOP_BOUND_S = 2.0
_NAL_SPS, _NAL_PPS, _NAL_IDR = 7, 8, 5


def nal_types(data: bytes) -> list[int]:
    types, position = [], 0
    while (position := data.find(b"\x00\x00\x01", position)) != -1 and position + 3 < len(data):
        types.append(data[position + 3] & 0x1F)
        position += 3
    return types


def capture(rig, duration_s: float) -> list[MediaPacket]:
    packets: list[MediaPacket] = []
    rig.camera.start(packets.append)
    rig.run_for(duration_s)
    return packets


def timed_stop(camera) -> float:
    began_s = time.monotonic()
    camera.stop()
    return time.monotonic() - began_s


def test_video_format_is_what_the_board_was_configured_for(camera_rig):
    fmt = camera_rig.camera.video_format
    assert fmt.codec == "h264"
    assert (fmt.width, fmt.height, fmt.fps) == (VIDEO.width, VIDEO.height, VIDEO.fps)
    assert fmt.keyframe_interval_s == pytest.approx(VIDEO.keyframe_interval_s)
    assert fmt.bitrate_bps == VIDEO.bitrate_bps


def test_the_first_packet_is_a_keyframe_a_decoder_can_start_from(camera_rig):
    packets = capture(camera_rig, 0.5)
    first = packets[0]
    assert first.kind == "video" and first.keyframe
    types = nal_types(first.data)
    assert first.data.startswith((b"\x00\x00\x01", b"\x00\x00\x00\x01"))   # Annex B
    assert _NAL_SPS in types and _NAL_PPS in types and types.index(_NAL_SPS) < types.index(_NAL_IDR)
    # A custodian's player starts a segment here: the first access unit decodes on its own.
    decoder = av.CodecContext.create("h264", "r")
    frames = decoder.decode(av.Packet(first.data)) + decoder.decode(None)
    assert frames and (frames[0].width, frames[0].height) == (VIDEO.width, VIDEO.height)


def test_packets_arrive_at_the_frame_rate_stamped_on_the_board_clock(camera_rig):
    rig = camera_rig
    start_us = rig.clock.monotonic_us()
    packets = capture(rig, 1.0)
    frame_us = 1_000_000 / VIDEO.fps
    # Never more than the sensor made; fewer by the encoder's latency at most (a real encoder,
    # picamera2's libav one on a Pi 5, holds a few frames; the spacing below is exact anyway).
    assert VIDEO.fps // 2 <= len(packets) <= VIDEO.fps + 1
    stamps = [p.timestamp_us for p in packets]
    assert all(b > a for a, b in zip(stamps, stamps[1:])), "timestamps must strictly increase"
    assert all(abs((b - a) - frame_us) <= 0.1 * frame_us for a, b in zip(stamps, stamps[1:]))
    # Capture times on Clock.monotonic_us(), comparable with button edges and audio.
    assert start_us - frame_us <= stamps[0] and stamps[-1] <= rig.clock.monotonic_us()
    assert all(p.kind == "video" and p.data and p.duration_us == round(frame_us) for p in packets)


def test_keyframes_come_at_least_every_keyframe_interval(camera_rig):
    packets = capture(camera_rig, 2.0)
    keyframe_stamps = [p.timestamp_us for p in packets if p.keyframe]
    bound_us = VIDEO.keyframe_interval_s * 1_000_000 + 1_000_000 / VIDEO.fps
    assert len(keyframe_stamps) >= 3
    assert all(b - a <= bound_us for a, b in zip(keyframe_stamps, keyframe_stamps[1:]))
    assert all(_NAL_SPS in nal_types(p.data) for p in packets if p.keyframe)


def test_stop_is_bounded_idempotent_and_final(camera_rig):
    rig = camera_rig
    packets = capture(rig, 0.5)
    assert timed_stop(rig.camera) < STOP_BOUND_S
    delivered = len(packets)
    rig.run_for(0.5)
    assert len(packets) == delivered, "no packet may reach the sink after stop() returned"
    assert timed_stop(rig.camera) < STOP_BOUND_S      # a second stop is harmless
    assert not rig.camera.stuck()


def test_stop_before_any_start_is_harmless(camera_rig):
    assert timed_stop(camera_rig.camera) < STOP_BOUND_S
    assert not camera_rig.camera.stuck()


def test_stop_then_start_again_gives_a_fresh_stream_later_in_time(camera_rig):
    # The camera watchdog's restart (FLT-1): the new session starts on an IDR and its
    # timestamps follow the old session's, never overlap them.
    rig = camera_rig
    first = capture(rig, 0.5)
    rig.camera.stop()
    rig.run_for(0.2)
    second = capture(rig, 0.5)
    rig.camera.stop()
    assert first and second
    assert second[0].keyframe and _NAL_SPS in nal_types(second[0].data)
    assert second[0].timestamp_us > first[-1].timestamp_us
    stamps = [p.timestamp_us for p in second]
    assert stamps == sorted(set(stamps))


def test_a_new_session_never_feeds_the_old_sink(camera_rig):
    rig = camera_rig
    old = capture(rig, 0.3)
    rig.camera.stop()
    delivered = len(old)
    capture(rig, 0.3)
    assert len(old) == delivered


def test_a_healthy_camera_is_never_stuck(camera_rig):
    rig = camera_rig
    assert not rig.camera.stuck()
    capture(rig, 0.3)
    assert not rig.camera.stuck()
    rig.camera.stop()
    assert not rig.camera.stuck()
