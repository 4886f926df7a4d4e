"""PiCamera: picamera2's H.264 encoder feeding our own Output (HAL-2).

picamera2 is injected as a `Picamera2Api` (its three classes we use), so this
module never imports picamera2 or libcamera on its own; load_picamera2_api()
does that, once, when the Pi backend is chosen. The tests run the real
picamera2 0.3.38 on stub libcamera bindings (tests/pi/picamera2_env.py).

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

Failures (issue 9). picamera2 calls our output on its own threads: the V4L2
poll thread (Pi 4, Zero 2 W) or the camera event loop (Pi 5, libav). An
exception there kills that thread: on V4L2 capture silently stops (the dead
thread keeps every camera buffer), on libav the event loop ends and
stop_recording() then waits forever. So nothing escapes the frame callback:
the first failure of a session is logged once and every later frame of that
session is dropped, which the firmware's monitor sees as a lost camera within
policy.camera_timeout_s and answers with stop() + start(). stop() runs
picamera2's shutdown on a helper thread and waits at most stop_timeout_s; a
session that does not stop is abandoned and stuck() turns True (only a new
process can get the camera back, hal/camera.py).
"""
from __future__ import annotations

import atexit
import logging
import threading
import time
from typing import Any, Callable, NamedTuple

from hal.camera import Camera
from hal.clock import Clock
from hal.media import MediaPacket, PacketSink, VideoFormat
from hal.pi import BackendUnavailable

log = logging.getLogger(__name__)

_START_CODE_3 = b"\x00\x00\x01"
_NAL_SPS = 7
_NAL_SLICE_TYPES = (1, 5)
STOP_TIMEOUT_S = 3.0


class PiCameraError(Exception):
    """The camera could not start, or picamera2 broke the packet contract."""


class Picamera2Api(NamedTuple):
    """The parts of picamera2 PiCamera uses."""

    Picamera2: Any       # picamera2.Picamera2
    H264Encoder: Any     # picamera2.encoders.H264Encoder (V4L2 on Pi 4 and older, libav on Pi 5)
    Output: Any          # picamera2.outputs.Output, the base our output must subclass


def load_picamera2_api() -> Picamera2Api:
    """Import picamera2, or say in one line what is wrong and what to do."""
    try:
        from picamera2 import Picamera2
        from picamera2.encoders import H264Encoder
        from picamera2.outputs import Output
    except ImportError as exc:
        if (exc.name or "").split(".")[0] == "picamera2":
            raise BackendUnavailable(
                "picamera2 is not installed: the Pi backend needs Raspberry Pi OS with "
                "python3-picamera2 (apt install python3-picamera2) and a venv created with "
                f"--system-site-packages so it can see it ({exc})") from exc
        # picamera2 is there (a PyPI copy, say) but what it binds to is not: libcamera's
        # bindings come only from apt, built for the board's own libcamera.
        raise BackendUnavailable(
            f"picamera2 is installed but cannot load {exc.name or 'a module it needs'} ({exc}): the Pi "
            "backend needs Raspberry Pi OS's python3-picamera2 and python3-libcamera (apt install "
            "python3-picamera2) in a venv created with --system-site-packages (docs/pi.md#install)") from exc
    except Exception as exc:  # noqa: BLE001 - any import-time failure must be one line, not a traceback
        cause = describe_error(exc)
        if "numpy.dtype size changed" in cause or "numpy" in cause.lower():
            hint = ("a numpy in the venv does not match the one Raspberry Pi OS built simplejpeg and "
                    "picamera2 against; reinstall keeping the system numpy (docs/pi.md#install)")
        else:
            hint = "see docs/pi.md#install"
        raise BackendUnavailable(f"picamera2 failed to import ({cause}): {hint}") from exc
    return Picamera2Api(Picamera2=Picamera2, H264Encoder=H264Encoder, Output=Output)


