"""A stub libcamera CameraManager and Camera whose sensor thread delivers synthetic YUV420 frames.

The sensor is what a Raspberry Pi camera module and its ISP look like from
pylibcamera: requests queued with queue_request() are completed at the frame
rate the FrameDurationLimits control asks for, each with a SensorTimestamp on
CLOCK_MONOTONIC (ns), and handed to the manager, which makes its event fd
readable so that picamera2's own CameraManager.listen() loop picks them up
with get_ready_requests(). With no request queued, a frame is dropped, as a
real sensor does. The image is a moving square over a drifting gradient with
the frame's sequence number drawn as a 16-bit bar code in the top 16 rows
(read_sequence() reads it back from a decoded frame).

Test controls (not libcamera API): `stall()` stops frames like a pulled
ribbon cable, `wedge_stop()` makes Camera.stop() block like a driver that
never returns, `frames` records (sequence, sensor timestamp ns) of every frame
delivered.
"""
from __future__ import annotations

import collections
import os
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ._libcamera import (CameraConfiguration, ControlInfo, FrameMetadata, Rectangle, Request, Size, Stream,
                         StreamConfiguration, StreamFormats, StreamRole, controls, properties)

BARCODE_BITS = 16
BARCODE_CELL_PX = 16
_BYTES_PER_PIXEL = {"XBGR8888": 4, "XRGB8888": 4, "BGR888": 3, "RGB888": 3, "YUYV": 2}
_YUV420 = ("YUV420", "YVU420")


@dataclass
class SensorSpec:
    """One camera module as libcamera enumerates it. Modes: (raw format, (w, h), max fps)."""

    model: str = "imx708"
    id: str = "/base/soc/i2c0mux/i2c@1/imx708@1a"
    modes: list = field(default_factory=lambda: [
        ("SRGGB10_CSI2P", (1536, 864), 120.13), ("SRGGB10_CSI2P", (2304, 1296), 56.03),
        ("SRGGB10_CSI2P", (4608, 2592), 14.35)])
    location: int = 2
    rotation: int = 180


def _align(value: int, to: int) -> int:
    return (value + to - 1) // to * to


def stride_and_frame_size(pixel_format: str, width: int, height: int) -> tuple[int, int]:
    """What the Pi's ISP asks for: rows padded to 64 bytes, YUV420 chroma at half stride."""
    if pixel_format in _YUV420:
        stride = _align(width, 64)
        return stride, stride * height * 3 // 2
    if pixel_format in _BYTES_PER_PIXEL:
        stride = _align(width * _BYTES_PER_PIXEL[pixel_format], 64)
        return stride, stride * height
    # Raw Bayer: 16 bits a pixel is an upper bound for every CSI2P/PISP packing.
    stride = _align(width * 2, 32)
    return stride, stride * height


