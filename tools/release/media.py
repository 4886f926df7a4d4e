"""Re-encode an exported event with its redactions applied (docs/release.md §3).

Every video frame is decoded, hidden where the plan (or the face list) says, and
encoded again with the same timestamps; audio is decoded, muted or toned over the
declared spans and encoded again. Timestamps are kept one for one so a verifier can
pair each release frame with its original. Which boxes were hidden in which frame is
returned, for the release record: it is the list a verifier holds the release to.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable

import av
import numpy as np

from tools.release import frame_ops
from tools.release.plan import Plan

# x264 at CRF 16: visually lossless, so pixels outside the masks stay within the stated
# tolerance of the original (docs/release.md §5) while a 1280x720 file stays ~2x the original.
VIDEO_CRF = 16
VIDEO_PRESET = "veryfast"
AUDIO_BIT_RATE = 192_000

# (frame index, media seconds, frame) -> face boxes (x, y, w, h) to hide in that frame.
FaceSource = Callable[[int, float, np.ndarray], list[tuple[int, int, int, int]]]


@dataclass
class MediaResult:
    width: int
    height: int
    frames: int = 0
    # Per frame with anything hidden: [index, pts_s, [[x, y, w, h, style, source], ...]]
    masks: list[list] = field(default_factory=list)
    audio_samples: int = 0
    audio_rate_hz: int = 0


def redact_media(original_mp4: str, release_mp4: str, plan: Plan, faces: FaceSource | None = None,
                 progress: Callable[[float], None] | None = None) -> MediaResult:
    with av.open(original_mp4) as src:
        vin = src.streams.video[0]
        ain = src.streams.audio[0] if src.streams.audio else None
        vin.thread_type = "AUTO"
        result = MediaResult(width=vin.codec_context.width, height=vin.codec_context.height)
        with av.open(release_mp4, "w", format="mp4") as dst:
            vout = dst.add_stream("libx264", rate=vin.average_rate or 30)
            vout.width, vout.height, vout.pix_fmt = result.width, result.height, "yuv420p"
            vout.time_base = vin.time_base
            vout.codec_context.time_base = vin.time_base
            vout.options = {"crf": str(VIDEO_CRF), "preset": VIDEO_PRESET}
            vout.thread_type = "AUTO"
            aout = None
            if ain is not None:
                aout = dst.add_stream("aac", rate=ain.codec_context.sample_rate)
                aout.layout = ain.codec_context.layout.name
                aout.bit_rate = AUDIO_BIT_RATE
                result.audio_rate_hz = ain.codec_context.sample_rate
            streams = [vin] + ([ain] if ain is not None else [])
            for packet in src.demux(*streams):
                for frame in packet.decode():
                    if packet.stream is vin:
                        _video_frame(frame, plan, faces, result, vout, dst)
                        if progress is not None and frame.time is not None:
                            progress(frame.time)
                    else:
                        _audio_frame(frame, plan, result, aout, dst)
            for stream in (vout, aout):
                if stream is not None:
                    for packet in stream.encode(None):
                        dst.mux(packet)
    return result


def _video_frame(frame, plan: Plan, faces: FaceSource | None, result: MediaResult, vout, dst) -> None:
    t_s = float(frame.pts * frame.time_base)
    rgb = frame.to_ndarray(format="rgb24")
    hidden = []
    for region in plan.regions:
        if region.start_s <= t_s < region.end_s:
            applied = frame_ops.apply(rgb, region.box, region.style)
            if applied is not None:
                hidden.append([*applied, region.style, "region"])
    if faces is not None and plan.faces.enabled:
        for box in faces(result.frames, t_s, rgb):
            applied = frame_ops.apply(rgb, frame_ops.expand(box, plan.faces.margin_fraction), plan.faces.style)
            if applied is not None:
                hidden.append([*applied, plan.faces.style, "face"])
    if hidden:
        result.masks.append([result.frames, round(t_s, 6), hidden])
    out = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    out.pts, out.time_base = frame.pts, frame.time_base
    for packet in vout.encode(out):
        dst.mux(packet)
    result.frames += 1


def _audio_frame(frame, plan: Plan, result: MediaResult, aout, dst) -> None:
    rate = frame.sample_rate
    samples = frame.to_ndarray().astype(np.float32)
    if samples.ndim == 1 or frame.format.is_packed:
        samples = samples.reshape(-1, len(frame.layout.channels)).T.copy()
    start = round(float(frame.pts * frame.time_base) * rate) if frame.pts is not None else result.audio_samples
    n = samples.shape[1]
    for span in plan.audio:
        first, last = round(span.start_s * rate) - start, round(span.end_s * rate) - start
        if last <= 0 or first >= n:
            continue
        if span.mode == "mute":
            frame_ops.silence(samples, first, min(last, n))
        else:
            frame_ops.tone(samples, first, min(last, n), rate, span.tone_hz, start)
    out = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format="fltp", layout=frame.layout.name)
    out.sample_rate, out.pts, out.time_base = rate, start, Fraction(1, rate)
    for packet in aout.encode(out):
        dst.mux(packet)
    result.audio_samples = start + n
