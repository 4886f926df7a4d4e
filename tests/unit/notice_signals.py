"""Test sounds for the notice detector, built without espeak at test time: a music-like
soundtrack, cue-free speech-like audio, the simulator's room tone, and an AAC MP4 writer."""
from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

RATE_HZ = 48_000
FRAME_SAMPLES = 1024


def to_rate(samples_int16: np.ndarray, from_hz: int, to_hz: int = RATE_HZ) -> np.ndarray:
    """An asset as float at `to_hz` (linear interpolation, as the simulated speaker does)."""
    x = samples_int16.astype(np.float64) / 32768.0
    count = round(len(x) * to_hz / from_hz)
    return np.interp(np.arange(count) * (from_hz / to_hz), np.arange(len(x)), x)


def room_tone(count: int, hz: float = 1000.0, dbfs: float = -30.0) -> np.ndarray:
    return 10 ** (dbfs / 20) * np.sin(2 * np.pi * hz * np.arange(count) / RATE_HZ)


def soundtrack(seconds: float, rms: float, seed: int = 0) -> np.ndarray:
    """Music-like: plucked harmonic notes (a new pitch every 250 ms) over brown-ish noise."""
    rng = np.random.default_rng(seed)
    count = round(seconds * RATE_HZ)
    out = np.zeros(count)
    note = RATE_HZ // 4
    t = np.arange(note) / RATE_HZ
    for start in range(0, count, note):
        f0 = 110 * 2 ** (rng.integers(0, 36) / 12)
        pluck = sum(np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 2 * np.pi)) / h for h in range(1, 9))
        pluck *= np.exp(-4 * t)
        n = min(note, count - start)
        out[start:start + n] += pluck[:n]
    noise = np.cumsum(rng.standard_normal(count))
    noise -= np.convolve(noise, np.ones(400) / 400, "same")   # no DC drift
    out = out / np.std(out) + 0.5 * noise / np.std(noise)
    return out * (rms / np.std(out))


def speech_like(seconds: float, sources: list[np.ndarray], rms: float, seed: int = 1,
                forward: list[np.ndarray] = ()) -> np.ndarray:
    """Cue-free speech-like audio: syllable-length pieces (80-300 ms) of `sources`, each
    time-reversed, shuffled, with random gain and pauses, over a little noise; the
    `forward` clips (another language's notice) are dropped in whole every ~20 s."""
    rng = np.random.default_rng(seed)
    count = round(seconds * RATE_HZ)
    out = np.zeros(count)
    position = 0
    while position < count:
        source = sources[rng.integers(len(sources))]
        length = round(rng.uniform(0.08, 0.30) * RATE_HZ)
        offset = rng.integers(0, len(source) - length)
        piece = source[offset:offset + length][::-1] * rng.uniform(0.4, 1.2)
        piece = piece * np.hanning(length)
        n = min(length, count - position)
        out[position:position + n] += piece[:n]
        position += length + (round(rng.uniform(0.2, 0.6) * RATE_HZ) if rng.random() < 0.25 else 0)
    for clip in forward:
        for start in range(round(5 * RATE_HZ), count - len(clip), round(20 * RATE_HZ)):
            out[start:start + len(clip)] += clip * rng.uniform(0.5, 1.0)
    out += 0.01 * rng.standard_normal(count)
    return out * (rms / np.std(out))


def write_aac_mp4(path: str, pcm: np.ndarray, bitrate_bps: int = 64_000) -> None:
    """Mono float PCM at RATE_HZ -> an MP4 with one AAC-LC track, as the camera records it."""
    pcm = np.clip(pcm, -1.0, 1.0).astype(np.float32)
    with av.open(path, "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=RATE_HZ, layout="mono")
        stream.bit_rate = bitrate_bps
        for k, offset in enumerate(range(0, len(pcm) - FRAME_SAMPLES + 1, FRAME_SAMPLES)):
            frame = av.AudioFrame.from_ndarray(pcm[offset:offset + FRAME_SAMPLES].reshape(1, -1),
                                               format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = RATE_HZ, offset, Fraction(1, RATE_HZ)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
