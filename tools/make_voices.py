"""Generate the shipped announcement voices (ANN-1): device/assets/announce/<lang>.flac.

Run once by a maintainer; the output is committed and CI never needs espeak-ng:

    apt-get install -y espeak-ng
    python -m tools.make_voices            # rewrites en.flac and es.flac

The firmware logs each asset's SHA-256 (docs/announce.md), so regenerating the files
changes the hashes every later announcement records; footage recorded before keeps
the old hashes, which `bwc export` still knows only if the old files are given with
--announce-dir. Regenerate only when the wording or the voice must change.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from fractions import Fraction

import av
import numpy as np

# The notice itself (docs/announce.md). espeak-ng voice name -> text.
NOTICES = {
    "en": ("en-us", "This encounter is being recorded."),
    "es": ("es", "Este encuentro está siendo grabado."),
}
SAMPLE_RATE_HZ = 16_000     # plenty for speech from a small speaker; keeps files small
PEAK_DBFS = -1.0            # normalised so every language is equally loud
_SILENCE = 0.01             # trim leading/trailing samples below 1 % of full scale
_PAD_S = 0.05               # but keep 50 ms either side, so the clip does not start on a click

ASSET_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "device", "assets", "announce")


def synthesise(voice: str, text: str) -> np.ndarray:
    """espeak-ng's rendering of `text`, mono float at SAMPLE_RATE_HZ, trimmed and normalised."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "voice.wav")
        # -s 150 words per minute: a little slower than espeak's default, clearer outdoors.
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", wav, text], check=True)
        with av.open(wav) as container:
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE_HZ)
            parts = []
            for frame in container.decode(audio=0):
                parts.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
            parts.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    samples = np.concatenate(parts).astype(np.float64)
    loud = np.flatnonzero(np.abs(samples) > _SILENCE * np.abs(samples).max())
    pad = round(_PAD_S * SAMPLE_RATE_HZ)
    samples = samples[max(0, loud[0] - pad): loud[-1] + 1 + pad]
    return samples * (10 ** (PEAK_DBFS / 20) / np.abs(samples).max())


def write_flac(path: str, samples: np.ndarray) -> None:
    pcm = np.round(samples * 32767).astype(np.int16)
    with av.open(path, "w", format="flac") as container:
        stream = container.add_stream("flac", rate=SAMPLE_RATE_HZ, layout="mono")
        stream.format = "s16"
        step = 4096
        for offset in range(0, len(pcm), step):
            frame = av.AudioFrame.from_ndarray(pcm[offset:offset + step].reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = SAMPLE_RATE_HZ, offset, Fraction(1, SAMPLE_RATE_HZ)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.make_voices", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=ASSET_DIR, metavar="DIR", help=f"where to write (default {ASSET_DIR})")
    args = parser.parse_args(argv)
    if shutil.which("espeak-ng") is None:
        print("make_voices: espeak-ng is not installed (apt-get install -y espeak-ng)", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    for language, (voice, text) in NOTICES.items():
        path = os.path.join(args.out, f"{language}.flac")
        samples = synthesise(voice, text)
        write_flac(path, samples)
        print(f"{path}: {len(samples) / SAMPLE_RATE_HZ:.2f} s, {os.path.getsize(path)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
