"""Encoded media as it crosses the HAL boundary.

Cameras and microphones hand the firmware *encoded* packets (picamera2's hardware
encoder does the same), so the firmware never touches raw pixels or PCM.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

MediaKind = Literal["video", "audio"]


@dataclass(frozen=True, slots=True)
class MediaPacket:
    """One encoded access unit (video) or one AAC frame (audio)."""

    kind: MediaKind
    data: bytes
    # Monotonic capture time of the first frame/sample in this packet, in µs,
    # on the same time base as Clock.monotonic_us().
    timestamp_us: int
    duration_us: int
    # Video: an IDR frame, preceded in `data` by its SPS and PPS (Annex B).
    # Audio: always True (every AAC frame decodes on its own).
    keyframe: bool


PacketSink = Callable[[MediaPacket], None]


@dataclass(frozen=True, slots=True)
class VideoFormat:
    """What a camera produces: H.264 Annex B, no B-frames, headers on every IDR."""

    width: int
    height: int
    fps: int
    keyframe_interval_s: float
    bitrate_bps: int
    codec: str = "h264"


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """What a microphone produces: raw AAC-LC frames (no ADTS), 1024 samples each."""

    sample_rate_hz: int = 48_000
    channels: int = 1
    bitrate_bps: int = 64_000
    codec: str = "aac"
