"""The simulated camera's view of a video file: source frames by time, letterboxed (SIM-1).

A source file has its own timeline. Source time s (seconds after the first video
frame's presentation time) shows the frame whose presentation interval
[pts_i, pts_i+1) contains s, the last frame lasting until the loop period, the
source's duration. Past the end the timeline continues from the start: time s shows
what time s mod period shows. So a 25 fps clip plays at 1.0x on a 30 fps camera
(some frames repeat), a 60 fps clip drops every other frame, and a variable frame
rate clip keeps its own rhythm, since only pts are used, never a nominal rate.

Frames are decoded forward lazily, one look-ahead frame at a time, so a one-hour
file never sits in memory; only the frame a camera capture actually shows is
scaled. The picture keeps its display aspect ratio (sample aspect ratio and the
display matrix's rotation, in steps of 90 degrees) and is centred on black
(Y=16, U=V=128): letterboxed or pillarboxed.

simulator/source_audio.py places the source's audio on the same timeline, with the
same loop period (`loop_period`).
"""
from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

Y_BLACK, C_NEUTRAL = 16, 128
# A jump this far ahead of the decoder (a long disconnection or a restart much later)
# seeks instead of decoding every frame in between.
_SEEK_AHEAD_S = Fraction(5)


class SourceVideoError(ValueError):
    """The camera's source video cannot be opened or has no decodable video."""


def open_source(path: str) -> av.container.InputContainer:
    """The file opened for reading, or SourceVideoError with a one-line reason."""
    try:
        return av.open(path)
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise SourceVideoError(f"cannot open source video {path!r}: {exc}") from exc


def _video_stream(container: av.container.InputContainer, path: str) -> av.video.stream.VideoStream:
    if not container.streams.video:
        raise SourceVideoError(f"source video {path!r} has no video stream")
    return container.streams.video[0]


def _first_frame(container, stream, path: str) -> av.VideoFrame:
    try:
        for frame in container.decode(stream):
            return frame
    except av.FFmpegError as exc:
        raise SourceVideoError(f"cannot decode source video {path!r}: {exc}") from exc
    raise SourceVideoError(f"source video {path!r} has no decodable video frames")


def _frame_time_s(frame: av.VideoFrame, stream) -> Fraction | None:
    pts = frame.pts
    if pts is None:
        return None
    return pts * (frame.time_base or stream.time_base)


def _header_duration_s(container, stream) -> Fraction | None:
    """The video stream's duration as the file's header states it, if it does."""
    if stream.duration and stream.time_base:
        return stream.duration * stream.time_base
    if container.duration:  # AV_TIME_BASE, µs (Matroska/WebM give no stream duration)
        return Fraction(container.duration, 1_000_000)
    return None


def _scanned_duration_s(path: str) -> Fraction | None:
    """Span of the video packets' presentation intervals: demuxing only, no decoding,
    for files whose header gives no duration (raw Annex B, some streams)."""
    with open_source(path) as container:
        stream = _video_stream(container, path)
        first = end = None
        for packet in container.demux(stream):
            if packet.pts is None:
                continue
            t = packet.pts * stream.time_base
            t_end = t + (packet.duration or 0) * stream.time_base
            first = t if first is None else min(first, t)
            end = t_end if end is None else max(end, t_end)
        return None if first is None or end <= first else end - first


def loop_period(path: str) -> tuple[Fraction, Fraction]:
    """(first video frame's presentation time, loop period), both in seconds.

    The period is the video stream's duration; video and audio both loop on it.
    """
    with open_source(path) as container:
        stream = _video_stream(container, path)
        first = _first_frame(container, stream, path)
        origin_s = _frame_time_s(first, stream) or Fraction(0)
        period_s = _header_duration_s(container, stream)
    if not period_s or period_s <= 0:
        period_s = _scanned_duration_s(path)
    if not period_s or period_s <= 0:
        # One frame and nothing says how long it lasts: show it for one nominal frame.
        rate = stream.average_rate or stream.guessed_rate or 25
        period_s = 1 / Fraction(rate)
    return origin_s, period_s


def _even(x: float) -> int:
    return max(2, 2 * round(x / 2))


