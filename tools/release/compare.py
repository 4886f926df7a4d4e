"""Is the release the original minus exactly the declared redactions? (docs/release.md §5)

Video: every release frame is paired with the original frame of the same timestamp; a
frame added, dropped or moved is a difference. Each pair is compared in 16x16 blocks
outside the frame's declared masks (and a 16-pixel band around them, where the codec's
blocks straddle a mask's edge): a block whose mean absolute difference exceeds the
tolerance changed without being declared. Audio: samples are paired by timestamp and
compared in 0.1 s windows outside the declared spans (and one AAC frame either side).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import av
import numpy as np

from tools.release import cuts, hidden, marker_check

BLOCK_PX = 16
EDGE_BAND_PX = 16
BLOCK_TOLERANCE = 8.0           # mean |difference| per block, of 255; honest CRF 16 releases stay under ~5
AUDIO_WINDOW_S = 0.1
AUDIO_MIN_WINDOW_S = 0.02       # a run of compared samples shorter than this is not judged
AUDIO_GAP_LIMIT_S = 600         # gaps in a track beyond 4x its sound plus this are refused
AUDIO_GUARD_SAMPLES = 2048      # AAC's overlapping windows smear an edit over a frame either side
AUDIO_TOLERANCE = 0.1           # RMS of the difference / RMS of the original: -20 dB
AUDIO_LAG_SAMPLES = 1024        # how far from its timestamps a release's sound may lie
AUDIO_LAG_PROBE_S = 2.0         # the stretch of sound the lag is measured on
AUDIO_FLOOR = 2e-3              # below this RMS a window is near silence; compared absolutely
MAX_LISTED = 20                 # differences listed in a report (all are counted)


@dataclass
class Comparison:
    frames: int = 0
    frames_compared: int = 0
    frames_cut: int = 0             # original frames a declared cut removes
    marker_frames: int = 0          # release frames that are a cut's marker
    frame_times_s: dict = field(default_factory=dict)   # compared original frames: index -> timestamp
    worst_block: float = 0.0
    audio_windows: int = 0
    worst_audio_ratio: float = 0.0
    differences: list[str] = field(default_factory=list)
    count: int = 0

    def differ(self, what: str) -> None:
        self.count += 1
        if len(self.differences) < MAX_LISTED:
            self.differences.append(what)


def _video(path: str):
    with av.open(path) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in c.decode(stream):
            yield frame.pts, frame.time_base, frame.to_ndarray(format="rgb24")


def compare_video(original_mp4: str, release_mp4: str, masks: list, result: Comparison,
                  spans: list | None = None) -> None:
    """`spans`: the cut table (tools/release/cuts.py); the original's frames a cut removes
    are not looked for, the release's marker frames are passed over, and every other frame
    is expected at its original timestamp plus the offset of the cuts before it."""
    spans = spans or []
    by_frame = {int(m[0]): m for m in masks}
    release = _release_frames(_video(release_mp4), spans, result)
    for index, (pts, time_base, a) in enumerate(_video(original_mp4)):
        result.frames += 1
        t_s = float(pts * time_base)
        offset = cuts.video_offset(spans, pts)
        if offset is None:
            result.frames_cut += 1
            continue
        got = next(release, None)
        if got is None:
            result.differ(f"video: frame {index} ({t_s:.3f} s) and after are missing from the release")
            return
        r_pts, _, b = got
        if r_pts != pts + offset:
            result.differ(f"video: frame {index} is at {float(r_pts * time_base):.3f} s in the release, "
                          f"{float((pts + offset) * time_base):.3f} s expected (a frame dropped, added or moved)")
            return
        if a.shape != b.shape:
            result.differ(f"video: frame {index} is {b.shape[1]}x{b.shape[0]} in the release, "
                          f"{a.shape[1]}x{a.shape[0]} in the original")
            return
        entry = by_frame.get(index)
        if entry is not None and abs(float(entry[1]) - t_s) > 1e-3:
            result.differ(f"video: the record's masks for frame {index} are for {entry[1]} s, not {t_s:.3f} s")
        result.frame_times_s[index] = t_s
        _compare_frame(a, b, entry[2] if entry is not None else [], index, t_s, result)
        if entry is not None:
            for box, score in hidden.unhidden(b, entry[2]):
                limit = hidden.MASK_LEVEL_MAX if box[4] == "mask" else hidden.BLUR_DETAIL_MAX
                result.differ(f"video: frame {index} ({t_s:.3f} s): the declared {box[4]} {box[:4]} ({box[5]}) "
                              f"is not hidden in the release ({score:.1f} > {limit})")
    if next(release, None) is not None:
        result.differ("video: the release has frames after the original's last")
        return
    expected_markers = sum(s.marker_frames for s in spans)
    if result.marker_frames != expected_markers:
        result.differ(f"video: {result.marker_frames} cut-marker frames in the release, {expected_markers} declared")


def _release_frames(frames, spans: list, result: Comparison):
    """The release's frames less its cut markers (counted, and each checked to be the
    marker: tools/release/marker_check.py)."""
    for pts, time_base, rgb in frames:
        span = cuts.marker_of(spans, pts)
        if span is not None:
            result.marker_frames += 1
            problem = marker_check.frame_problem(rgb, span, time_base, BLOCK_TOLERANCE)
            if problem is not None:
                result.differ(f"video: the release's frame at {float(pts * time_base):.3f} s, in the marker of the "
                              f"cut {span.cut.start_s}-{span.cut.end_s} s, {problem}")
            continue
        yield pts, time_base, rgb


def _compare_frame(a: np.ndarray, b: np.ndarray, boxes: list, index: int, t_s: float, result: Comparison) -> None:
    height, width = a.shape[:2]
    rows, cols = -(-height // BLOCK_PX), -(-width // BLOCK_PX)
    # A block is compared only if none of its pixels is in a mask or the band around it.
    compared = np.ones((rows, cols), bool)
    for x, y, w, h, *_ in boxes:
        x0, y0 = max(0, x - EDGE_BAND_PX), max(0, y - EDGE_BAND_PX)
        x1, y1 = min(width, x + w + EDGE_BAND_PX), min(height, y + h + EDGE_BAND_PX)
        if x1 > x0 and y1 > y0:
            compared[y0 // BLOCK_PX:(y1 - 1) // BLOCK_PX + 1, x0 // BLOCK_PX:(x1 - 1) // BLOCK_PX + 1] = False
    result.frames_compared += 1
    if not compared.any():
        return
    # Integer sums, no float per pixel: a row of a block and its channels are one run of
    # BLOCK_PX * channels values in the packed RGB frame, so rows are added first (along
    # contiguous memory), then each run.
    channels = a.shape[2]
    diff = np.abs(np.subtract(a, b, dtype=np.int16))
    if rows * BLOCK_PX != height or cols * BLOCK_PX != width:
        diff = np.pad(diff, ((0, rows * BLOCK_PX - height), (0, cols * BLOCK_PX - width), (0, 0)))
    run = BLOCK_PX * channels
    sums = (diff.reshape(rows, BLOCK_PX, cols * run).sum(axis=1, dtype=np.int32)
            .reshape(rows, cols, run).sum(axis=2))
    means = sums / (_block_area(height, width) * channels)   # blocks cut by an edge: their pixels only
    worst = float(means[compared].max())
    result.worst_block = max(result.worst_block, worst)
    if worst > BLOCK_TOLERANCE:
        ys, xs = np.nonzero(compared & (means > BLOCK_TOLERANCE))
        x0, y0 = int(xs.min()) * BLOCK_PX, int(ys.min()) * BLOCK_PX
        x1, y1 = min(width, (int(xs.max()) + 1) * BLOCK_PX), min(height, (int(ys.max()) + 1) * BLOCK_PX)
        result.differ(f"video: frame {index} ({t_s:.3f} s) changed outside every declared mask in "
                      f"[{x0}, {y0}, {x1 - x0}, {y1 - y0}] (block difference {worst:.1f} > {BLOCK_TOLERANCE})")


@functools.lru_cache(maxsize=8)
def _block_area(height: int, width: int) -> np.ndarray:
    """Pixels of the frame in each block (fewer in blocks cut by the right or bottom edge)."""
    rows_px = np.minimum(BLOCK_PX, height - np.arange(0, height, BLOCK_PX))
    cols_px = np.minimum(BLOCK_PX, width - np.arange(0, width, BLOCK_PX))
    return np.outer(rows_px, cols_px)


def _audio(path: str) -> tuple[int, int, np.ndarray, np.ndarray] | None:
    """(rate, first sample's timestamp, samples, present): the track laid out by timestamps
    (channels averaged), so a gap in it (a microphone lost) stays a gap, `present` False,
    rather than closing up and moving everything after it."""
    with av.open(path) as c:
        if not c.streams.audio:
            return None
        stream = c.streams.audio[0]
        chunks, start = [], None
        for frame in c.decode(stream):
            samples = frame.to_ndarray()
            samples = samples.reshape(-1) if frame.format.is_planar and samples.shape[0] == 1 else samples.mean(axis=0)
            at = round(float(frame.pts * frame.time_base) * stream.rate) if frame.pts is not None else None
            if start is None:
                start = at if at is not None else 0
            chunks.append((at, samples.astype(np.float32)))
        if start is None:
            return None
    placed, cursor = [], start
    for at, samples in chunks:
        at = cursor if at is None else at
        placed.append((at - start, samples))
        cursor = at + len(samples)
    end = max(offset + len(samples) for offset, samples in placed)
    held = sum(len(samples) for _, samples in placed)
    if end > 4 * held + AUDIO_GAP_LIMIT_S * stream.rate:
        # Timestamps that leap far past the sound a file holds would have the layout claim
        # gigabytes: a damaged or hostile file, not one to compare.
        raise ValueError(f"{path}: its sound's timestamps run to {end / stream.rate:.0f} s for "
                         f"{held / stream.rate:.0f} s of sound")
    track, present = np.zeros(end, np.float32), np.zeros(end, bool)
    for offset, samples in placed:
        if offset >= 0:
            track[offset:offset + len(samples)] = samples
            present[offset:offset + len(samples)] = True
    return stream.rate, start, track, present


def compare_audio(original_mp4: str, release_mp4: str, spans: list, result: Comparison,
                  cut_spans: list | None = None, video_time_base=None) -> None:
    """`cut_spans` (with the video's time base): the sound of a cut's removed frames is not
    looked for, and everything after is expected moved by the cut's offset."""
    original, release = _audio(original_mp4), _audio(release_mp4)
    if original is None or release is None:
        if (original is None) != (release is None):
            result.differ("audio: one file has sound and the other has none")
        return
    (rate, start, a, a_present), (r_rate, r_start, b, b_present) = original, release
    if rate != r_rate:
        result.differ(f"audio: {r_rate} Hz in the release, {rate} Hz in the original")
        return
    skip = np.zeros(len(a), bool)
    for start_s, end_s, *_ in spans:
        first = round(start_s * rate) - start - AUDIO_GUARD_SAMPLES
        last = round(end_s * rate) - start + AUDIO_GUARD_SAMPLES
        skip[max(0, first):max(0, last)] = True
    # The track's own start and end are edges too: the encoder starts and ends cold there;
    # so are the edges of a gap in the original's sound (the release has silence there).
    skip[:AUDIO_GUARD_SAMPLES] = True
    skip[max(0, len(a) - AUDIO_GUARD_SAMPLES):] = True
    for lo, hi in _runs(~a_present):
        skip[max(0, lo - AUDIO_GUARD_SAMPLES):hi + AUDIO_GUARD_SAMPLES] = True
    # Cuts: removed samples are skipped with a guard either side (the encoder meets a new
    # sound there), and each sample after a cut is looked for moved by its offset.
    shift = np.zeros(len(a), np.int64)
    for first, end, after in cuts.audio_ranges(cut_spans or [], video_time_base, rate):
        lo, hi = first - start, end - start
        skip[max(0, lo - AUDIO_GUARD_SAMPLES):max(0, hi + AUDIO_GUARD_SAMPLES)] = True
        shift[max(0, hi):] = after
    # The release index of the original's first sample: by timestamps, then the lag within
    # one AAC frame either way that matches best (the MP4 edit list of an encoder's
    # priming can move the decoded timestamps off the samples by a few; docs/release.md §5).
    _marker_sound(b, b_present, r_start, cut_spans or [], video_time_base, rate, result)
    lag = _best_lag(a, b, skip, start - r_start, shift, rate)
    where = np.arange(len(a), dtype=np.int64) + (start - r_start + lag) + shift
    outside = (where < 0) | (where >= len(b))
    outside[~outside] = ~b_present[where[~outside]]
    if (outside & ~skip).any():
        result.differ("audio: the release's sound does not cover the original's (samples dropped or moved)")
        return
    skip |= outside
    b = b[np.clip(where, 0, max(0, len(b) - 1))] if len(b) else np.zeros(len(a), np.float32)
    # Every sample not skipped is compared (but slivers under 20 ms): each run of them is cut into windows as near
    # 0.1 s as divide it evenly (a run shorter than a window is one window), so no sound
    # between a guard and the next whole window escapes (a fixed grid let 78 ms of an
    # undeclared mute beside a span pass).
    window = round(AUDIO_WINDOW_S * rate)
    for lo, hi in _runs(~skip):
        if hi - lo < AUDIO_MIN_WINDOW_S * rate:     # a sliver between two guards: too few samples to judge
            continue
        pieces = max(1, round((hi - lo) / window))
        bounds = np.linspace(lo, hi, pieces + 1).round().astype(int)
        for first, last in zip(bounds, bounds[1:]):
            ref, got = a[first:last], b[first:last]
            result.audio_windows += 1
            ref_rms = float(np.sqrt(np.mean(ref ** 2)))
            err_rms = float(np.sqrt(np.mean((got - ref) ** 2)))
            ratio = err_rms / max(ref_rms, AUDIO_FLOOR)
            result.worst_audio_ratio = max(result.worst_audio_ratio, ratio)
            if ratio > AUDIO_TOLERANCE:
                at_s, to_s = (start + first) / rate, (start + last) / rate
                result.differ(f"audio: {at_s:.2f}-{to_s:.2f} s changed outside every declared span "
                              f"(difference {20 * np.log10(max(ratio, 1e-9)):.1f} dB, tolerance -20 dB)")


def _marker_sound(b: np.ndarray, present: np.ndarray, r_start: int, spans: list, time_base, rate: int,
                  result: Comparison) -> None:
    """A cut's marker is silent in the release (less two AAC frames at each edge)."""
    for span in spans:
        lo = round(span.marker_first_pts * time_base * rate) - r_start + AUDIO_GUARD_SAMPLES
        hi = round(span.marker_end_pts * time_base * rate) - r_start - AUDIO_GUARD_SAMPLES
        lo, hi = max(0, lo), min(len(b), hi)
        if hi - lo < AUDIO_MIN_WINDOW_S * rate:
            continue
        heard = b[lo:hi][present[lo:hi]]
        rms = float(np.sqrt(np.mean(heard ** 2))) if heard.size else 0.0
        if rms > AUDIO_FLOOR:
            at_s = (r_start + lo) / rate
            result.differ(f"audio: the marker of the cut {span.cut.start_s}-{span.cut.end_s} s is not silent at "
                          f"{at_s:.2f} s (RMS {rms:.4f} > {AUDIO_FLOOR})")


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], flags.astype(np.int8), [0]))))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def _best_lag(a: np.ndarray, b: np.ndarray, skip: np.ndarray, by_timestamps: int, shift: np.ndarray,
              rate: int) -> int:
    """How far the release's sound lies from where the timestamps (and cuts) put it, within
    AUDIO_LAG_SAMPLES: where the first undeclared stretch of AUDIO_LAG_PROBE_S with sound
    in it matches best (cross-correlation by FFT). Silence gives no lag: timestamps hold."""
    probe = min(round(AUDIO_LAG_PROBE_S * rate), len(a) // 2)
    for first in range(0, len(a) - probe + 1, AUDIO_LAG_SAMPLES):
        ref = a[first:first + probe]
        if probe == 0 or skip[first:first + probe].any() or np.sqrt(np.mean(ref ** 2)) < AUDIO_FLOOR:
            continue
        lo = first + by_timestamps + int(shift[first]) - AUDIO_LAG_SAMPLES
        if lo < 0 or lo + probe + 2 * AUDIO_LAG_SAMPLES > len(b):
            continue
        seg = b[lo:lo + probe + 2 * AUDIO_LAG_SAMPLES]
        n = 1 << int(np.ceil(np.log2(len(seg) + probe)))
        corr = np.fft.irfft(np.fft.rfft(seg, n) * np.conj(np.fft.rfft(ref, n)), n)[:2 * AUDIO_LAG_SAMPLES + 1]
        # A steady tone correlates as well one period away: of the lags within 0.1 % of the
        # best, the one nearest the timestamps' pairing (an honest release is off by a few
        # samples at most, never by whole periods).
        lags = np.arange(-AUDIO_LAG_SAMPLES, AUDIO_LAG_SAMPLES + 1)
        near_best = lags[corr >= corr.max() - 1e-3 * abs(corr.max())]
        return int(near_best[np.argmin(np.abs(near_best))])
    return 0
