"""Simulated camera: real H.264 from a burn-in pattern or a video file (SIM-1).

With a video file the camera films the file's world: capture time t shows the
source frame at source time t - t_origin, t_origin being the camera's first
start() (simulator/source_frames.py maps time to frames and letterboxes). A
soundtrack attached with attach_soundtrack() plays the file's audio into the air
on the same timeline; it starts and stops with the camera, but a pulled cord
(disconnect) does not silence it: the room keeps its sound whether or not the
camera sees.

Frames are captured on the clock: frame k after start() at
t0 + round(k * 1e6 / fps), each callback scheduling the next, and each frame is
encoded with libx264 and handed to the sink synchronously, inside the clock
callback, exactly like picamera2's encoder callback on the device. The encoder
is set up to behave like the Pi's hardware encoder as the firmware sees it
(hal.media.VideoFormat): one access unit per frame with no delay, no B-frames,
an IDR every keyframe_interval_s with SPS/PPS in front of it (Annex B).
"""
from __future__ import annotations

import threading
from fractions import Fraction
from typing import Protocol

import av
import numpy as np

from hal.camera import Camera
from hal.clock import Clock, Timer
from hal.media import MediaPacket, PacketSink, VideoFormat
from simulator.pattern import overlay_code, render_frame
from simulator.source_frames import SourceFrames, SourceVideoError  # noqa: F401 (tools/run.py catches it from here)

_TIME_BASE = Fraction(1, 1_000_000)  # pts in µs, the same unit as the clock


def open_h264_encoder(
    video_format: VideoFormat, threads: int = 1, adaptive_quant: bool = False,
    constant_bitrate: bool = False,
) -> av.VideoCodecContext:
    """An x264 encoder that emits one Annex B access unit per input frame, at once.

    adaptive_quant gives flat areas (the frame-number strip) a lower QP than busy
    ones, so a noisy source video cannot starve the strip into skipped (stale)
    macroblocks; it costs ~20% speed, and the synthetic pattern does not need it.
    """
    gop_frames = max(1, round(video_format.fps * video_format.keyframe_interval_s))
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width = video_format.width
    encoder.height = video_format.height
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = _TIME_BASE
    encoder.framerate = Fraction(video_format.fps, 1)
    encoder.bit_rate = video_format.bitrate_bps
    encoder.gop_size = gop_frames
    encoder.max_b_frames = 0
    # No AV_CODEC_FLAG_GLOBAL_HEADER: libx264 then repeats SPS/PPS before every IDR.
    encoder.options = {
        "preset": "ultrafast",
        "tune": "zerolatency",  # no lookahead, no frame delay: one packet out per frame in
        "bf": "0",
        "keyint_min": str(gop_frames),
        "sc_threshold": "0",  # no scene-cut IDRs: keyframes exactly on the GOP grid (BUF-2 tests)
        "aq-mode": "2" if adaptive_quant else "0",  # ultrafast's default is 0
        # A 1 s VBV keeps the rate camera-like (the Pi's encoder is near-CBR), so
        # the pre-event buffer's byte bound behaves as it will on hardware.
        "maxrate": str(video_format.bitrate_bps),
        "bufsize": str(video_format.bitrate_bps),
        # One thread: bit-identical output on every machine (sliced threads would
        # make the slice count, and so the bitstream, depend on the CPU count).
        "threads": str(threads),
    }
    if constant_bitrate:
        # Pad with filler NAL units to exactly the configured rate, like a
        # hardware encoder in CBR mode: benchmarks then see real byte volumes
        # even though the synthetic picture compresses far better.
        encoder.options = dict(encoder.options, **{"x264-params": "nal-hrd=cbr:filler=1"})
    encoder.open()
    return encoder


class Soundtrack(Protocol):
    """What the camera needs of simulator.source_audio.SourceAudio."""

    def start(self, origin_us: int) -> None: ...
    def stop(self) -> None: ...
    def close(self) -> None: ...