def draw_yuv420(buffer: np.ndarray, width: int, height: int, stride: int, sequence: int) -> None:
    """The synthetic scene, written in place into one YUV420 frame buffer."""
    y = buffer[:stride * height].reshape(height, stride)
    columns = (np.arange(width, dtype=np.int32) + sequence * 2) % 256
    y[:, :width] = (40 + columns * 3 // 4)[None, :].astype(np.uint8)
    side = max(16, height // 4)
    left = (sequence * 8) % max(1, width - side)
    top = height // 2 - side // 2
    y[top:top + side, left:left + side] = 235
    for bit in range(BARCODE_BITS):
        x0 = bit * BARCODE_CELL_PX
        if x0 + BARCODE_CELL_PX <= width:
            y[:BARCODE_CELL_PX, x0:x0 + BARCODE_CELL_PX] = 235 if sequence >> bit & 1 else 16
    chroma = buffer[stride * height:stride * height * 3 // 2]
    chroma[:] = 128


def read_sequence(luma: np.ndarray) -> int:
    """The sequence number a frame carries, from its decoded luma plane (height x width)."""
    value = 0
    for bit in range(BARCODE_BITS):
        x0 = bit * BARCODE_CELL_PX
        cell = luma[4:BARCODE_CELL_PX - 4, x0 + 4:x0 + BARCODE_CELL_PX - 4]
        if cell.mean() > 128:
            value |= 1 << bit
    return value


class Camera:
    def __init__(self, manager: "CameraManager", spec: SensorSpec) -> None:
        self._manager = manager
        self.spec = spec
        self.id = spec.id
        largest = max((mode[1] for mode in spec.modes), key=lambda s: s[0] * s[1])
        fastest_us = round(1e6 / max(mode[2] for mode in spec.modes))
        self.properties = {
            properties.Model: spec.model, properties.Location: spec.location,
            properties.Rotation: spec.rotation, properties.PixelArraySize: Size(*largest),
            properties.ColorFilterArrangement: properties.draft.ColorFilterArrangementEnum.RGGB,
        }
        self.controls = {
            controls.ExposureTime: ControlInfo(26, 1_000_000, 20_000),
            controls.AnalogueGain: ControlInfo(1.0, 16.0, 1.0),
            controls.FrameDurationLimits: ControlInfo(fastest_us, 1_000_000_000, 33_333),
            controls.NoiseReductionMode: ControlInfo(0, 4, 0),
            controls.ScalerCrop: ControlInfo(Rectangle(0, 0, 64, 64), Rectangle(0, 0, *largest),
                                             Rectangle(0, 0, *largest)),
        }
        self._acquired = False
        self._config: CameraConfiguration | None = None
        self._queue: collections.deque[Request] = collections.deque()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._running = threading.Event()
        self._streaming = threading.Event()
        self._streaming.set()
        self._stop_wedge = threading.Event()
        self._stop_wedge.set()
        self.frames: list[tuple[int, int]] = []
        self.dropped = 0

    # -- test controls ---------------------------------------------------------------
    def stall(self, stalled: bool = True) -> None:
        """Stop (or resume) delivering frames, like a camera whose cable came loose."""
        self._streaming.clear() if stalled else self._streaming.set()

    def wedge_stop(self, wedged: bool = True) -> None:
        """Make stop() block until wedge_stop(False), like a driver stuck in the kernel."""
        self._stop_wedge.clear() if wedged else self._stop_wedge.set()

    # -- pylibcamera API ---------------------------------------------------------------
    def acquire(self) -> None:
        if self._acquired:
            raise RuntimeError("Failed to acquire camera: Device or resource busy")
        self._acquired = True

    def release(self) -> None:
        if self._running.is_set():
            raise RuntimeError("Failed to release camera: Device or resource busy")
        self._acquired = False

    def generate_configuration(self, roles: list) -> CameraConfiguration:
        raw_sizes: dict[str, list[tuple[int, int]]] = {}
        for fmt, size, _fps in self.spec.modes:
            raw_sizes.setdefault(fmt, []).append(size)
        processed = StreamFormats({fmt: [size for sizes in raw_sizes.values() for size in sizes]
                                   for fmt in ("YUV420", "YVU420", "XBGR8888", "XRGB8888", "BGR888", "RGB888")})
        configs = []
        for role in roles:
            if role == StreamRole.Raw:
                fmt, size, _ = self.spec.modes[0]
                configs.append(StreamConfiguration(fmt, size, StreamFormats(raw_sizes)))
            else:
                configs.append(StreamConfiguration("YUV420" if role == StreamRole.VideoRecording else "XBGR8888",
                                                   (1920, 1080), processed))
        return CameraConfiguration(self, configs)

    def _validate(self, config: CameraConfiguration) -> CameraConfiguration.Status:
        status = CameraConfiguration.Status.Valid
        for stream_config in config:
            fmt = str(stream_config.pixel_format)
            known = fmt in _YUV420 or fmt in _BYTES_PER_PIXEL or fmt in stream_config.formats._sizes
            if not known:
                return CameraConfiguration.Status.Invalid
            if fmt in stream_config.formats._sizes and fmt not in _YUV420 and fmt not in _BYTES_PER_PIXEL:
                wanted = config.sensor_config.output_size if config.sensor_config else stream_config.size
                sizes = [Size(*s) for s in stream_config.formats._sizes[fmt]]
                best = min(sizes, key=lambda s: abs(s.width - wanted.width) + abs(s.height - wanted.height))
                if best != stream_config.size:
                    stream_config.size, status = best, CameraConfiguration.Status.Adjusted
            size = stream_config.size
            stride, frame_size = stride_and_frame_size(fmt, size.width, size.height)
            if stream_config.stride and stream_config.stride != stride:
                status = CameraConfiguration.Status.Adjusted
            stream_config.stride, stream_config.frame_size = stride, frame_size
        return status

    def configure(self, config: CameraConfiguration) -> int:
        if not self._acquired or self._running.is_set():
            return -16  # -EBUSY
        for stream_config in config:
            stream_config.stream = Stream(stream_config)
        self._config = config
        # The sensor mode in use bounds the frame rate, as the real pipeline handler reports.
        if config.sensor_config is not None:
            wanted = config.sensor_config.output_size
            mode = min(self.spec.modes, key=lambda m: abs(m[1][0] - wanted.width) + abs(m[1][1] - wanted.height))
            limits = self.controls[controls.FrameDurationLimits]
            self.controls[controls.FrameDurationLimits] = ControlInfo(round(1e6 / mode[2]), limits.max, limits.default)
        return 0

    def create_request(self, cookie: int = 0) -> Request:
        return Request(self, cookie)

    def start(self, controls_: dict | None = None) -> None:
        if self._config is None or self._running.is_set():
            raise RuntimeError("Failed to start camera: Invalid argument")
        limits = (controls_ or {}).get(controls.FrameDurationLimits, (33_333, 33_333))
        self._frame_duration_ns = max(int(limits[0]), self.controls[controls.FrameDurationLimits].min) * 1000
        self._running.set()
        self._thread = threading.Thread(target=self._sensor, name="libcamera-sensor", daemon=True)
        self._thread.start()

    def queue_request(self, request: Request) -> None:
        if not self._running.is_set():
            raise RuntimeError("Failed to queue request: Invalid argument")
        with self._lock:
            self._queue.append(request)

    def stop(self) -> None:
        self._stop_wedge.wait()
        if not self._running.is_set():
            return
        self._running.clear()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            cancelled, self._queue = list(self._queue), collections.deque()
        for request in cancelled:
            request.status = Request.Status.Cancelled
            for buffer in request.buffers.values():
                buffer.metadata.status = FrameMetadata.Status.Cancelled
        self._manager._complete(cancelled)

    # -- the sensor ----------------------------------------------------------------------
    def _sensor(self) -> None:
        start_ns = time.monotonic_ns()
        main_stream = self._config.at(0).stream
        sequence = 0
        while self._running.is_set():
            capture_ns = start_ns + sequence * self._frame_duration_ns
            due_s = (start_ns + sequence * self._frame_duration_ns / self._manager.speedup) / 1e9
            delay_s = due_s - time.monotonic()
            if delay_s > 0:
                time.sleep(min(delay_s, 0.05))
                continue
            if not self._streaming.is_set():
                sequence += 1  # time runs on; no frame reaches the ISP
                continue
            with self._lock:
                request = self._queue.popleft() if self._queue else None
            if request is None:
                self.dropped += 1
            else:
                self._fill(request, main_stream, sequence, capture_ns)
                self.frames.append((sequence, capture_ns))
                self._manager._complete([request])
            sequence += 1

    def _fill(self, request: Request, main_stream: Stream, sequence: int, capture_ns: int) -> None:
        for stream, buffer in request.buffers.items():
            cfg = stream.configuration
            if stream is main_stream and str(cfg.pixel_format) in _YUV420:
                pixels = np.frombuffer(buffer._mapped(), dtype=np.uint8, count=cfg.frame_size)
                draw_yuv420(pixels, cfg.size.width, cfg.size.height, cfg.stride, sequence)
            buffer.metadata.status = FrameMetadata.Status.Success
            buffer.metadata.sequence = sequence
            buffer.metadata.timestamp = capture_ns
            for plane in buffer.metadata.planes:
                plane.bytes_used = cfg.frame_size
        request.sequence = sequence
        request.metadata = {controls.SensorTimestamp: capture_ns, controls.ExposureTime: 20_000,
                            controls.FrameDuration: self._frame_duration_ns // 1000,
                            controls.AnalogueGain: 1.0}
        request.status = Request.Status.Complete


class CameraManager:
    """The process-wide manager: cameras from the stub's configuration, and the event fd."""

    _instance: "CameraManager | None" = None
    _specs: list[SensorSpec] = [SensorSpec()]
    speedup: float = 1.0

    def __init__(self) -> None:
        self.event_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._ready: list[Request] = []
        self._lock = threading.Lock()
        self.cameras = [Camera(self, spec) for spec in CameraManager._specs]
        self.version = "v0.5.0+stub"

    @staticmethod
    def singleton() -> "CameraManager":
        if CameraManager._instance is None:
            CameraManager._instance = CameraManager()
        return CameraManager._instance

    def get(self, camera_id: str):
        return next((camera for camera in self.cameras if camera.id == camera_id), None)

    find = get

    def get_ready_requests(self) -> list[Request]:
        try:
            os.eventfd_read(self.event_fd)
        except BlockingIOError:
            pass
        with self._lock:
            ready, self._ready = self._ready, []
        return ready

    def _complete(self, requests: list[Request]) -> None:
        if not requests:
            return
        with self._lock:
            self._ready.extend(requests)
        os.eventfd_write(self.event_fd, 1)
