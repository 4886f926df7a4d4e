"""The source video's soundtrack, played into the simulated air (SIM-1).

The file's first audio stream is decoded, resampled to the air's rate with PyAV's
AudioResampler and downmixed to mono (the mean of the channels; FFmpeg's downmix
beyond stereo), then emitted into SimAir on the source's
timeline: source time 0 (the first video frame) is at monotonic `origin_us`, the
camera's first start, and the sound loops with the video on the same period
(simulator/source_frames.loop_period), so picture and sound stay together however
long the run. Audio before the first video frame is not heard; audio past the
loop period is cut, and a soundtrack shorter than the video leaves silence.

Sound goes out in chunks of `chunk_s`, each emitted on the clock at the moment it
starts to sound: the microphone's block covering a sample is captured only after
that sample's time, so it always finds it in the air, and at most one chunk is
ever decoded ahead (a one-hour file never sits in memory). After stop() the chunk
already emitted finishes playing, at most chunk_s.

Samples are emitted at `gain` times their decoded level and not clipped here: the
air adds every sound, and the microphone clips at full scale as a real one does.
"""
from __future__ import annotations

import math
import threading
from fractions import Fraction
from typing import Iterator

import av
import numpy as np

from hal.clock import Clock, Timer
from simulator.audio import SimAir
from simulator.source_frames import loop_period, open_source

DEFAULT_CHUNK_S = 0.2


def pass_start_index(origin_us: int, period_s: Fraction, rate_hz: int, n: int) -> int:
    """Air index where pass n through the file (source time n * period) begins: the
    first sample at or after that time, as SimAir.sample_index rounds."""
    return math.ceil((Fraction(origin_us, 1_000_000) + n * period_s) * rate_hz)


def pass_containing(index: int, origin_us: int, period_s: Fraction, rate_hz: int) -> int:
    """The pass n with pass_start_index(n) <= index < pass_start_index(n + 1) (0 before
    the origin)."""
    n = math.floor((Fraction(index, rate_hz) - Fraction(origin_us, 1_000_000)) / period_s)
    while pass_start_index(origin_us, period_s, rate_hz, n + 1) <= index:   # rounding at the edges
        n += 1
    while n > 0 and pass_start_index(origin_us, period_s, rate_hz, n) > index:
        n -= 1
    return max(0, n)


def _mono_resampler(frame: av.AudioFrame, rate_hz: int) -> av.AudioResampler:
    """To the air's rate, planar float. Mono and stereo keep their channels (the caller
    takes their mean); more channels go through FFmpeg's mono downmix, which weighs
    centre, sides and LFE as a mix engineer would."""
    layout = frame.layout.name if len(frame.layout.channels) <= 2 else "mono"
    return av.AudioResampler(format="fltp", layout=layout, rate=rate_hz)


