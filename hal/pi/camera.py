"""PiCamera: picamera2's H.264 encoder feeding our own Output (HAL-2).

picamera2 is injected as a `Picamera2Api` (its three classes we use), so tests
pass a fake with the same signatures and this module never imports picamera2
or libcamera on its own; load_picamera2_api() does that, once, when the Pi
backend is chosen.

Timestamps. picamera2 hands outputframe() a `timestamp` in µs *relative to the
encoder's first frame*; the first frame's absolute sensor time (µs) is kept in
the encoder's `firsttimestamp` attribute (Encoder._timestamp() in picamera2
0.3.x, both the V4L2 encoder and the libav one used on the Pi 5). The sensor
time comes from the kernel's V4L2 buffer timestamps, i.e. CLOCK_MONOTONIC
(libcamera documents CLOCK_BOOTTIME; the two only differ across a suspend,
which a Pi never does). At start() we read our Clock and CLOCK_MONOTONIC back
to back to get one offset, then map

    timestamp_us = (encoder.firsttimestamp + timestamp) + offset

so each packet carries its *capture* time on Clock.monotonic_us(), with the
sensor's spacing (no callback jitter, no encoder latency). That keeps video
comparable with audio timestamps and with button edges (BUF-2, BENCH-1).
"""
from __future__ import annotations

import time
from typing import Any, Callable, NamedTuple

from hal.camera import Camera
from hal.clock import Clock
from hal.media import MediaPacket, PacketSink, VideoFormat
from hal.pi import BackendUnavailable

_START_CODE_3 = b"\x00\x00\x01"
_NAL_SPS = 7
_NAL_SLICE_TYPES = (1, 5)


class PiCameraError(Exception):
    """The camera could not start, or picamera2 broke the packet contract."""


class Picamera2Api(NamedTuple):
    """The parts of picamera2 PiCamera uses; a fake with the same shape stands in for tests."""

    Picamera2: Any       # picamera2.Picamera2
    H264Encoder: Any     # picamera2.encoders.H264Encoder (V4L2 on Pi 4 and older, libav on Pi 5)
    Output: Any          # picamera2.outputs.Output, the base our output must subclass


def load_picamera2_api() -> Picamera2Api:
    """Import picamera2, or say exactly what to install."""
    try:
        from picamera2 import Picamera2
        from picamera2.encoders import H264Encoder
        from picamera2.outputs import Output
    except ImportError as exc:
        raise BackendUnavailable(
            "picamera2 is not installed: the Pi backend needs Raspberry Pi OS with "
            "python3-picamera2 (apt install python3-picamera2) and a venv created with "
            f"--system-site-packages so it can see it ({exc})") from exc
    return Picamera2Api(Picamera2=Picamera2, H264Encoder=H264Encoder, Output=Output)


