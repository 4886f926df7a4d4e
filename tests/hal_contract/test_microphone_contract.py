"""Microphone: AAC-LC frames on the board clock, as the segment writer and the notice
finder rely on; on the simulator and on the Pi backend through the real arecord."""
from __future__ import annotations

import av

from hal.media import MediaPacket

AAC_FRAME_SAMPLES = 1024
# The encoder's priming: its first frame starts up to one frame before start().
PRIMING_FRAMES = 1


def capture(rig, duration_s: float) -> list[MediaPacket]:
    packets: list[MediaPacket] = []
    rig.microphone.start(packets.append)
    rig.run_for(duration_s)
    return packets


def audio_specific_config(sample_rate_hz: int, channels: int) -> bytes:
    """ISO 14496-3 AudioSpecificConfig for AAC-LC: what a muxer writes from audio_format alone."""
    rates = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000]
    bits = (2 << 11) | (rates.index(sample_rate_hz) << 7) | (channels << 3)
    return bits.to_bytes(2, "big")


def test_audio_format_is_mono_aac_lc(microphone_rig):
    fmt = microphone_rig.microphone.audio_format
    assert (fmt.codec, fmt.channels) == ("aac", 1)
    assert fmt.sample_rate_hz > 0 and fmt.bitrate_bps > 0


def test_frames_follow_each_other_on_the_board_clock(microphone_rig):
    rig = microphone_rig
    fmt = rig.microphone.audio_format
    frame_us = AAC_FRAME_SAMPLES * 1_000_000 / fmt.sample_rate_hz
    start_us = rig.clock.monotonic_us()
    packets = capture(rig, 1.0)
    assert len(packets) >= 40
    assert all(p.kind == "audio" and p.keyframe and p.data for p in packets)
    assert all(abs(p.duration_us - frame_us) <= 1 for p in packets)
    stamps = [p.timestamp_us for p in packets]
    assert all(abs((b - a) - frame_us) <= 1 for a, b in zip(stamps, stamps[1:]))
    assert start_us - PRIMING_FRAMES * frame_us - 1 <= stamps[0] and stamps[-1] <= rig.clock.monotonic_us()


def test_frames_decode_from_the_audio_format_alone(microphone_rig):
    rig = microphone_rig
    fmt = rig.microphone.audio_format
    packets = capture(rig, 0.5)
    decoder = av.CodecContext.create("aac", "r")
    decoder.extradata = audio_specific_config(fmt.sample_rate_hz, fmt.channels)
    frames = [f for p in packets for f in decoder.decode(av.Packet(p.data))]
    assert frames and all(f.samples == AAC_FRAME_SAMPLES and f.sample_rate == fmt.sample_rate_hz
                          for f in frames)


def test_stop_is_final_and_idempotent_and_a_restart_continues_later(microphone_rig):
    rig = microphone_rig
    first = capture(rig, 0.3)
    rig.microphone.stop()
    delivered = len(first)
    rig.run_for(0.3)
    rig.microphone.stop()
    assert len(first) == delivered
    second = capture(rig, 0.3)
    rig.microphone.stop()
    assert second and second[0].timestamp_us > first[-1].timestamp_us