class SourceAudio:
    """Plays a video file's audio into `air` while started; a file without audio is silent."""

    def __init__(self, clock: Clock, air: SimAir, path: str, gain: float = 1.0,
                 chunk_s: float = DEFAULT_CHUNK_S) -> None:
        if not (math.isfinite(gain) and gain >= 0):
            raise ValueError(f"soundtrack gain must be a finite number >= 0, got {gain!r}")
        if not (math.isfinite(chunk_s) and chunk_s > 0):
            raise ValueError(f"soundtrack chunk must be > 0 s, got {chunk_s!r}")
        self._clock, self._air, self._path, self.gain = clock, air, path, gain
        self._rate = air.sample_rate_hz
        self._chunk = max(1, round(chunk_s * self._rate))
        self._video_origin_s, self.period_s = loop_period(path)
        with open_source(path) as container:
            self.has_audio = bool(container.streams.audio)
        self._lock = threading.RLock()
        self._timer: Timer | None = None
        self._running = False
        self._origin_us: int | None = None
        self._next_index: int | None = None   # first air sample not yet emitted
        # The decoder: which pass through the file, and decoded samples not yet emitted.
        self._pass = -1
        self._container: av.container.InputContainer | None = None
        self._chunks: Iterator[tuple[int, np.ndarray]] = iter(())
        self._pending: list[tuple[int, np.ndarray]] = []   # (air index, samples), in order

    @property
    def is_playing(self) -> bool:
        return self._running

    def start(self, origin_us: int) -> None:
        """Sound from now on, source time 0 being monotonic `origin_us`. Starting again
        on the same origin continues where the sound stopped (or from now, if later)."""
        with self._lock:
            if self._running:
                return
            self._running = True
            if not self.has_audio:
                return
            if origin_us != self._origin_us:
                self._close_decoder()
                self._origin_us, self._next_index = origin_us, None
            now_index = self._air.sample_index(self._clock.monotonic_us())
            self._next_index = now_index if self._next_index is None else max(now_index, self._next_index)
            self._emit_chunk()

    def stop(self) -> None:
        with self._lock:
            self._running = False
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def close(self) -> None:
        with self._lock:
            self.stop()
            self._close_decoder()

    # -- emitting on the clock ---------------------------------------------------------

    def _emit_chunk(self) -> None:
        with self._lock:
            if not self._running:
                return
            start = self._next_index
            samples = self._render(start, self._chunk)
            if self.gain != 1.0:
                samples *= np.float32(self.gain)
            self._air.emit(start, samples)
            self._next_index = start + self._chunk
            self._timer = self._clock.call_at(self._air.time_us(self._next_index), self._emit_chunk)

    # -- the timeline --------------------------------------------------------------------

    def _pass_start(self, n: int) -> int:
        return pass_start_index(self._origin_us, self.period_s, self._rate, n)

    def _pass_at(self, index: int) -> int:
        return pass_containing(index, self._origin_us, self.period_s, self._rate)

    def _render(self, start: int, count: int) -> np.ndarray:
        """The soundtrack's samples for air indices [start, start + count)."""
        out = np.zeros(count, dtype=np.float32)
        pos, end = start, start + count
        while pos < end:
            n = self._pass_at(pos)
            if n != self._pass:  # the next run through the file (or the first)
                self._open_pass(n)
            pass_end = min(end, self._pass_start(n + 1))
            self._fill(pos, pass_end, out, start)
            pos = pass_end
        return out

    def _fill(self, lo: int, hi: int, out: np.ndarray, out_start: int) -> None:
        """Copy decoded samples in [lo, hi) into `out`, dropping what lies before hi."""
        while True:
            while self._pending:
                index, samples = self._pending[0]
                if index >= hi:
                    return
                a, b = max(lo, index), min(hi, index + len(samples))
                if a < b:
                    out[a - out_start : b - out_start] = samples[a - index : b - index]
                if index + len(samples) > hi:
                    self._pending[0] = (hi, samples[hi - index :])
                    return
                self._pending.pop(0)
            nxt = next(self._chunks, None)
            if nxt is None:
                return   # this pass's audio has ended: silence until the next pass
            self._pending.append(nxt)

    def _open_pass(self, n: int) -> None:
        self._close_decoder()
        self._container = open_source(self._path)
        self._pass = n
        self._chunks = self._decode(self._container, self._pass_start(n))

    def _decode(self, container, pass_start: int) -> Iterator[tuple[int, np.ndarray]]:
        """(air index, mono float32 samples at the air's rate) for one pass, in order."""
        stream = container.streams.audio[0]
        resampler: av.AudioResampler | None = None
        first_index: int | None = None
        produced = 0
        frames = container.decode(stream)
        while True:
            try:
                frame = next(frames, None)
            except av.FFmpegError:
                frame = None   # a damaged tail: the rest of this pass is silent
            if first_index is None and frame is not None:
                first_s = frame.pts * frame.time_base if frame.pts is not None else Fraction(0)
                # The soundtrack is placed relative to the first video frame, as a player would.
                first_index = pass_start + round((first_s - self._video_origin_s) * self._rate)
            if first_index is None:
                return
            if resampler is None:
                resampler = _mono_resampler(frame, self._rate)
            for out in resampler.resample(frame):
                # Planar: one row per channel. The mean keeps a dual-mono track at its level.
                samples = np.nan_to_num(out.to_ndarray().astype(np.float32, copy=False).mean(axis=0))
                yield first_index + produced, samples
                produced += len(samples)
            if frame is None:
                return

    def _close_decoder(self) -> None:
        self._chunks = iter(())
        self._pending = []
        self._pass = -1
        if self._container is not None:
            self._container.close()
            self._container = None