def describe_error(exc: BaseException) -> str:
    """`Type: message <- Type: cause ...` on one line: picamera2 wraps the useful part in a cause."""
    parts, seen = [], set()
    while exc is not None and id(exc) not in seen and len(parts) < 4:
        seen.add(id(exc))
        parts.append(f"{type(exc).__name__}: {exc}".strip().rstrip(":"))
        exc = exc.__cause__ or exc.__context__
    return " <- ".join(" ".join(part.split()) for part in parts)


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
            # encoder calls it positionally from its own thread. FrameConverter
            # never raises (module doc).
            self._on_frame(frame, keyframe, timestamp, audio)

    return PacketOutput


def _encoder_kind(encoder_class: Any) -> str:
    names = {cls.__name__ for cls in getattr(encoder_class, "__mro__", ())}
    if "V4L2Encoder" in names:
        return "v4l2"
    if "LibavH264Encoder" in names:
        return "libav"
    return "unknown"


class _Session:
    """One Picamera2 from open to close, and the converter its encoder feeds."""

    def __init__(self, picam2: Any, converter: "FrameConverter | None", encoder_started: bool = True) -> None:
        self.picam2, self.converter = picam2, converter
        self.encoder_started = encoder_started   # False: a start that failed before the encoder ran


class PiCamera(Camera):
    def __init__(self, *, width: int, height: int, fps: int, keyframe_interval_s: float,
                 bitrate_bps: int, clock: Clock, picamera2_api: Picamera2Api, camera_num: int = 0,
                 sensor_clock_us: Callable[[], int] = sensor_clock_now_us,
                 stop_timeout_s: float = STOP_TIMEOUT_S) -> None:
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
        self._stop_timeout_s = stop_timeout_s
        self._output_class = _packet_output_class(picamera2_api.Output)
        self._session: _Session | None = None
        self._stuck = False

    @property
    def video_format(self) -> VideoFormat:
        return self._format

    @property
    def encoder_kind(self) -> str:
        """"v4l2" (the VideoCore encoder: Pi 4, Zero 2 W, CM4) or "libav" (software x264: Pi 5, CM5)."""
        return _encoder_kind(self._api.H264Encoder)

    def stuck(self) -> bool:
        return self._stuck

    def start(self, sink: PacketSink) -> None:
        if self._session is not None:
            raise PiCameraError("PiCamera.start() called while already started")
        if self._stuck:
            raise PiCameraError(f"camera {self._camera_num} cannot be reopened: an earlier session is still "
                                "stuck inside picamera2 (its stop timed out); the service must restart")
        fmt = self._format
        # A fresh Picamera2 per start: after a cable fault (FLT-1) or a failed
        # session the old libcamera session is dead; reopening is the reliable reconnect.
        try:
            picam2 = self._api.Picamera2(self._camera_num)
        except Exception as exc:  # noqa: BLE001 - reported as one line
            raise PiCameraError(
                f"camera {self._camera_num} could not be opened ({describe_error(exc)}); "
                "check the ribbon cable and `rpicam-hello --list-cameras`") from exc
        step = f"configuring {fmt.width}x{fmt.height} YUV420 at {fmt.fps} fps"
        encoder_started = False
        try:
            config = picam2.create_video_configuration(
                main={"size": (fmt.width, fmt.height), "format": "YUV420"},
                controls={"FrameRate": fmt.fps})
            picam2.configure(config)
            step = f"creating the {self.encoder_kind} H.264 encoder"
            encoder = self._api.H264Encoder(
                bitrate=fmt.bitrate_bps, repeat=True, iperiod=self._iperiod_frames, framerate=fmt.fps)
            converter = FrameConverter(
                sink, encoder, offset_us=self._clock.monotonic_us() - self._sensor_clock_us(),
                frame_duration_us=round(1_000_000 / fmt.fps), camera_num=self._camera_num)
            step = f"starting the {self.encoder_kind} H.264 encoder and the camera"
            encoder_started = True   # start_recording starts the encoder before the camera
            picam2.start_recording(encoder, self._output_class(converter))
        except Exception as exc:  # noqa: BLE001 - reported as one line
            # picamera2's close() does not stop a running encoder: without stop_encoder()
            # every failed start would leave its threads and buffers behind (the monitor
            # retries every few seconds for a whole shift).
            failed = _Session(picam2, None, encoder_started=encoder_started)
            self._shut_down(failed, f"closing camera {self._camera_num} after a failed start")
            raise PiCameraError(f"camera {self._camera_num} did not start recording: {step} failed "
                                f"({describe_error(exc)})") from exc
        self._session = _Session(picam2, converter)

    def stop(self) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        session.converter.close()  # a frame still in flight goes nowhere
        self._shut_down(session, f"stopping camera {self._camera_num}")

    def _shut_down(self, session: _Session, what: str) -> None:
        """stop_recording() + close() on a helper thread, waiting at most stop_timeout_s."""
        errors: list[str] = []
        picam2 = session.picam2

        def shut_down() -> None:
            if session.converter is None:   # a failed start: stop what it began, then close
                steps = ("stop", "stop_encoder", "close") if session.encoder_started else ("close",)
            else:
                steps = ("stop_recording", "close")
            for step in steps:
                try:
                    getattr(picam2, step)()
                except Exception as exc:  # noqa: BLE001 - a half-dead session is still closed
                    errors.append(f"{step}: {describe_error(exc)}")

        worker = threading.Thread(target=shut_down, name=f"picamera2-stop-{self._camera_num}", daemon=True)
        worker.start()
        worker.join(self._stop_timeout_s)
        if worker.is_alive():
            self._stuck = True
            # Picamera2 registers close() with atexit; the wedged one would hang the exit.
            atexit.unregister(picam2.close)
            log.error("%s: picamera2 did not return within %.1f s; session abandoned, camera stuck "
                      "until the service restarts", what, self._stop_timeout_s)
        elif errors:
            log.warning("%s: %s", what, "; ".join(errors))


