"""The announced-recording cue's audio (ANN-1, docs/announce.md): the spoken notice per
language, and the chime that precedes it.

The shipped voices are device/assets/announce/<lang>.flac (made by tools/make_voices.py);
an agency overrides any of them with DEVICE_DIR/announce/<lang>.wav or .flac. Each asset
is known by the SHA-256 of its file's bytes: that is what the firmware logs with every
announcement and what `bwc export` recognises the asset by.
"""
from __future__ import annotations

import functools
import hashlib
import io
import os
import re
from dataclasses import dataclass

import av
import numpy as np

from device.config import ConfigError

SHIPPED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "announce")
AGENCY_SUBDIR = "announce"
EXTENSIONS = (".wav", ".flac")
MAX_ASSET_S = 20.0                # a notice longer than this is a wrong file, not a notice
MAX_ASSET_BYTES = 32 << 20        # 20 s of 48 kHz stereo 32-bit PCM is ~7.7 MB: room for any sane file
_LANGUAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,34}$")

# The chime: two short rising tones, synthesised here (not an asset, not logged by hash).
# 784 Hz and 1175 Hz (G5, D6) stay clear of the simulator's 1 kHz room tone.
CHIME_RATE_HZ = 16_000
_CHIME_TONES = ((784.0, 0.12), (1175.0, 0.12))
_CHIME_GAP_S, _CHIME_TAIL_S, _CHIME_FADE_S, _CHIME_AMPLITUDE = 0.04, 0.15, 0.01, 0.5


@dataclass(frozen=True)
class Asset:
    language: str
    path: str
    sha256: str               # hex SHA-256 of the file's bytes
    samples: np.ndarray       # mono int16
    sample_rate_hz: int

    @property
    def duration_us(self) -> int:
        return len(self.samples) * 1_000_000 // self.sample_rate_hz


@dataclass(frozen=True)
class AnnouncementAssets:
    """The notice per configured language, in the order they are played."""
    assets: tuple[Asset, ...]

    @property
    def languages(self) -> list[str]:
        return [a.language for a in self.assets]

    def get(self, language: str) -> Asset | None:
        return next((a for a in self.assets if a.language == language), None)


def chime() -> np.ndarray:
    """The fixed two-tone chime at CHIME_RATE_HZ, mono int16, silence after it included."""
    parts = []
    fade = round(_CHIME_FADE_S * CHIME_RATE_HZ)
    for frequency_hz, length_s in _CHIME_TONES:
        t = np.arange(round(length_s * CHIME_RATE_HZ)) / CHIME_RATE_HZ
        tone = _CHIME_AMPLITUDE * np.sin(2 * np.pi * frequency_hz * t)
        # Short fades: no clicks at the edges.
        ramp = np.linspace(0.0, 1.0, fade)
        tone[:fade] *= ramp
        tone[-fade:] *= ramp[::-1]
        parts += [tone, np.zeros(round(_CHIME_GAP_S * CHIME_RATE_HZ))]
    parts.append(np.zeros(round(_CHIME_TAIL_S * CHIME_RATE_HZ)))
    return np.round(np.concatenate(parts) * 32767).astype(np.int16)


def chime_duration_us() -> int:
    return len(chime()) * 1_000_000 // CHIME_RATE_HZ


def load_assets(device_dir: str | None, languages) -> AnnouncementAssets:
    """The notice for each of `languages`: DEVICE_DIR/announce/<lang>.wav or .flac if the
    agency supplied one, else the shipped file. ConfigError (one line, naming the file)
    for a language with no audio, or a file that is unreadable, undecodable, silent or
    longer than MAX_ASSET_S."""
    assets = []
    for language in languages:
        if not isinstance(language, str) or not _LANGUAGE.match(language):
            raise ConfigError(f"announce_languages: {language!r} is not a language tag such as \"en\" or \"es-MX\"")
        assets.append(_load_one(_find(device_dir, language), language))
    return AnnouncementAssets(tuple(assets))


def _find(device_dir: str | None, language: str) -> str:
    if device_dir is not None:
        found = [os.path.join(device_dir, AGENCY_SUBDIR, language + ext) for ext in EXTENSIONS]
        found = [p for p in found if os.path.lexists(p)]
        if len(found) > 1:
            raise ConfigError(f"{found[0]} and {found[1]} both exist: keep one announcement file per language")
        if found:
            return found[0]
    shipped = os.path.join(SHIPPED_DIR, language + ".flac")
    if os.path.exists(shipped):
        return shipped
    where = "DEVICE_DIR" if device_dir is None else device_dir
    raise ConfigError(f"no announcement audio for language {language!r}: supply "
                      f"{os.path.join(where, AGENCY_SUBDIR, language)}.wav or .flac")


def _load_one(path: str, language: str) -> Asset:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_ASSET_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the announcement ({exc.strerror or exc})") from None
    if len(data) > MAX_ASSET_BYTES:
        raise ConfigError(f"{path}: announcement file larger than {MAX_ASSET_BYTES >> 20} MiB")
    # Decoded from the very bytes that were hashed, so the logged hash is of what plays.
    samples, rate_hz = _decode_cached(data, path)
    return Asset(language, path, hashlib.sha256(data).hexdigest(), samples, rate_hz)


@functools.lru_cache(maxsize=16)
def _decode_cached(data: bytes, path: str) -> tuple[np.ndarray, int]:
    samples, rate_hz = decode_audio(data, path)
    samples.setflags(write=False)   # shared between boots: nobody may change it
    return samples, rate_hz


def decode_audio(data: bytes, path: str, max_s: float = MAX_ASSET_S) -> tuple[np.ndarray, int]:
    """WAV/FLAC bytes -> (mono int16 samples, sample rate); ConfigError naming `path`."""
    try:
        with av.open(io.BytesIO(data), "r") as container:
            if not container.streams.audio:
                raise ConfigError(f"{path}: not an audio file (no audio stream)")
            stream = container.streams.audio[0]
            rate_hz = stream.codec_context.sample_rate
            if not rate_hz or not 8000 <= rate_hz <= 192_000:
                raise ConfigError(f"{path}: unusable sample rate {rate_hz}")
            resampler = av.AudioResampler(format="s16", layout="mono", rate=rate_hz)
            limit = round(max_s * rate_hz)
            parts, count = [], 0
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray().reshape(-1))
                    count += len(parts[-1])
                if count > limit:
                    raise ConfigError(f"{path}: announcement longer than {max_s:g} s")
            parts.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
    except ConfigError:
        raise
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise ConfigError(f"{path}: cannot decode the announcement audio ({type(exc).__name__})") from None
    samples = np.concatenate(parts).astype(np.int16) if parts else np.zeros(0, np.int16)
    if len(samples) > limit:
        raise ConfigError(f"{path}: announcement longer than {max_s:g} s")
    if len(samples) < rate_hz // 10 or int(np.abs(samples.astype(np.int32)).max()) < 328:
        raise ConfigError(f"{path}: announcement is empty or silent (nothing above -40 dBFS)")
    return samples, rate_hz