class SimCamera(Camera):
    def __init__(
        self,
        clock: Clock,
        video_format: VideoFormat,
        source_path: str | None = None,
        encoder_threads: int = 1,
        constant_bitrate: bool = False,
    ) -> None:
        if video_format.codec != "h264":
            raise ValueError(f"SimCamera encodes h264 only, not {video_format.codec!r}")
        if video_format.fps <= 0 or video_format.keyframe_interval_s <= 0 or video_format.bitrate_bps <= 0:
            raise ValueError(f"invalid video format {video_format}")
        if video_format.width % 2 or video_format.height % 2:
            raise ValueError(f"width and height must be even, got {video_format.width}x{video_format.height}")
        self._clock = clock
        self._format = video_format
        self._encoder_threads = encoder_threads
        self._constant_bitrate = constant_bitrate
        self._source = (
            SourceFrames(source_path, video_format.width, video_format.height) if source_path else None
        )
        self._soundtrack: Soundtrack | None = None
        # The source's time 0, fixed at the first start(): a restart (a watchdog's, or a
        # reboot of the same camera) continues the world's timeline rather than rewinding it.
        self._source_origin_us: int | None = None
        self._duration_us = round(1_000_000 / video_format.fps)
        # Re-entrant: a sink may call stop() from inside the delivery.
        self._lock = threading.RLock()
        self._sink: PacketSink | None = None
        self._timer: Timer | None = None
        self._encoder: av.VideoCodecContext | None = None
        self._connected = True
        self._t0_us = 0
        self._ticks_since_start = 0
        # Frame numbers count every capture slot for the camera's lifetime, so a
        # disconnection shows as a visible gap in the burned-in numbers.
        self._next_frame_number = 0
        self._frame_count = 0
        self._frames_missed = 0
        self.last_picture: np.ndarray | None = None  # latest yuv420p picture, for a preview UI

    @property
    def video_format(self) -> VideoFormat:
        return self._format

    @property
    def frame_count(self) -> int:
        """Frames delivered to the sink so far."""
        return self._frame_count

    @property
    def frames_missed(self) -> int:
        """Capture slots that passed while disconnected (not delivered)."""
        return self._frames_missed

    @property
    def is_connected(self) -> bool:
        return self._connected

    def start(self, sink: PacketSink) -> None:
        with self._lock:
            if self._sink is not None:
                raise RuntimeError("SimCamera is already started")
            self._sink = sink
            self._t0_us = self._clock.monotonic_us()
            self._ticks_since_start = 0
            self._encoder = None  # a fresh encoder: the first frame is an IDR
            if self._source_origin_us is None:
                self._source_origin_us = self._t0_us
            if self._soundtrack is not None:
                self._soundtrack.start(self._source_origin_us)
            self._schedule_next()

    def stop(self) -> None:
        """Stop delivering. When this returns the sink will not be called again."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._sink = None
            self._encoder = None  # nothing is buffered in a zero-latency encoder
            if self._soundtrack is not None:
                self._soundtrack.stop()

    def close(self) -> None:
        self.stop()
        if self._source is not None:
            self._source.close()
        if self._soundtrack is not None:
            self._soundtrack.close()

    def attach_soundtrack(self, soundtrack: Soundtrack) -> None:
        """Play `soundtrack` (the source file's audio) while the camera runs; before start()."""
        with self._lock:
            if self._sink is not None:
                raise RuntimeError("attach the soundtrack before starting the camera")
            self._soundtrack = soundtrack

    @property
    def soundtrack(self) -> Soundtrack | None:
        return self._soundtrack

    @property
    def source_origin_us(self) -> int | None:
        """Monotonic time of source time 0 (the first start()), None before it."""
        return self._source_origin_us

    # -- fault switches (FLT-1) ----------------------------------------------

    def disconnect(self) -> None:
        """The camera cord is pulled: frames stop arriving; frame numbers keep counting."""
        with self._lock:
            self._connected = False
            self._encoder = None

    def reconnect(self) -> None:
        """The cord is back: delivery resumes on the next capture slot, with an IDR."""
        with self._lock:
            self._connected = True

    # -- capture ---------------------------------------------------------------

    def _schedule_next(self) -> None:
        deadline_us = self._t0_us + round(self._ticks_since_start * 1_000_000 / self._format.fps)
        self._timer = self._clock.call_at(deadline_us, lambda: self._capture(deadline_us))

    def _capture(self, timestamp_us: int) -> None:
        with self._lock:
            sink = self._sink
            if sink is None:
                return
            frame_number = self._next_frame_number
            self._next_frame_number += 1
            self._ticks_since_start += 1
            self._schedule_next()
            if not self._connected:
                self._frames_missed += 1
                return
            packet = self._encode(frame_number, timestamp_us)
            self._frame_count += 1
            sink(packet)

    def _picture(self, frame_number: int, timestamp_us: int) -> np.ndarray:
        width, height = self._format.width, self._format.height
        if self._source is None:
            return render_frame(frame_number, timestamp_us, width, height)
        picture = self._source.picture_at(timestamp_us - self._source_origin_us)
        overlay_code(picture[:height], frame_number, timestamp_us // 1000)
        return picture

    def _encode(self, frame_number: int, timestamp_us: int) -> MediaPacket:
        if self._encoder is None:
            self._encoder = open_h264_encoder(
                self._format, self._encoder_threads, adaptive_quant=self._source is not None,
                constant_bitrate=self._constant_bitrate,
            )
        picture = self._picture(frame_number, timestamp_us)
        self.last_picture = picture
        frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
        frame.pts = timestamp_us
        frame.time_base = _TIME_BASE
        packets = self._encoder.encode(frame)
        if len(packets) != 1:
            # The firmware relies on one access unit per frame, delivered at capture time.
            raise RuntimeError(f"x264 returned {len(packets)} packets for frame {frame_number}; expected 1")
        packet = packets[0]
        return MediaPacket(
            kind="video",
            data=bytes(packet),
            timestamp_us=timestamp_us,
            duration_us=self._duration_us,
            keyframe=bool(packet.is_keyframe),
        )
