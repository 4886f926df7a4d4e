"""Small test clips made with PyAV for the --source tests, and a reader for their frame codes.

Each picture frame i of a coded clip carries the burned-in code strip (simulator/pattern.py)
with frame number i, placed in the lower half of the picture, where the camera's own
strip (at the top) does not cover it.
"""
from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

from simulator.pattern import overlay_code, read_frame

CODE_TOP = 96   # the clip's code strip starts this many rows down (at 320 px wide: 24 rows tall)


def coded_picture(index: int, width: int, height: int) -> np.ndarray:
    yuv = np.full((height * 3 // 2, width), 128, np.uint8)
    yuv[:height] = 110
    overlay_code(yuv[CODE_TOP:height], index, 0)
    return yuv


def read_clip_frame(camera_picture: np.ndarray, height: int) -> int | None:
    """Which clip frame a camera picture (same size as the clip) shows."""
    code = read_frame(camera_picture[CODE_TOP:height])
    return None if code is None else code[0]


def write_clip(path, pts: list[int], time_base: Fraction, width: int = 320, height: int = 180,
               picture=coded_picture, sar: Fraction | None = None, rotation_deg: int | None = None,
               audio: np.ndarray | None = None, audio_rate_hz: int = 44_100, rate: int = 25) -> None:
    """An H.264 MP4 whose frame i is picture(i, width, height), presented at pts[i] * time_base.

    `audio` (channels x samples, float in [-1, 1]) becomes an AAC track starting at time 0.
    """
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = time_base
        stream.time_base = time_base
        stream.options = {"preset": "ultrafast", "crf": "12", "bf": "0"}
        if sar is not None:
            stream.codec_context.sample_aspect_ratio = sar
        if rotation_deg is not None:
            stream.set_display_rotation(rotation_deg)
        astream = None
        if audio is not None:
            astream = container.add_stream("aac", rate=audio_rate_hz)
            astream.layout = "stereo" if audio.shape[0] == 2 else "mono"
            astream.bit_rate = 192_000
        for i, p in enumerate(pts):
            frame = av.VideoFrame.from_ndarray(picture(i, width, height), format="yuv420p")
            frame.pts, frame.time_base = p, time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if astream is not None:
            layout = astream.layout.name
            for start in range(0, audio.shape[1], 1024):
                block = np.ascontiguousarray(audio[:, start : start + 1024], dtype=np.float32)
                frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=layout)
                frame.sample_rate, frame.pts, frame.time_base = audio_rate_hz, start, Fraction(1, audio_rate_hz)
                container.mux(astream.encode(frame))
            container.mux(astream.encode(None))


def chirp(duration_s: float, rate_hz: int, f0_hz: float = 300.0, f1_hz: float = 6000.0,
          amplitude: float = 0.5) -> np.ndarray:
    """A linear sweep: its autocorrelation has one sharp peak, so a lag is unambiguous."""
    t = np.arange(round(duration_s * rate_hz)) / rate_hz
    phase = 2 * np.pi * (f0_hz * t + (f1_hz - f0_hz) * t * t / (2 * duration_s))
    return (amplitude * np.sin(phase)).astype(np.float32)


def resample_linear(samples: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    count = round(len(samples) * to_hz / from_hz)
    return np.interp(np.arange(count) * (from_hz / to_hz), np.arange(len(samples)), samples).astype(np.float32)


def best_lag(heard: np.ndarray, reference: np.ndarray, max_lag: int) -> tuple[int, float]:
    """(lag, normalised correlation): heard[i] best matches reference[i - lag], |lag| <= max_lag.

    `reference` must extend max_lag samples beyond `heard` on both sides: it is indexed
    from -max_lag, i.e. reference[k] is the reference at heard index k - max_lag.
    """
    heard = heard.astype(np.float64)
    reference = reference[: len(heard) + 2 * max_lag].astype(np.float64)
    n = len(heard)
    # dots[k] = heard . reference[k : k + n], i.e. lag = max_lag - k.
    dots = np.correlate(reference, heard, mode="valid")
    energy = np.concatenate([[0.0], np.cumsum(reference * reference)])
    window_norms = np.sqrt(energy[n:] - energy[:-n])
    denom = np.linalg.norm(heard) * window_norms
    scores = np.divide(dots, denom, out=np.zeros_like(dots), where=denom > 0)
    k = int(np.argmax(scores))
    return max_lag - k, float(scores[k])
