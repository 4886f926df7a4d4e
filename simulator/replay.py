"""Replaying pre-encoded media on the clock, for benchmarks of the firmware itself.

A benchmark of the firmware's own cost must not pay for the simulated encoder, so
these parts encode a few GOPs once and then deliver them again and again with
fresh timestamps, exactly as often as a live camera and microphone would.

By default every delivery of one loop position hands out the *same* bytes object: cheap,
but a pre-event buffer then holds references to a few GOPs, not 120 s of bytes. With
`distinct_payloads=True` the camera delivers a fresh bytes object per packet, as a real
camera does: the loop's packet with an H.264 SEI NAL unit (user data unregistered, our
UUID) prepended that carries the packet counter, so every packet's bytes differ and the
stream stays valid H.264 (decoders skip unknown user data). 32 bytes per packet, under
0.1 % of 10 Mbit/s. `packet_counter()` reads the counter back (e.g. from exported footage).

The counter is the capture slot since the part was built (it keeps counting while the
cord is pulled), and `starts` logs (first slot, monotonic µs) per start(), so
`capture_us(counter)` is the instant a packet was captured: what the shift suite checks
recorded footage's timestamps against. The camera's cord can be pulled and the microphone
can fail, as the simulator's own parts can (`replay_board`: a scenario run on replay parts).
"""
from __future__ import annotations

import dataclasses
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


# user_data_unregistered (SEI payload type 5): a 16-byte UUID, then our 8-byte counter.
_SEI_UUID = bytes.fromhex("6f70656e6277632d7265706c61792d31")   # "openbwc-replay-1"
_SEI_NAL = b"\x06\x05\x18" + _SEI_UUID    # NAL header (SEI), payload type 5, 24 bytes
_SEI_PREFIX = b"\x00\x00\x00\x01" + _SEI_NAL


def _counter_bytes(n: int) -> bytes:
    """n in 8 base-255 digits, each + 1: never a zero byte, so no start-code emulation
    (and no emulation-prevention bytes to insert) whatever the counter."""
    digits = []
    for _ in range(8):
        n, digit = divmod(n, 255)
        digits.append(digit + 1)
    return bytes(reversed(digits))


def with_counter(data: bytes, n: int) -> bytes:
    """A fresh copy of an Annex B access unit with counter `n` in a leading SEI."""
    return b"".join((_SEI_PREFIX, _counter_bytes(n), b"\x80", data))


def packet_counter(data: bytes) -> int | None:
    """The counter `with_counter` put in `data` (Annex B, or length-prefixed as in an MP4),
    or None if it carries none."""
    at = data.find(_SEI_NAL)
    if at < 0:
        return None
    n = 0
    for digit in data[at + len(_SEI_NAL):at + len(_SEI_NAL) + 8]:
        n = n * 255 + digit - 1
    return n


def save_loop(loop: list[tuple[bytes, bool]], path: str) -> None:
    """Packets as (1-byte keyframe flag, 4-byte big-endian length, data) records."""
    with open(path, "wb") as f:
        for data, keyframe in loop:
            f.write(bytes([keyframe]) + len(data).to_bytes(4, "big") + data)


