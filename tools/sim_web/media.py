"""The camera's picture as JPEG and the speaker's sounds as WAV, for the page.

JPEG through PyAV's MJPEG encoder (FFmpeg's), already a dependency for the camera itself;
WAV with the standard library's wave module.
"""
from __future__ import annotations

import io
import wave
from fractions import Fraction

import av
import numpy as np

JPEG_QUALITY_Q = 4   # FFmpeg's -q:v for MJPEG: 2 (best) .. 31; 4 keeps the code strip legible
FF_QP2LAMBDA = 118   # libavutil: a quantiser in the units global_quality takes


def jpeg_from_yuv420p(picture: np.ndarray) -> bytes:
    """One yuv420p picture (H*3/2 x W, uint8) as a baseline JPEG."""
    height, width = picture.shape[0] * 2 // 3, picture.shape[1]
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height = width, height
    # FFmpeg's MJPEG takes full-range ("J") YUV: the camera's limited-range picture is
    # converted, so the page shows the same levels a player shows.
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = Fraction(1, 30)
    # A fixed quantiser (FFmpeg's -q:v), not a bit rate: every picture equally legible.
    encoder.flags |= av.codec.context.Flags.qscale
    encoder.global_quality = JPEG_QUALITY_Q * FF_QP2LAMBDA
    encoder.open()
    frame = av.VideoFrame.from_ndarray(picture, format="yuv420p").reformat(format="yuvj420p")
    return b"".join(bytes(p) for p in [*encoder.encode(frame), *encoder.encode(None)])


def wav_bytes(samples: np.ndarray, sample_rate_hz: int) -> bytes:
    """16-bit mono PCM as a WAV file."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate_hz)
        w.writeframes(np.asarray(samples, dtype="<i2").tobytes())
    return out.getvalue()
