"""Proof of notice (ANN-2, ANN-4; docs/announce.md): find each logged announcement in an
exported MP4's audio track.

Method: for each logged cue, the audio around its logged media time (WINDOW_BEFORE_S
before it to WINDOW_AFTER_S after its end) is compared with the asset by normalised
cross-correlation, both resampled to WORK_RATE_HZ and pre-whitened by the window's own
noise spectrum (Welch estimate), so a steady tone (the simulator's 1 kHz room tone) or a
loud soundtrack does not dominate; only 150 Hz–7 kHz counts. The score is the peak
normalised correlation (0..1): independent of gain, and high only where the asset's
own waveform is present. A cue is *found* when the score reaches SCORE_THRESHOLD;
tests/unit/test_notice_detect.py measures the margin either side.

Memory: the track is decoded once, front to back, and only the samples inside the
windows are kept (a few seconds per announcement), however long the event.
"""
from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from typing import Callable

import av
import numpy as np

from device.announce_assets import EXTENSIONS, MAX_ASSET_BYTES, SHIPPED_DIR, decode_audio
from device.config import ConfigError

WORK_RATE_HZ = 16_000
WINDOW_BEFORE_S = 1.0       # the cue may start this much before its logged time ...
WINDOW_AFTER_S = 3.0        # ... or this much after it
BAND_HZ = (150.0, 7000.0)   # speech band; below it is rumble and wind, above it AAC drops detail
# The firmware logs when each clip starts playing, so the cue must be there: a match
# further away is some other cue (a replay, the other language), never proof of this one.
TIMING_TOLERANCE_MS = 100.0
SCORE_THRESHOLD = 0.35      # measured (docs/announce.md): cues score >= 0.7, cue-free speech-like audio <= 0.17
WHITEN_FLOOR = 10.0         # x the median power: below this nothing is whitened
_WELCH_SAMPLES = 512
_MAX_MEDIA_US = 10 * 366 * 86_400 * 1_000_000   # no event lasts ten years: beyond is a faulty record        # 32 ms frames at WORK_RATE_HZ: 31 Hz bins resolve a pure tone


@dataclass(frozen=True)
class Cue:
    """A logged cue to look for: where the log says it starts, and the asset's samples."""
    media_s: float
    samples: np.ndarray          # mono, any dtype (int16 assets are scaled to ±1)
    sample_rate_hz: int


@dataclass(frozen=True)
class Detection:
    found: bool
    found_media_s: float | None  # where the best match starts (None: no audio to search)
    error_ms: float | None       # found minus logged
    score: float                 # peak normalised correlation, 0..1
    problem: str | None = None   # why nothing could be searched


