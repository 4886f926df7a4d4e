"""Replaying pre-encoded media on the clock, for benchmarks of the firmware itself.

A benchmark of the firmware's own cost must not pay for the simulated encoder, so
these parts encode a few GOPs once and then deliver them again and again with
fresh timestamps, exactly as often as a live camera and microphone would.
"""
from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

from hal.camera import Camera
from hal.clock import Clock, Timer
from hal.media import AudioFormat, MediaPacket, PacketSink, VideoFormat
from hal.microphone import Microphone
from simulator.audio import BLOCK_SAMPLES, open_aac_encoder
from simulator.camera import open_h264_encoder
from simulator.pattern import render_frame


def encode_video_loop(video: VideoFormat, gops: int = 2) -> list[tuple[bytes, bool]]:
    """`gops` GOPs of the synthetic pattern at a constant bitrate, as (data, keyframe)."""
    encoder = open_h264_encoder(video, constant_bitrate=True)
    frames = max(1, round(video.fps * video.keyframe_interval_s)) * gops
    out: list[tuple[bytes, bool]] = []
    for n in range(frames):
        frame = av.VideoFrame.from_ndarray(render_frame(n, n * 33_333, video.width, video.height), format="yuv420p")
        frame.pts, frame.time_base = round(n * 1e6 / video.fps), Fraction(1, 1_000_000)
        out.extend((bytes(p), p.is_keyframe) for p in encoder.encode(frame))
    return out


def encode_audio_loop(audio: AudioFormat, blocks: int = 94) -> list[bytes]:
    encoder = open_aac_encoder(audio)
    t = np.arange(blocks * BLOCK_SAMPLES) / audio.sample_rate_hz
    pcm = (0.03 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    out = []
    for k in range(blocks):
        frame = av.AudioFrame.from_ndarray(pcm[k * BLOCK_SAMPLES:(k + 1) * BLOCK_SAMPLES].reshape(1, -1),
                                           format="fltp", layout="mono")
        frame.sample_rate, frame.pts = audio.sample_rate_hz, k * BLOCK_SAMPLES
        frame.time_base = Fraction(1, audio.sample_rate_hz)
        out.extend(bytes(p) for p in encoder.encode(frame))
    return out


class _Replayer:
    def __init__(self, clock: Clock, kind: str, payloads: list[tuple[bytes, bool]], period_us: float) -> None:
        self._clock, self._kind, self._payloads, self._period_us = clock, kind, payloads, period_us
        self._sink: PacketSink | None = None
        self._timer: Timer | None = None
        self._t0_us = 0
        self._n = 0

    def start(self, sink: PacketSink) -> None:
        self._sink, self._t0_us, self._n = sink, self._clock.monotonic_us(), 0
        self._schedule()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._sink = self._timer = None

    def _schedule(self) -> None:
        at_us = self._t0_us + round(self._n * self._period_us)
        self._timer = self._clock.call_at(at_us, lambda: self._deliver(at_us))

    def _deliver(self, at_us: int) -> None:
        sink = self._sink
        if sink is None:
            return
        data, keyframe = self._payloads[self._n % len(self._payloads)]
        self._n += 1
        self._schedule()
        sink(MediaPacket(self._kind, data, at_us, round(self._period_us), keyframe))


class ReplayCamera(Camera):
    def __init__(self, clock: Clock, video: VideoFormat, gops: int = 2) -> None:
        self._format = video
        self._replayer = _Replayer(clock, "video", encode_video_loop(video, gops), 1e6 / video.fps)

    @property
    def video_format(self) -> VideoFormat:
        return self._format

    def start(self, sink: PacketSink) -> None:
        self._replayer.start(sink)

    def stop(self) -> None:
        self._replayer.stop()


class ReplayMicrophone(Microphone):
    def __init__(self, clock: Clock, audio: AudioFormat = AudioFormat()) -> None:
        self._format = audio
        payloads = [(data, True) for data in encode_audio_loop(audio)]
        self._replayer = _Replayer(clock, "audio", payloads, BLOCK_SAMPLES * 1e6 / audio.sample_rate_hz)

    @property
    def audio_format(self) -> AudioFormat:
        return self._format

    def start(self, sink: PacketSink) -> None:
        self._replayer.start(sink)

    def stop(self) -> None:
        self._replayer.stop()
