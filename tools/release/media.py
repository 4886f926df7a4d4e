"""Re-encode an exported event with its redactions applied (docs/release.md §3).

Every video frame is decoded, hidden where the plan (or the face list) says, and
encoded again with the same timestamps; audio is decoded, muted or toned over the
declared spans and encoded again. Timestamps are kept one for one (moved only by the
declared cuts, tools/release/cuts.py) so a verifier can pair each release frame with its
original. Which boxes were hidden in which frame is returned, for the release record: it
is the list a verifier holds the release to.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable

import av
import numpy as np

from tools.release import cuts as cut_table
from tools.release import frame_ops
from tools.release.plan import Plan
from tools.release.tracking import RegionTracker

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
    # Per original frame with anything hidden: [index, pts_s, [[x, y, w, h, style, source], ...]]
    masks: list[list] = field(default_factory=list)
    audio_samples: int = 0
    audio_rate_hz: int = 0
    cuts: list[dict] = field(default_factory=list)      # the record's `cuts` (cuts.record_entries)
    frames_cut: int = 0
    marker_frames: int = 0
    frames_track_lost: int = 0


@dataclass
class _Video:
    """What the video pass carries from frame to frame."""
    plan: Plan
    faces: FaceSource | None
    spans: list
    time_base: Fraction
    width: int
    height: int
    trackers: dict = field(default_factory=dict)       # region index -> RegionTracker
    markers_done: int = 0


@dataclass
class _Audio:
    plan: Plan
    ranges: list                                       # cuts.audio_ranges
    next_sample: int | None = None                     # the release's next sample timestamp
    layout: str = "mono"


def redact_media(original_mp4: str, release_mp4: str, plan: Plan, faces: FaceSource | None = None,
                 progress: Callable[[float], None] | None = None) -> MediaResult:
    with av.open(original_mp4) as src:
        vin = src.streams.video[0]
        ain = src.streams.audio[0] if src.streams.audio else None
        vin.thread_type = "AUTO"
        result = MediaResult(width=vin.codec_context.width, height=vin.codec_context.height)
        spans = _cut_spans(original_mp4, plan, vin.time_base, vin.average_rate)
        result.cuts = cut_table.record_entries(spans, vin.time_base)
        video = _Video(plan, faces, spans, vin.time_base, result.width, result.height)
        with av.open(release_mp4, "w", format="mp4") as dst:
            vout = dst.add_stream("libx264", rate=vin.average_rate or 30)
            vout.width, vout.height, vout.pix_fmt = result.width, result.height, "yuv420p"
            vout.time_base = vin.time_base
            vout.codec_context.time_base = vin.time_base
            vout.options = {"crf": str(VIDEO_CRF), "preset": VIDEO_PRESET}
            vout.thread_type = "AUTO"
            aout = audio = None
            if ain is not None:
                aout = dst.add_stream("aac", rate=ain.codec_context.sample_rate)
                aout.layout = ain.codec_context.layout.name
                aout.bit_rate = AUDIO_BIT_RATE
                result.audio_rate_hz = ain.codec_context.sample_rate
                audio = _Audio(plan, cut_table.audio_ranges(spans, vin.time_base, result.audio_rate_hz),
                               layout=aout.layout.name)
            streams = [vin] + ([ain] if ain is not None else [])
            for packet in src.demux(*streams):
                for frame in packet.decode():
                    if packet.stream is vin:
                        _video_frame(frame, video, result, vout, dst)
                        if progress is not None and frame.time is not None:
                            progress(frame.time)
                    else:
                        _audio_frame(frame, audio, result, aout, dst)
            # Cuts that reach the event's end: their markers close the release.
            _markers_before(None, video, result, vout, dst)
            if audio is not None:
                _audio_to_end(spans, vin.time_base, audio, result, aout, dst)
            result.frames_track_lost = sum(t.lost_frames for t in video.trackers.values())
            for stream in (vout, aout):
                if stream is not None:
                    for packet in stream.encode(None):
                        dst.mux(packet)
    return result


def _cut_spans(original_mp4: str, plan: Plan, time_base: Fraction, rate) -> list:
    """The cut table needs every frame's timestamp before the first frame is written:
    one pass over the packets (no decoding)."""
    if not plan.cuts:
        return []
    with av.open(original_mp4) as c:
        pts = sorted(p.pts for p in c.demux(c.streams.video[0]) if p.pts is not None)
    return cut_table.plan_cuts(plan.cuts, pts, time_base, cut_table.frame_ticks(pts, time_base, rate))


def _video_frame(frame, video: _Video, result: MediaResult, vout, dst) -> None:
    index = result.frames
    result.frames += 1
    offset = cut_table.video_offset(video.spans, frame.pts)
    if offset is None:          # inside a cut: left out
        result.frames_cut += 1
        return
    _markers_before(frame.pts, video, result, vout, dst)
    t_s = float(frame.pts * frame.time_base)
    rgb = frame.to_ndarray(format="rgb24")
    hidden = []
    plan = video.plan
    for number, region in enumerate(plan.regions):
        if region.start_s <= t_s < region.end_s:
            box = region.box
            if region.track:
                box = video.trackers.setdefault(number, RegionTracker(region.box)).box_for(rgb)
            applied = frame_ops.apply(rgb, box, region.style)
            if applied is not None:
                hidden.append([*applied, region.style, "region"])
    if video.faces is not None and plan.faces.enabled:
        for box in video.faces(index, t_s, rgb):
            applied = frame_ops.apply(rgb, frame_ops.expand(box, plan.faces.margin_fraction), plan.faces.style)
            if applied is not None:
                hidden.append([*applied, plan.faces.style, "face"])
    if hidden:
        result.masks.append([index, round(t_s, 6), hidden])
    _encode(rgb, frame.pts + offset, frame.time_base, vout, dst)


def _markers_before(pts: int | None, video: _Video, result: MediaResult, vout, dst) -> None:
    """Write the marker of every cut that ends at or before the original frame `pts`
    (None: the event's end), once, in its place."""
    while video.markers_done < len(video.spans):
        span = video.spans[video.markers_done]
        if pts is not None and pts < span.removed_end_pts:
            return
        card = cut_table.marker_card(video.width, video.height, span, video.time_base)
        for i in range(span.marker_frames):
            _encode(card.copy(), span.marker_first_pts + i * span.frame_ticks, video.time_base, vout, dst)
        result.marker_frames += span.marker_frames
        video.markers_done += 1


def _encode(rgb: np.ndarray, pts: int, time_base: Fraction, vout, dst) -> None:
    out = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    out.pts, out.time_base = pts, time_base
    for packet in vout.encode(out):
        dst.mux(packet)


def _audio_frame(frame, audio: _Audio, result: MediaResult, aout, dst) -> None:
    rate = frame.sample_rate
    samples = frame.to_ndarray().astype(np.float32)
    if samples.ndim == 1 or frame.format.is_packed:
        samples = samples.reshape(-1, len(frame.layout.channels)).T.copy()
    start = round(float(frame.pts * frame.time_base) * rate) if frame.pts is not None else result.audio_samples
    n = samples.shape[1]
    for span in audio.plan.audio:
        first, last = round(span.start_s * rate) - start, round(span.end_s * rate) - start
        if last <= 0 or first >= n:
            continue
        if span.mode == "mute":
            frame_ops.silence(samples, first, min(last, n))
        else:
            frame_ops.tone(samples, first, min(last, n), rate, span.tone_hz, start)
    result.audio_samples = start + n
    if not audio.ranges:
        _write_audio(samples, start, rate, audio, aout, dst)
        return
    # Cuts: the kept pieces of this frame, each moved by the offset of the cuts before it.
    # The release's sound is one contiguous track: what no piece fills (a cut's marker) is
    # written as silence by _write_audio.
    bounds = sorted({0, n, *[min(n, max(0, b - start)) for first, end, _ in audio.ranges for b in (first, end)]})
    for lo, hi in zip(bounds, bounds[1:]):
        offset = cut_table.audio_offset(audio.ranges, start + lo)
        if hi > lo and offset is not None:
            _write_audio(samples[:, lo:hi], start + lo + offset, rate, audio, aout, dst)


def _audio_to_end(spans: list, time_base: Fraction, audio: _Audio, result: MediaResult, aout, dst) -> None:
    """A cut reaching the event's end: its marker's silence closes the sound."""
    if spans and spans[-1].reaches_end and audio.next_sample is not None:
        end = round(spans[-1].marker_end_pts * time_base * result.audio_rate_hz)
        channels = len(aout.layout.channels)
        _write_audio(np.zeros((channels, 0), np.float32), end, result.audio_rate_hz, audio, aout, dst)


def _write_audio(samples: np.ndarray, at: int, rate: int, audio: _Audio, aout, dst) -> None:
    """Samples at release timestamp `at`; a gap since the last write is filled with silence
    (the encoder takes one contiguous track)."""
    if audio.next_sample is not None and at > audio.next_sample:
        gap = _silence(samples.shape[0], at - audio.next_sample)
        samples, at = np.concatenate([gap, samples], axis=1), audio.next_sample
    elif audio.next_sample is not None and at < audio.next_sample:
        samples = samples[:, audio.next_sample - at:]
        at = audio.next_sample
    if samples.shape[1] == 0:
        return
    out = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format="fltp", layout=audio.layout)
    out.sample_rate, out.pts, out.time_base = rate, at, Fraction(1, rate)
    for packet in aout.encode(out):
        dst.mux(packet)
    audio.next_sample = at + samples.shape[1]


def _silence(channels: int, samples: int) -> np.ndarray:
    """What fills the release's sound where the original has none to give (a cut's marker,
    a gap in the original's track)."""
    return np.zeros((channels, samples), np.float32)
