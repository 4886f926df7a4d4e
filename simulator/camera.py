"""Simulated camera: real H.264 from a burn-in pattern or a video file (SIM-1).

With a video file the camera films the file's world: capture time t shows the
source frame at source time t - t_origin, t_origin being the camera's first
start() (simulator/source_frames.py maps time to frames and letterboxes). A
soundtrack attached with attach_soundtrack() plays the file's audio into the air
on the same timeline; it starts and stops with the camera, but a pulled cord
(disconnect) does not silence it: the room keeps its sound whether or not the
camera sees.

Frames are captured on the clock: frame k after start() at
t0 + round(k * 1e6 / fps), each callback scheduling the next, and each frame's
access unit is handed to the sink inside the clock callback, exactly like
picamera2's encoder callback on the device. The encode itself runs a few frames
ahead in a thread of its own (simulator/camera_encoder.py), as a hardware encoder
runs beside the CPU; the bytes and the delivery times are the same. The encoder
is set up to behave like the Pi's hardware encoder as the firmware sees it
(hal.media.VideoFormat): one access unit per frame with no delay, no B-frames,
an IDR every keyframe_interval_s with SPS/PPS in front of it (Annex B).
"""
from __future__ import annotations

import threading
from typing import Protocol

import numpy as np

from hal.camera import Camera
from hal.clock import Clock, Timer
from hal.media import MediaPacket, PacketSink, VideoFormat
from simulator.camera_encoder import EncoderRun, open_h264_encoder  # noqa: F401 (replay.py, tests import it from here)
from simulator.pattern import overlay_code, render_frame
from simulator.source_frames import SourceFrames, SourceVideoError  # noqa: F401 (tools/run.py catches it from here)


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
        # The encoder runs ahead of the clock in a thread (simulator/camera_encoder.py);
        # None until the next delivered slot needs one (an IDR first, as on a fresh encoder).
        self._run: EncoderRun | None = None
        self._cancelled_runs: list[EncoderRun] = []
        self._connected = True
        self._t0_us = 0
        self._ticks_since_start = 0
        # Frame numbers count every capture slot for the camera's lifetime, so a
        # disconnection shows as a visible gap in the burned-in numbers.
        self._next_frame_number = 0
        self._frame_count = 0
        self._frames_missed = 0
        self.last_picture: np.ndarray | None = None  # latest yuv420p picture, for a preview UI
        self.last_picture_us: int | None = None      # its capture time (monotonic)

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
            self._cancel_run()  # a fresh encoder: the first frame is an IDR
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
            self._cancel_run()  # nothing is buffered in a zero-latency encoder
            if self._soundtrack is not None:
                self._soundtrack.stop()

    def close(self) -> None:
        self.stop()
        self._join_cancelled_runs()  # no encoder thread outlives the camera
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
            self._cancel_run()

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
            tick = self._ticks_since_start
            self._next_frame_number += 1
            self._ticks_since_start += 1
            self._schedule_next()
            if not self._connected:
                self._frames_missed += 1
                return
            if self._run is None:
                self._run = self._start_run(frame_number, tick)
            slot = self._run.take(frame_number)
            if slot.timestamp_us != timestamp_us:
                raise RuntimeError(f"encoder run out of step at frame {frame_number}: "
                                   f"{slot.timestamp_us} µs, slot {timestamp_us} µs")
            self.last_picture, self.last_picture_us = slot.picture, timestamp_us
            self._frame_count += 1
            sink(MediaPacket(kind="video", data=slot.data, timestamp_us=timestamp_us,
                             duration_us=self._duration_us, keyframe=slot.keyframe))

    def _start_run(self, frame_number: int, tick: int) -> EncoderRun:
        fps, t0_us, fmt = self._format.fps, self._t0_us, self._format
        return EncoderRun(
            frame_number, tick,
            slot_time_us=lambda k: t0_us + round(k * 1_000_000 / fps),
            picture=self._picture,
            open_encoder=lambda: open_h264_encoder(
                fmt, self._encoder_threads, adaptive_quant=self._source is not None,
                constant_bitrate=self._constant_bitrate),
        )

    def _cancel_run(self) -> None:
        if self._run is not None:
            self._run.cancel()
            # Kept until close() joins them; finished ones are dropped (a long shift
            # starts and stops the camera many times).
            self._cancelled_runs = [run for run in self._cancelled_runs if run.is_alive()]
            self._cancelled_runs.append(self._run)
            self._run = None

    def _join_cancelled_runs(self) -> None:
        while self._cancelled_runs:
            self._cancelled_runs.pop().join()

    def _picture(self, frame_number: int, timestamp_us: int) -> np.ndarray:
        """What slot (frame_number, timestamp_us) shows."""
        width, height = self._format.width, self._format.height
        if self._source is None:
            return render_frame(frame_number, timestamp_us, width, height)
        picture = self._source.picture_at(timestamp_us - self._source_origin_us)
        overlay_code(picture[:height], frame_number, timestamp_us // 1000)
        return picture