def sensor_clock_now_us() -> int:
    """Now on the clock picamera2's sensor timestamps use (CLOCK_MONOTONIC, see module doc)."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def check_annexb_access_unit(data: bytes, keyframe: bool) -> None:
    """Refuse data that breaks MediaPacket's contract: Annex B, SPS ahead of every IDR.

    Only the NAL headers before the first slice are looked at, so the cost does
    not grow with the frame size. A keyframe without SPS would make a segment
    that cannot be decoded from its start (repeat=True prevents it).
    """
    if not data.startswith(_START_CODE_3) and not data.startswith(b"\x00" + _START_CODE_3):
        raise PiCameraError(f"encoder produced a frame that is not Annex B (starts {data[:4].hex()})")
    if not keyframe:
        return
    position = 0
    while (position := data.find(_START_CODE_3, position)) != -1 and position + 3 < len(data):
        nal_type = data[position + 3] & 0x1F
        if nal_type == _NAL_SPS:
            return
        if nal_type in _NAL_SLICE_TYPES:
            break
        position += 3
    raise PiCameraError("encoder produced a keyframe without SPS/PPS (H264Encoder needs repeat=True)")


def _packet_output_class(output_base: type) -> type:
    """Our Output subclass over the given picamera2 Output base.

    picamera2's Encoder.output setter accepts only instances of its own Output,
    and the base is known only once picamera2 is loaded, hence the factory.
    """

    class PacketOutput(output_base):  # type: ignore[misc, valid-type]
        def __init__(self, on_frame: Callable[[Any, bool, int | None, bool], None]) -> None:
            super().__init__()
            self._on_frame = on_frame

        def outputframe(self, frame, keyframe=True, timestamp=None, packet=None, audio=False):
            # Same signature as picamera2's Output.outputframe (0.3.23+); the
            # encoder calls it positionally from its own thread.
            self._on_frame(frame, keyframe, timestamp, audio)

    return PacketOutput


class PiCamera(Camera):
    def __init__(self, *, width: int, height: int, fps: int, keyframe_interval_s: float,
                 bitrate_bps: int, clock: Clock, picamera2_api: Picamera2Api, camera_num: int = 0,
                 sensor_clock_us: Callable[[], int] = sensor_clock_now_us) -> None:
        self._iperiod_frames = round(fps * keyframe_interval_s)
        if fps <= 0 or self._iperiod_frames < 1:
            raise ValueError(f"need fps > 0 and a keyframe interval of at least one frame "
                             f"(fps={fps}, keyframe_interval_s={keyframe_interval_s})")
        # Report the interval the encoder will really use: BUF-2's bound depends on it.
        self._format = VideoFormat(width=width, height=height, fps=fps,
                                   keyframe_interval_s=self._iperiod_frames / fps,
                                   bitrate_bps=bitrate_bps)
        self._clock = clock
        self._api = picamera2_api
        self._camera_num = camera_num
        self._sensor_clock_us = sensor_clock_us
        self._output_class = _packet_output_class(picamera2_api.Output)
        self._picam2: Any = None

    @property
    def video_format(self) -> VideoFormat:
        return self._format

    def start(self, sink: PacketSink) -> None:
        if self._picam2 is not None:
            raise PiCameraError("PiCamera.start() called while already started")
        # A fresh Picamera2 per start: after a cable fault (FLT-1) the old
        # libcamera session is dead, and reopening is the only reliable reconnect.
        try:
            picam2 = self._api.Picamera2(self._camera_num)
        except Exception as exc:
            raise PiCameraError(
                f"camera {self._camera_num} could not be opened ({type(exc).__name__}: {exc}); "
                "check the ribbon cable and `rpicam-hello --list-cameras`") from exc
        try:
            fmt = self._format
            config = picam2.create_video_configuration(
                main={"size": (fmt.width, fmt.height), "format": "YUV420"},
                controls={"FrameRate": fmt.fps})
            picam2.configure(config)
            encoder = self._api.H264Encoder(
                bitrate=fmt.bitrate_bps, repeat=True, iperiod=self._iperiod_frames, framerate=fmt.fps)
            converter = FrameConverter(
                sink, encoder, offset_us=self._clock.monotonic_us() - self._sensor_clock_us(),
                frame_duration_us=round(1_000_000 / fmt.fps))
            picam2.start_recording(encoder, self._output_class(converter))
        except Exception as exc:
            picam2.close()
            raise PiCameraError(f"camera {self._camera_num} did not start recording: {exc}") from exc
        self._picam2 = picam2

    def stop(self) -> None:
        picam2, self._picam2 = self._picam2, None
        if picam2 is None:
            return
        try:
            picam2.stop_recording()  # joins the encoder thread: no frame arrives after this
        finally:
            picam2.close()


class FrameConverter:
    """One recording session's picamera2 frame -> MediaPacket conversion.

    Built per start(), so a late frame from an old session can never reach a
    new sink or use a new offset. Runs on picamera2's encoder thread: it
    converts and appends, nothing else.
    """

    def __init__(self, sink: PacketSink, encoder: Any, *, offset_us: int, frame_duration_us: int) -> None:
        self._sink = sink
        self._encoder = encoder
        self._offset_us = offset_us
        self._frame_duration_us = frame_duration_us

    def __call__(self, frame: Any, keyframe: bool, timestamp: int | None, audio: bool) -> None:
        if audio:
            raise PiCameraError("picamera2 delivered audio; PiCamera never enables encoder audio")
        first_sensor_us = self._encoder.firsttimestamp
        if timestamp is None or first_sensor_us is None:
            raise PiCameraError("picamera2 delivered a frame without a sensor timestamp")
        # Both encoders pass bytes (bytes() of bytes is no copy); a buffer view
        # would be copied here, as the encoder reuses its buffers.
        data = bytes(frame)
        check_annexb_access_unit(data, keyframe)
        self._sink(MediaPacket(
            kind="video", data=data,
            timestamp_us=first_sensor_us + timestamp + self._offset_us,
            duration_us=self._frame_duration_us, keyframe=bool(keyframe)))