def resample(samples: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """Band-limited resampling by FFT (sample 0 stays at time 0). The input is zero-padded
    to (from_hz / gcd) x a power of two samples, so both FFTs have fast lengths."""
    samples = np.asarray(samples, dtype=np.float64)
    if from_hz == to_hz or not len(samples):
        return samples
    count = max(1, round(len(samples) * to_hz / from_hz))
    step = from_hz // math.gcd(from_hz, to_hz)
    padded = step * (1 << max(0, math.ceil(math.log2(len(samples) / step))))
    out_len = padded * to_hz // from_hz
    spectrum = np.fft.rfft(samples, padded)
    bins = out_len // 2 + 1
    out = np.zeros(bins, dtype=complex)
    keep = min(bins, len(spectrum))
    out[:keep] = spectrum[:keep]
    return np.fft.irfft(out, out_len)[:count] * (out_len / padded)


def as_float(samples: np.ndarray) -> np.ndarray:
    samples = np.asarray(samples)
    if samples.dtype == np.int16:
        return samples.astype(np.float64) / 32768.0
    return samples.astype(np.float64)


def _noise_spectrum(x: np.ndarray, size: int) -> np.ndarray:
    """Welch power estimate of `x` (Hann frames of _WELCH_SAMPLES), on an rfft grid of `size`."""
    frame = _WELCH_SAMPLES
    if len(x) < frame:
        x = np.pad(x, (0, frame - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, frame)[:: frame // 2]
    power = np.mean(np.abs(np.fft.rfft(frames * np.hanning(frame), axis=1)) ** 2, axis=0)
    coarse_hz = np.fft.rfftfreq(frame, 1 / WORK_RATE_HZ)
    return np.interp(np.fft.rfftfreq(size, 1 / WORK_RATE_HZ), coarse_hz, power)


def score_curve(window: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Normalised correlation of `template` at every lag inside `window` (both at
    WORK_RATE_HZ, float), after pre-whitening by the window's spectrum."""
    n, m = len(window), len(template)
    if m == 0 or n < m:
        return np.zeros(0)
    size = 1 << int(np.ceil(np.log2(n + m)))
    power = _noise_spectrum(window, size)
    freqs = np.fft.rfftfreq(size, 1 / WORK_RATE_HZ)
    # Partial whitening: only what stands well above the window's median level (a steady
    # tone, the loud bands of a soundtrack) is flattened. Full whitening would also lift
    # the quiet bands, where AAC's quantisation noise and chance likeness between two
    # voices then decide the score (measured: docs/announce.md).
    floor = WHITEN_FLOOR * float(np.median(power)) + 1e-20   # + digital silence
    weight = 1.0 / np.sqrt(power + floor)
    weight[(freqs < BAND_HZ[0]) | (freqs > BAND_HZ[1])] = 0.0
    x_spec = np.fft.rfft(window, size) * weight
    a_spec = np.fft.rfft(template, size) * weight
    xw = np.fft.irfft(x_spec, size)[:n]
    aw = np.fft.irfft(a_spec, size)
    a_norm = float(np.sqrt(np.sum(aw ** 2)))
    corr = np.fft.irfft(x_spec * np.conj(a_spec), size)[: n - m + 1]
    energy = np.concatenate(([0.0], np.cumsum(xw ** 2)))
    local = energy[m:] - energy[:-m]
    denom = a_norm * np.sqrt(np.maximum(local, 1e-12 * max(float(energy[-1]), 1e-30)))
    if a_norm == 0.0:
        return np.zeros(n - m + 1)
    return np.clip(corr / denom, -1.0, 1.0)


def template_of(cue: Cue) -> np.ndarray:
    return resample(as_float(cue.samples), cue.sample_rate_hz, WORK_RATE_HZ)


def detect_in_window(window: np.ndarray, window_start_s: float, cue: Cue,
                     template: np.ndarray | None = None) -> Detection:
    """Look for `cue` in `window` (float, WORK_RATE_HZ) that starts at media time
    window_start_s; `template`: the cue's samples at WORK_RATE_HZ, if already made."""
    template = template_of(cue) if template is None else template
    curve = score_curve(window, template)
    if not len(curve):
        return Detection(False, None, None, 0.0, "the audio track does not cover the whole notice")
    # Proof is the best match within the tolerance of the logged start; the best match of
    # the whole window is kept only to say where else the notice is heard.
    expected = round((cue.media_s - window_start_s) * WORK_RATE_HZ)
    reach = round(TIMING_TOLERANCE_MS / 1000 * WORK_RATE_HZ)
    lo, hi = max(0, expected - reach), min(len(curve), expected + reach + 1)
    if lo < hi:
        lag = lo + int(np.argmax(curve[lo:hi]))
        score = max(0.0, float(curve[lag]))
        if score >= SCORE_THRESHOLD:
            found_s = window_start_s + lag / WORK_RATE_HZ
            return Detection(True, found_s, (found_s - cue.media_s) * 1000.0, score)
    lag = int(np.argmax(curve))
    score = max(0.0, float(curve[lag]))
    found_s = window_start_s + lag / WORK_RATE_HZ
    return Detection(False, found_s, (found_s - cue.media_s) * 1000.0, score)


def _mono(frame: av.AudioFrame) -> np.ndarray:
    """A decoded frame as mono float (AAC decodes to planar float; anything else is scaled)."""
    channels = len(frame.layout.channels)
    pcm = frame.to_ndarray()
    pcm = pcm.reshape(channels, -1) if frame.format.is_planar else pcm.reshape(-1, channels).T
    if pcm.dtype.kind in "iu":
        pcm = pcm.astype(np.float64) / float(2 ** (8 * pcm.dtype.itemsize - 1))
    return pcm.mean(axis=0)


class _Window:
    def __init__(self, cue: Cue, rate_hz: int) -> None:
        self.cue = cue
        length_s = len(cue.samples) / cue.sample_rate_hz
        self.start_s = cue.media_s - WINDOW_BEFORE_S
        self.end_s = cue.media_s + length_s + WINDOW_AFTER_S
        self.rate_hz = rate_hz
        self.samples = np.zeros(max(0, round((self.end_s - self.start_s) * rate_hz)), dtype=np.float32)
        self.covered = np.zeros(len(self.samples), dtype=bool)

    def add(self, start_s: float, pcm: np.ndarray) -> None:
        offset = round((start_s - self.start_s) * self.rate_hz)
        lo, hi = max(0, offset), min(len(self.samples), offset + len(pcm))
        if lo < hi:
            self.samples[lo:hi] = pcm[lo - offset: hi - offset]
            self.covered[lo:hi] = True

    def search(self, templates: dict[int, np.ndarray]) -> Detection:
        if not self.covered.any():
            return Detection(False, None, None, 0.0, "the audio track does not cover that time")
        work = resample(self.samples, self.rate_hz, WORK_RATE_HZ)
        key = id(self.cue.samples)   # one asset is logged many times: resample it once
        if key not in templates:
            templates[key] = template_of(self.cue)
        return detect_in_window(work, self.start_s, self.cue, templates[key])


def detect_cues(mp4_path: str, cues: list[Cue]) -> list[Detection]:
    """Decode `mp4_path`'s audio track once and look for each cue around its logged time.
    A window is searched (and its samples freed) as soon as decoding has passed its end."""
    if not cues:
        return []
    results: list[Detection | None] = [None] * len(cues)
    templates: dict[int, np.ndarray] = {}
    with av.open(mp4_path) as container:
        if not container.streams.audio:
            return [Detection(False, None, None, 0.0, "the export has no audio track") for _ in cues]
        stream = container.streams.audio[0]
        rate_hz = stream.codec_context.sample_rate
        pending = sorted(range(len(cues)), key=lambda i: cues[i].media_s)
        open_windows: dict[int, _Window] = {}
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            start_s = float(frame.pts * frame.time_base)
            end_s = start_s + frame.samples / rate_hz
            while pending and cues[pending[0]].media_s - WINDOW_BEFORE_S < end_s:
                index = pending.pop(0)
                open_windows[index] = _Window(cues[index], rate_hz)
            pcm = None
            for index, window in list(open_windows.items()):
                if start_s >= window.end_s:
                    results[index] = window.search(templates)
                    del open_windows[index]
                    continue
                pcm = _mono(frame) if pcm is None else pcm
                window.add(start_s, pcm)
            if not pending and not open_windows:
                break
        for index, window in open_windows.items():   # the track ended inside these
            results[index] = window.search(templates)
        for index in pending:                         # ... or before these began
            results[index] = Detection(False, None, None, 0.0, "the audio track ends before the notice")
    return results


# -- the sidecar's view: one entry per logged announcement ----------------------------

class KnownAssets:
    """Announcement assets by SHA-256: the shipped ones, and a custodian's --announce-dir.
    The custodian's files are decoded up front, so a bad one is refused before anything
    is written; the shipped ones only when a logged cue names them."""

    def __init__(self, announce_dir: str | None = None) -> None:
        self._paths: dict[str, str] = {}
        self._decoded: dict[str, tuple[np.ndarray, int]] = {}
        for directory in [SHIPPED_DIR] + ([announce_dir] if announce_dir else []):
            if directory is announce_dir and not os.path.isdir(directory):
                raise ConfigError(f"--announce-dir {directory}: not a directory")
            for name in sorted(os.listdir(directory)):
                path = os.path.join(directory, name)
                if name.lower().endswith(EXTENSIONS) and os.path.isfile(path):
                    sha256 = _sha256_file(path)
                    self._paths.setdefault(sha256, path)
                    if directory is announce_dir:
                        self.samples(sha256)   # a custodian's bad file is refused now, by name

    def __contains__(self, sha256: str) -> bool:
        return sha256 in self._paths

    def samples(self, sha256: str) -> tuple[np.ndarray, int]:
        if sha256 not in self._decoded:
            path = self._paths[sha256]
            with open(path, "rb") as f:
                data = f.read(MAX_ASSET_BYTES + 1)
            if hashlib.sha256(data).hexdigest() != sha256:
                raise ConfigError(f"{path}: changed while export was reading it")
            self._decoded[sha256] = decode_audio(data, path)
        return self._decoded[sha256]


def _sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def announcements(mp4_path: str, metadata: list[dict], origin_utc_us: int, known: KnownAssets,
                  utc: Callable[[int], str]) -> list[dict]:
    """The sidecar's `announcements`: per logged `announcement` record, what the log says
    and whether and where the notice is in the exported audio (ANN-4: never a claim the
    audio does not bear out)."""
    records = [m for m in metadata if m.get("type") == "announcement"]
    entries, cues, searched = [], [], []
    for record in records:
        media_us = record.get("media_us")
        if not isinstance(media_us, int) or isinstance(media_us, bool) or abs(media_us) > _MAX_MEDIA_US:
            media_us = None   # a faulty record: say so rather than guess a time
        entry = {"status": record.get("status"), "cause": record.get("cause"), "language": record.get("language"),
                 "asset_sha256": record.get("asset_sha256"),
                 "media_s": None if media_us is None else media_us / 1e6,
                 "utc": None if media_us is None else utc(origin_utc_us + media_us), "found": None,
                 "found_media_s": None, "error_ms": None, "score": None}
        sha = record.get("asset_sha256")
        if record.get("status") == "suppressed":
            entry["reason"] = record.get("reason")
            entry["result"] = f"suppressed: {record.get('reason')}"
        elif record.get("status") != "played" or not isinstance(sha, str):
            entry["result"] = f"not a played announcement (status {record.get('status')!r}); nothing to look for"
        elif media_us is None:
            entry["result"] = "the record has no usable media time; nothing to look for"
        elif sha not in known:
            entry["result"] = (f"asset unknown: {sha[:16]}… is neither a shipped notice nor in --announce-dir; "
                               f"give the agency's files with --announce-dir to check it")
        else:
            samples, rate_hz = known.samples(sha)
            cues.append(Cue(media_us / 1e6, samples, rate_hz))
            searched.append(entry)
        entries.append(entry)
    for entry, found in zip(searched, detect_cues(mp4_path, cues)):
        entry.update(found=found.found, score=round(found.score, 3),
                     found_media_s=None if found.found_media_s is None else round(found.found_media_s, 4),
                     error_ms=None if found.error_ms is None else round(found.error_ms, 1))
        if found.found:
            entry["result"] = f"found at {found.found_media_s:.3f} s (score {found.score:.2f})"
        elif found.problem:
            entry["result"] = f"NOT found in the audio: {found.problem}"
        elif found.score >= SCORE_THRESHOLD:
            entry["result"] = (f"NOT found at its logged time; the notice is heard {found.error_ms:+.0f} ms "
                               f"away, at {found.found_media_s:.3f} s (score {found.score:.2f}), which proves "
                               f"another announcement, not this one")
        else:
            entry["result"] = (f"NOT found in the audio (best match score {found.score:.2f}, "
                               f"below the threshold {SCORE_THRESHOLD:.2f})")
    return entries
