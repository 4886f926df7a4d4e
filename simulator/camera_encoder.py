"""The simulated camera's encoder, running ahead of the clock (SIM-1).

A real camera's H.264 encoder is hardware of its own: it works while the CPU runs
the firmware. The simulator gets the same parallelism by encoding the next few
capture slots in a worker thread while the virtual clock runs the firmware on the
main thread; libx264 releases the GIL, so the encode really runs on the second core.
The pictures are rendered on the clock's thread, in slot order (it would otherwise
sit waiting for the encoder, and a source file is then only ever read by one thread).

This changes nothing the firmware can observe. What a slot shows is a function of
its frame number and capture time only (the burn-in pattern, or the source file's
frame at that time), and a single-threaded x264 emits the same bytes for the same
pictures in the same order; packets are still handed to the sink at their capture
time, on the clock's thread. A run ahead is only ever thrown away, never delivered
out of turn: stop() and a pulled cord cancel it, and the next start() or
reconnection begins a fresh run with a fresh encoder, exactly as the synchronous
camera opened a fresh encoder (an IDR first).
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from fractions import Fraction

import av
import numpy as np

from hal.media import VideoFormat

_TIME_BASE = Fraction(1, 1_000_000)  # pts in µs, the same unit as the clock
# Slots encoded ahead of the clock: enough to keep the worker busy while the main
# thread runs a burst of firmware work, few enough that a cancelled run wastes
# little (at 1080p about 3 MiB of pictures).
RUN_AHEAD_FRAMES = 4


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


class EncodedSlot:
    """One capture slot's output: its Annex B access unit and the picture it shows."""

    __slots__ = ("frame_number", "timestamp_us", "picture", "data", "keyframe")

    def __init__(self, frame_number: int, timestamp_us: int, picture: np.ndarray) -> None:
        self.frame_number = frame_number
        self.timestamp_us = timestamp_us
        self.picture = picture
        self.data = b""
        self.keyframe = False


class EncoderRun:
    """Encodes slots (first_frame_number, first_tick), (+1, +1), … in a worker thread.

    `slot_time_us(tick)` gives a slot's capture time; `picture(frame_number,
    timestamp_us)` its yuv420p picture (called on the thread that calls take());
    `open_encoder()` a fresh x264 context (called on the worker).
    """

    def __init__(self, first_frame_number: int, first_tick: int,
                 slot_time_us: Callable[[int], int],
                 picture: Callable[[int, int], np.ndarray],
                 open_encoder: Callable[[], av.VideoCodecContext]) -> None:
        self._next_frame_number = first_frame_number
        self._next_tick = first_tick
        self._slot_time_us = slot_time_us
        self._picture = picture
        self._open_encoder = open_encoder
        self._to_encode: deque[EncodedSlot] = deque()
        self._encoded: deque[EncodedSlot] = deque()
        self._in_flight = 0               # submitted and not yet taken
        self._failure: BaseException | None = None
        self._cancelled = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._work, name="sim-camera-encoder", daemon=True)
        self._thread.start()

    def take(self, frame_number: int) -> EncodedSlot:
        """The slot for frame_number, encoded; keeps the next RUN_AHEAD_FRAMES submitted."""
        while self._in_flight < RUN_AHEAD_FRAMES:
            self._submit_next()
        with self._cond:
            while not self._encoded and self._failure is None:
                self._cond.wait()
            if not self._encoded:
                raise RuntimeError(f"the simulated camera's encoder failed: {self._failure}") from self._failure
            slot = self._encoded.popleft()
            self._in_flight -= 1
        if slot.frame_number != frame_number:
            # The run and the camera count slots the same way; a mismatch is a bug here.
            raise RuntimeError(f"encoder run out of step: slot {slot.frame_number}, camera {frame_number}")
        return slot

    def cancel(self) -> None:
        """Nothing more is encoded or delivered from this run."""
        with self._cond:
            self._cancelled = True
            self._to_encode.clear()
            self._encoded.clear()
            self._cond.notify_all()

    def join(self) -> None:
        self._thread.join()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _submit_next(self) -> None:
        frame_number, tick = self._next_frame_number, self._next_tick
        self._next_frame_number += 1
        self._next_tick += 1
        timestamp_us = self._slot_time_us(tick)
        slot = EncodedSlot(frame_number, timestamp_us, self._picture(frame_number, timestamp_us))
        with self._cond:
            self._to_encode.append(slot)
            self._in_flight += 1
            self._cond.notify_all()

    def _work(self) -> None:
        try:
            encoder = self._open_encoder()
            while True:
                with self._cond:
                    while not self._to_encode and not self._cancelled:
                        self._cond.wait()
                    if self._cancelled:
                        return
                    slot = self._to_encode.popleft()
                self._encode(encoder, slot)
                with self._cond:
                    if self._cancelled:
                        return
                    self._encoded.append(slot)
                    self._cond.notify_all()
        except BaseException as exc:  # handed to the clock's thread, which raises it
            with self._cond:
                self._failure = exc
                self._cond.notify_all()

    @staticmethod
    def _encode(encoder: av.VideoCodecContext, slot: EncodedSlot) -> None:
        # Zero-copy: x264 copies the picture in during encode(), and the array is never
        # written again (it is the slot's last_picture).
        frame = av.VideoFrame.from_numpy_buffer(slot.picture, format="yuv420p")
        frame.pts = slot.timestamp_us
        frame.time_base = _TIME_BASE
        packets = encoder.encode(frame)
        if len(packets) != 1:
            # The firmware relies on one access unit per frame, delivered at capture time.
            raise RuntimeError(f"x264 returned {len(packets)} packets for frame {slot.frame_number}; expected 1")
        slot.data = bytes(packets[0])
        slot.keyframe = bool(packets[0].is_keyframe)