class _Layout:
    """Where a decoded picture goes in the camera's frame: the size it is scaled to
    (before rotation), the quarter turns, and the top-left corner of the result."""

    def __init__(self, width: int, height: int, sar: Fraction, rotation_deg: float,
                 out_width: int, out_height: int) -> None:
        self.quarter_turns = round(rotation_deg / 90) % 4
        display_w, display_h = Fraction(width) * sar, Fraction(height)
        if self.quarter_turns % 2:
            display_w, display_h = display_h, display_w
        if display_w * out_height >= display_h * out_width:  # wider than the camera: bars above and below
            fit_w, fit_h = out_width, min(out_height, _even(out_width * display_h / display_w))
        else:  # taller: bars left and right
            fit_w, fit_h = min(out_width, _even(out_height * display_w / display_h)), out_height
        # Offsets even, so the chroma planes (half size) line up with luma.
        self.x0, self.y0 = ((out_width - fit_w) // 2) & ~1, ((out_height - fit_h) // 2) & ~1
        self.fit_w, self.fit_h = fit_w, fit_h
        # Scale to the size that, turned, is fit_w x fit_h.
        self.scale_w, self.scale_h = (fit_h, fit_w) if self.quarter_turns % 2 else (fit_w, fit_h)


def _planes(yuv: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y, U and V planes of a (height*3/2, width) yuv420p array."""
    cw, ch = width // 2, height // 2
    chroma = yuv[height:].reshape(-1)
    return yuv[:height], chroma[: cw * ch].reshape(ch, cw), chroma[cw * ch : 2 * cw * ch].reshape(ch, cw)


class SourceFrames:
    """Pictures of a video file by source time, scaled into width x height (yuv420p)."""

    def __init__(self, path: str, width: int, height: int) -> None:
        self._path, self._width, self._height = path, width, height
        self._origin_s, self.period_s = loop_period(path)
        self._container: av.container.InputContainer | None = None
        self._stream = None
        self._frames = iter(())
        self._pass = -1            # which run through the file the decoder is on
        self._current: tuple[Fraction, av.VideoFrame] | None = None   # (start, frame) shown now
        self._ahead: tuple[Fraction, av.VideoFrame] | None = None     # the next frame, if any
        self._picture: np.ndarray | None = None                        # _current, scaled
        self._layouts: dict[tuple, _Layout] = {}
        self._restart(0)

    # -- decoding forward ----------------------------------------------------------

    def _restart(self, pass_number: int, seek_to_s: Fraction | None = None) -> None:
        """Begin decoding run `pass_number` from the start (or from the keyframe before
        `seek_to_s`)."""
        self.close()
        self._container = open_source(self._path)
        self._stream = _video_stream(self._container, self._path)
        self._stream.thread_type = "AUTO"  # frame threads: decoding a big source keeps up
        if seek_to_s is not None and seek_to_s > 0:
            offset = int((self._origin_s + seek_to_s) / self._stream.time_base)
            try:
                self._container.seek(offset, stream=self._stream, backward=True)
            except av.FFmpegError:
                self._container.close()
                self._container = open_source(self._path)
                self._stream = _video_stream(self._container, self._path)
        self._frames = self._container.decode(self._stream)
        self._pass = pass_number
        self._current, self._picture = None, None
        self._ahead = self._decode_next()
        if self._ahead is None:
            raise SourceVideoError(f"source video {self._path!r} has no decodable video frames")
        if seek_to_s is None:
            # The first frame shows from source time 0 whatever its pts says.
            self._ahead = (Fraction(0), self._ahead[1])

    def _decode_next(self) -> tuple[Fraction, av.VideoFrame] | None:
        try:
            frame = next(self._frames)
        except StopIteration:
            return None
        except av.FFmpegError as exc:
            if self._current is not None or self._ahead is not None:
                # A damaged tail: this pass ends at the last good frame (which then
                # lasts until the loop) rather than stopping the simulated world.
                return None
            raise SourceVideoError(f"cannot decode source video {self._path!r}: {exc}") from exc
        t = _frame_time_s(frame, self._stream)
        if t is None:
            # No pts (some raw streams): one nominal frame after the previous one.
            previous = self._current or self._ahead
            rate = self._stream.average_rate or self._stream.guessed_rate or 25
            start = (previous[0] if previous else Fraction(0)) + 1 / Fraction(rate)
        else:
            start = t - self._origin_s
        return start, frame

    def _advance_to(self, source_s: Fraction) -> None:
        """Make _current the frame whose interval contains `source_s` (within one pass)."""
        if self._current is not None and source_s < self._current[0]:
            self._restart(self._pass)  # asked for an earlier time: only a restart goes back
        if self._ahead is not None and source_s - self._ahead[0] > _SEEK_AHEAD_S:
            self._restart(self._pass, seek_to_s=source_s)
        while self._ahead is not None and (self._current is None or self._ahead[0] <= source_s):
            self._current, self._picture = self._ahead, None
            self._ahead = self._decode_next()

    # -- the picture -----------------------------------------------------------------

    def picture_at(self, source_us: int) -> np.ndarray:
        """The yuv420p picture (height*3/2 x width, a fresh array) at `source_us`
        µs of source time; any time >= 0, the file looping past its end."""
        source_s = Fraction(max(0, source_us), 1_000_000)
        pass_number = int(source_s // self.period_s)
        source_s -= pass_number * self.period_s
        if pass_number != self._pass:
            self._restart(pass_number)
        self._advance_to(source_s)
        if self._picture is None:
            self._picture = self._letterbox(self._current[1])
        return self._picture.copy()

    def _layout(self, frame: av.VideoFrame) -> _Layout:
        sar = self._stream.sample_aspect_ratio or self._stream.codec_context.sample_aspect_ratio
        sar = Fraction(sar) if sar and sar > 0 else Fraction(1)
        rotation = frame.rotation or 0
        key = (frame.width, frame.height, sar, rotation)
        if key not in self._layouts:
            self._layouts[key] = _Layout(frame.width, frame.height, sar, rotation, self._width, self._height)
        return self._layouts[key]

    def _letterbox(self, frame: av.VideoFrame) -> np.ndarray:
        layout = self._layout(frame)
        # Area averaging: footage is usually larger than the camera's frame, and it is the
        # fastest of swscale's filters here (720p to 360p: ~3 ms a frame).
        scaled = frame.reformat(width=layout.scale_w, height=layout.scale_h, format="yuv420p",
                                interpolation="AREA").to_ndarray()
        out = np.empty((self._height * 3 // 2, self._width), dtype=np.uint8)
        out[: self._height] = Y_BLACK
        out[self._height :] = C_NEUTRAL
        x0, y0 = layout.x0, layout.y0
        for src, dst, div in zip(_planes(scaled, layout.scale_w, layout.scale_h),
                                 _planes(out, self._width, self._height), (1, 2, 2)):
            turned = np.rot90(src, layout.quarter_turns)  # counter-clockwise, as the display matrix says
            dst[y0 // div : y0 // div + turned.shape[0], x0 // div : x0 // div + turned.shape[1]] = turned
        return out

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