class FrameConverter:
    """One recording session's picamera2 frame -> MediaPacket conversion.

    Built per start(), so a late frame from an old session can never reach a
    new sink or use a new offset. Runs on picamera2's encoder thread: it
    converts and appends, nothing else, and never raises (module doc).
    """

    def __init__(self, sink: PacketSink, encoder: Any, *, offset_us: int, frame_duration_us: int,
                 camera_num: int = 0) -> None:
        self._sink = sink
        self._encoder = encoder
        self._offset_us = offset_us
        self._frame_duration_us = frame_duration_us
        self._camera_num = camera_num
        self._dropping = False
        self.failure: str | None = None

    def close(self) -> None:
        self._dropping = True

    def __call__(self, frame: Any, keyframe: bool, timestamp: int | None, audio: bool) -> None:
        if self._dropping:
            return
        try:
            self._sink(self.convert(frame, keyframe, timestamp, audio))
        except Exception as exc:  # noqa: BLE001 - an escaping exception kills picamera2's thread
            self._dropping = True
            self.failure = describe_error(exc)
            log.error("camera %d: frame dropped and the session's later frames too, until the camera is "
                      "restarted (%s)", self._camera_num, self.failure)

    def convert(self, frame: Any, keyframe: bool, timestamp: int | None, audio: bool) -> MediaPacket:
        if audio:
            raise PiCameraError("picamera2 delivered audio; PiCamera never enables encoder audio")
        first_sensor_us = self._encoder.firsttimestamp
        if timestamp is None or first_sensor_us is None:
            raise PiCameraError("picamera2 delivered a frame without a sensor timestamp")
        # Both encoders pass bytes (bytes() of bytes is no copy); a buffer view
        # would be copied here, as the encoder reuses its buffers.
        data = bytes(frame)
        check_annexb_access_unit(data, keyframe)
        return MediaPacket(
            kind="video", data=data,
            timestamp_us=first_sensor_us + timestamp + self._offset_us,
            duration_us=self._frame_duration_us, keyframe=bool(keyframe))
