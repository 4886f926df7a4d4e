"""Simulated audio: a shared acoustic space, a speaker and a microphone (SIM-1, ANN-2).

The speaker plays into the air and the microphone hears the air, so the
announced-recording cue ends up in the recorded audio as it would on a body
camera. All audio lives on one sample grid: air sample index i is the sound at
monotonic time i * 1e6 / sample_rate_hz µs.

The microphone's own test signal (its "room tone") is a continuous sine,
1 kHz at -30 dBFS by default, phase-locked to the air's sample grid; pass
tone_dbfs=None for silence. Pick a different tone_hz if a test looks for a
1 kHz cue.
"""
from __future__ import annotations

import math
import threading
from collections import deque
from fractions import Fraction

import av
import numpy as np

from hal.clock import Clock, Timer
from hal.media import AudioFormat, MediaPacket, PacketSink
from hal.microphone import Microphone
from hal.speaker import Speaker
from simulator.trace import Trace

BLOCK_SAMPLES = 1024  # one AAC frame
_INT16_SCALE = 32768.0


class SimAir:
    """The sound around the camera: what speakers emit and what the microphone captured."""

    def __init__(self, sample_rate_hz: int = 48_000, speaker_gain: float = 0.5, keep_heard_s: float = 600.0) -> None:
        self.sample_rate_hz = sample_rate_hz
        # How loud the speaker is at the microphone, as a linear factor; below 1 so a
        # full-scale cue plus the room tone does not clip.
        self.speaker_gain = speaker_gain
        self._keep_heard_samples = round(keep_heard_s * sample_rate_hz)
        self._lock = threading.Lock()
        self._sources: list[tuple[int, np.ndarray]] = []  # (first sample index, float32 samples)
        self._heard: deque[tuple[int, np.ndarray]] = deque()  # (first sample index, int16 samples)

    def sample_index(self, time_us: int) -> int:
        """The air sample at or after `time_us` (a sound starting now starts there)."""
        return -((-time_us * self.sample_rate_hz) // 1_000_000)

    def time_us(self, sample_index: int) -> int:
        """When sample `sample_index` happens, in whole µs (rounded down, so
        sample_index(time_us(i)) == i)."""
        return (sample_index * 1_000_000) // self.sample_rate_hz

    def emit(self, start_index: int, samples: np.ndarray) -> None:
        """Add a sound (float, full scale = 1.0) starting at air sample `start_index`."""
        with self._lock:
            self._sources.append((start_index, np.asarray(samples, dtype=np.float32)))

    def mix(self, start_index: int, count: int) -> np.ndarray:
        """Everything emitted into [start_index, start_index + count), as float32."""
        out = np.zeros(count, dtype=np.float32)
        end_index = start_index + count
        with self._lock:
            # Sources long finished can no longer be heard: drop them (10 s of slack
            # for a reader that lags a little).
            horizon = start_index - 10 * self.sample_rate_hz
            self._sources = [(s, a) for s, a in self._sources if s + len(a) > horizon]
            sources = list(self._sources)
        for source_start, samples in sources:
            lo, hi = max(start_index, source_start), min(end_index, source_start + len(samples))
            if lo < hi:
                out[lo - start_index : hi - start_index] += samples[lo - source_start : hi - source_start]
        return out

    def record(self, start_index: int, samples: np.ndarray) -> None:
        """Keep what a microphone captured (int16), for heard()."""
        with self._lock:
            self._heard.append((start_index, samples))
            while self._heard and self._heard[0][0] + len(self._heard[0][1]) < start_index - self._keep_heard_samples:
                self._heard.popleft()

    def heard(self, start_us: int, end_us: int) -> np.ndarray:
        """The int16 samples the microphone captured in [start_us, end_us); zeros where it captured nothing."""
        start_index, end_index = self.sample_index(start_us), self.sample_index(end_us)
        out = np.zeros(max(0, end_index - start_index), dtype=np.int16)
        with self._lock:
            blocks = list(self._heard)
        for block_start, samples in blocks:
            lo, hi = max(start_index, block_start), min(end_index, block_start + len(samples))
            if lo < hi:
                out[lo - start_index : hi - start_index] = samples[lo - block_start : hi - block_start]
        return out


class SimSpeaker(Speaker):
    """Plays into the air without blocking; calls queue behind what is still playing."""

    def __init__(self, clock: Clock, air: SimAir, trace: Trace | None = None) -> None:
        self._clock = clock
        self._air = air
        self.trace = trace   # where playback is reported (simulator/trace.py), if anywhere
        self._end_index = 0
        # (start_us, sample count at the air's rate, tag)
        self.history: list[tuple[int, int, str | None]] = []
        # A live view sets a list here to be handed each sound as played: (int16 samples,
        # their rate), one per `speaker` trace line, in the same order.
        self.clips: list[tuple[np.ndarray, int]] | None = None

    def play(self, samples: np.ndarray, sample_rate_hz: int, tag: str | None = None) -> None:
        samples = np.asarray(samples)
        if samples.dtype != np.int16 or samples.ndim != 1:
            raise TypeError(f"speaker plays 1-D int16 mono samples, got {samples.dtype} with shape {samples.shape}")
        if sample_rate_hz <= 0:
            raise ValueError(f"invalid sample rate {sample_rate_hz}")
        sound = samples.astype(np.float32) / _INT16_SCALE
        air_rate = self._air.sample_rate_hz
        if sample_rate_hz != air_rate and len(sound):
            # Linear interpolation is plenty for a simulated speaker heard by a simulated mic.
            count = round(len(sound) * air_rate / sample_rate_hz)
            positions = np.arange(count) * (sample_rate_hz / air_rate)
            sound = np.interp(positions, np.arange(len(sound)), sound).astype(np.float32)
        start_index = max(self._air.sample_index(self._clock.monotonic_us()), self._end_index)
        self._air.emit(start_index, sound * self._air.speaker_gain)
        self._end_index = start_index + len(sound)
        start_us = self._air.time_us(start_index)
        self.history.append((start_us, len(sound), tag))
        if self.clips is not None:
            self.clips.append((samples.copy(), sample_rate_hz))
        if self.trace is not None:
            # When it is heard, which is later than now if it queues behind a sound still playing.
            self.trace.record("speaker", start_us, tag=tag, duration_ms=round(len(sound) * 1000 / air_rate))

    def is_playing(self) -> bool:
        return self._air.sample_index(self._clock.monotonic_us()) < self._end_index


def open_aac_encoder(audio_format: AudioFormat) -> av.AudioCodecContext:
    encoder = av.CodecContext.create("aac", "w")  # FFmpeg's native AAC-LC encoder
    encoder.sample_rate = audio_format.sample_rate_hz
    encoder.layout = "mono"
    encoder.format = "fltp"
    encoder.bit_rate = audio_format.bitrate_bps
    encoder.time_base = Fraction(1, audio_format.sample_rate_hz)
    encoder.open()
    if encoder.frame_size != BLOCK_SAMPLES:
        raise RuntimeError(f"AAC encoder frame size {encoder.frame_size}, expected {BLOCK_SAMPLES}")
    return encoder


class SimMicrophone(Microphone):
    """Captures 1024-sample blocks of the air plus a test tone and delivers AAC frames.

    Block k covers samples [k*1024, (k+1)*1024) after start(), i.e. the time from
    t0 + round(k*1024e6/sr); it is captured when its last sample has happened,
    at t0 + round((k+1)*1024e6/sr), so whatever the speaker starts during the
    block is in it (a microphone cannot deliver sound before it is made).
    Packets are stamped t0 + round(pts * 1e6 / sr) with the encoder's pts in
    samples; the first one has pts -1024 (AAC priming) and so starts 21.3 ms
    before t0, which keeps audio in sync once a muxer trims the priming.

    Fault switch (scenario steps mic.fail / mic.heal, FLT-1/FLT-5): fail() is a crashed
    capture, like an ALSA stream that returned an error. A capture running at fail()
    dies: no more packets, although the firmware still holds it started. A start()
    while failed opens a capture that is just as dead. heal() repairs the microphone
    but does not revive a dead capture: packets flow again only from the next start()
    after the heal, i.e. once the firmware notices the silence and calls stop() and
    start() (its watchdog's job), as a crashed ALSA capture must be reopened.
    """

    def __init__(
        self,
        clock: Clock,
        air: SimAir,
        audio_format: AudioFormat = AudioFormat(),
        tone_hz: float = 1000.0,
        tone_dbfs: float | None = -30.0,
    ) -> None:
        if audio_format.channels != 1 or audio_format.codec != "aac":
            raise ValueError(f"SimMicrophone produces mono AAC only, not {audio_format}")
        if audio_format.sample_rate_hz != air.sample_rate_hz:
            raise ValueError(
                f"microphone rate {audio_format.sample_rate_hz} Hz differs from the air's {air.sample_rate_hz} Hz"
            )
        self._clock = clock
        self._air = air
        self._format = audio_format
        self._tone_hz = tone_hz
        self._tone_amplitude = 0.0 if tone_dbfs is None else 10 ** (tone_dbfs / 20)
        self._table = self._tone_table() if self._tone_amplitude else None
        self._block_duration_us = round(BLOCK_SAMPLES * 1_000_000 / audio_format.sample_rate_hz)
        self._lock = threading.RLock()  # re-entrant: a sink may call stop()
        self._sink: PacketSink | None = None
        self._timer: Timer | None = None
        self._encoder: av.AudioCodecContext | None = None
        self._t0_us = 0
        self._first_index = 0
        self._blocks = 0
        self._failed = False   # the fault switch
        self._dead = False     # the capture started now is dead (failed while running, or started failed)
        self.packet_count = 0

    @property
    def audio_format(self) -> AudioFormat:
        return self._format

    @property
    def is_failed(self) -> bool:
        return self._failed

    @property
    def is_capturing(self) -> bool:
        """Started and delivering (not a dead capture)."""
        return self._sink is not None and not self._dead

    def start(self, sink: PacketSink) -> None:
        with self._lock:
            if self._sink is not None:
                raise RuntimeError("SimMicrophone is already started")
            self._sink = sink
            self._t0_us = self._clock.monotonic_us()
            self._first_index = self._air.sample_index(self._t0_us)
            self._blocks = 0
            self._dead = self._failed
            if self._dead:
                return   # opened, but nothing will ever come out of it
            self._encoder = open_aac_encoder(self._format)
            self._schedule_next()

    def fail(self) -> None:
        """The capture crashes: a running one delivers nothing more until stop() and start()
        after heal()."""
        with self._lock:
            self._failed = True
            if self._sink is not None:
                self._dead = True
                self._cancel_timer()
                self._encoder = None

    def heal(self) -> None:
        """The microphone works again, from the next start() on."""
        with self._lock:
            self._failed = False

    def stop(self) -> None:
        """Stop delivering; the encoder's last ~2 blocks (its delay) are dropped."""
        with self._lock:
            self._cancel_timer()
            self._sink = None
            self._encoder = None
            self._dead = False

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule_next(self) -> None:
        sr = self._format.sample_rate_hz
        capture_us = self._t0_us + round((self._blocks + 1) * BLOCK_SAMPLES * 1_000_000 / sr)
        self._timer = self._clock.call_at(capture_us, self._capture)

    def _tone_table(self) -> np.ndarray | None:
        """One exact period of the test tone, repeated to cover a block, when the period
        is a whole number of samples (1 kHz at 48 kHz: 48); None otherwise."""
        sr, hz = self._format.sample_rate_hz, self._tone_hz
        if not float(hz).is_integer() or hz <= 0:
            return None
        period = sr // math.gcd(sr, int(hz))  # at most one second of samples
        cycles = (np.arange(period + BLOCK_SAMPLES, dtype=np.int64) * int(hz) % sr) / sr
        return (self._tone_amplitude * np.sin(2 * np.pi * cycles)).astype(np.float32)

    def _test_signal(self, start_index: int) -> np.ndarray:
        if not self._tone_amplitude:
            return np.zeros(BLOCK_SAMPLES, dtype=np.float32)
        if self._table is not None:
            offset = start_index % (len(self._table) - BLOCK_SAMPLES)
            return self._table[offset : offset + BLOCK_SAMPLES].copy()
        indices = np.arange(start_index, start_index + BLOCK_SAMPLES, dtype=np.float64)
        cycles = np.mod(indices * (self._tone_hz / self._format.sample_rate_hz), 1.0)
        return (self._tone_amplitude * np.sin(2 * np.pi * cycles)).astype(np.float32)

    def _capture(self) -> None:
        with self._lock:
            sink, encoder = self._sink, self._encoder
            if sink is None or encoder is None or self._dead:
                return
            block = self._blocks
            self._blocks += 1
            self._schedule_next()
            start_index = self._first_index + block * BLOCK_SAMPLES
            sound = self._test_signal(start_index) + self._air.mix(start_index, BLOCK_SAMPLES)
            pcm = np.clip(np.round(sound * 32767.0), -32768, 32767).astype(np.int16)
            self._air.record(start_index, pcm)
            frame = av.AudioFrame.from_ndarray(
                (pcm.astype(np.float32) / _INT16_SCALE).reshape(1, -1), format="fltp", layout="mono"
            )
            sr = self._format.sample_rate_hz
            frame.sample_rate = sr
            frame.time_base = Fraction(1, sr)
            frame.pts = block * BLOCK_SAMPLES
            for packet in encoder.encode(frame):
                self.packet_count += 1
                sink(
                    MediaPacket(
                        kind="audio",
                        data=bytes(packet),
                        timestamp_us=self._t0_us + round(packet.pts * 1_000_000 / sr),
                        duration_us=self._block_duration_us,
                        keyframe=True,
                    )
                )