def load_loop(path: str) -> list[tuple[bytes, bool]]:
    with open(path, "rb") as f:
        blob = f.read()
    loop, at = [], 0
    while at < len(blob):
        size = int.from_bytes(blob[at + 1:at + 5], "big")
        loop.append((blob[at + 5:at + 5 + size], bool(blob[at])))
        at += 5 + size
    return loop


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
    def __init__(self, clock: Clock, kind: str, payloads: list[tuple[bytes, bool]], period_us: float,
                 distinct: bool = False) -> None:
        self._clock, self._kind, self._payloads, self._period_us = clock, kind, payloads, period_us
        self._distinct = distinct
        self.delivered = 0   # packets delivered since construction, across restarts
        self.starts: list[tuple[int, int]] = []   # (first capture slot, monotonic µs) per start()
        self._slot_base = 0
        self.connected = True       # the camera's cord; the microphone's capture working
        self._rekey = False         # at the next delivery, restart the loop at its keyframe
        self._loop_origin = 0
        self._sink: PacketSink | None = None
        self._timer: Timer | None = None
        self._t0_us = 0
        self._n = 0

    def start(self, sink: PacketSink) -> None:
        if self.starts:
            self._slot_base += self._n
        self._sink, self._t0_us, self._n, self._loop_origin = sink, self._clock.monotonic_us(), 0, 0
        self.starts.append((self._slot_base, self._t0_us))
        self._schedule()

    def capture_us(self, slot: int) -> int:
        """When the packet of capture slot `slot` was (or would have been) captured."""
        base, t0_us = max((s for s in self.starts if s[0] <= slot), default=self.starts[0])
        return t0_us + round((slot - base) * self._period_us)

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
        slot, n = self._slot_base + self._n, self._n
        self._n += 1
        self._schedule()
        if not self.connected:
            return
        if self._rekey:   # back from a pulled cord: a keyframe first, as a camera resumes
            self._loop_origin, self._rekey = n, False
        data, keyframe = self._payloads[(n - self._loop_origin) % len(self._payloads)]
        if self._distinct:
            data = with_counter(data, slot)
        self.delivered += 1
        sink(MediaPacket(self._kind, data, at_us, round(self._period_us), keyframe))


class ReplayCamera(Camera):
    def __init__(self, clock: Clock, video: VideoFormat, gops: int = 2, distinct_payloads: bool = False,
                 loop: list[tuple[bytes, bool]] | None = None) -> None:
        """`loop`: packets encode_video_loop(video) made elsewhere (the memory suite encodes
        in the parent, so the child's heap never held an x264 encoder)."""
        self._format = video
        self._replayer = _Replayer(clock, "video", loop or encode_video_loop(video, gops), 1e6 / video.fps,
                                   distinct_payloads)

    @property
    def video_format(self) -> VideoFormat:
        return self._format

    def start(self, sink: PacketSink) -> None:
        self._replayer.start(sink)

    def stop(self) -> None:
        self._replayer.stop()

    @property
    def replayer(self) -> _Replayer:
        return self._replayer

    @property
    def frame_count(self) -> int:
        return self._replayer.delivered

    def disconnect(self) -> None:
        """The cord is pulled: no frames; capture slots keep counting."""
        self._replayer.connected = False

    def reconnect(self) -> None:
        self._replayer.connected, self._replayer._rekey = True, True


class ReplayMicrophone(Microphone):
    def __init__(self, clock: Clock, audio: AudioFormat = AudioFormat()) -> None:
        self._format = audio
        payloads = [(data, True) for data in encode_audio_loop(audio)]
        self._replayer = _Replayer(clock, "audio", payloads, BLOCK_SAMPLES * 1e6 / audio.sample_rate_hz)
        self._healed = False

    @property
    def audio_format(self) -> AudioFormat:
        return self._format

    def start(self, sink: PacketSink) -> None:
        if self._healed:
            self._replayer.connected, self._healed = True, False
        self._replayer.start(sink)

    def stop(self) -> None:
        self._replayer.stop()

    @property
    def replayer(self) -> _Replayer:
        return self._replayer

    def fail(self) -> None:
        """The capture crashes: nothing more, even after a restart, until heal()."""
        self._replayer.connected, self._healed = False, False

    def heal(self) -> None:
        """Works again from the firmware's next start() of it (as the simulator's microphone)."""
        self._healed = True


def replay_board(video: VideoFormat | None = None, distinct_payloads: bool = False):
    """A drop-in for simulator.board.build_sim_board (same arguments) whose camera and
    microphone are replay parts: a scenario run without paying for the simulated encoders.
    `video`: the replayed format (default: the scenario's [camera])."""
    from simulator.board import build_sim_board

    def build(clock, device_dir, storage_dir, scenario_video, *args, **kwargs):
        world = build_sim_board(clock, device_dir, storage_dir, scenario_video, *args, **kwargs)
        camera = ReplayCamera(clock, video or scenario_video, distinct_payloads=distinct_payloads)
        microphone = ReplayMicrophone(clock)
        board = dataclasses.replace(world.board, camera=camera, microphone=microphone)
        return dataclasses.replace(world, board=board, camera=camera)
    return build
