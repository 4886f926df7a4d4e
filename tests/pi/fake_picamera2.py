"""A spec-checked stand-in for the parts of picamera2 that hal.pi.camera uses.

Every public method below has the signature of the real one in picamera2
0.3.36 (raspberrypi/picamera2, commit bd44842, May 2026): picamera2/picamera2.py,
encoders/encoder.py, encoders/h264_encoder.py, encoders/libav_h264_encoder.py,
outputs/output.py. REAL_SIGNATURES records them as text; test_pi_camera checks
that this fake matches that table (and, on a Pi, that real picamera2 does too).

Behaviour mirrored from the real code, because PiCamera depends on it:
- Encoder.output only accepts instances of outputs.Output.
- Encoder.start() resets `firsttimestamp`; each frame's timestamp is µs since
  the first frame, and `firsttimestamp` keeps the first frame's sensor time.
- H264Encoder (V4L2, Pi 4 and older) calls outputframe(frame, keyframe, ts)
  positionally; LibavH264Encoder (Pi 5) passes timestamp= and packet=.
- start_recording = [configure] + start_encoder + start; stop_recording =
  stop + stop_encoder.
Nothing here touches hardware; every call is recorded in CALLS.
"""
from __future__ import annotations

import functools
from types import SimpleNamespace

# (qualified name, positional args without self, keyword args) of every call.
CALLS: list[tuple[str, tuple, dict]] = []
# How many cameras libcamera "detects"; Picamera2(n) fails like the real one beyond it.
CAMERAS_PRESENT = 1

# Parameters only (return annotations are left out: the real code has a few).
REAL_SIGNATURES = {
    "Picamera2.__init__": "(self, camera_num=0, verbose_console=None, tuning=None, allocator=None)",
    "Picamera2.create_video_configuration":
        "(self, main={}, lores=None, raw={}, transform=libcamera.Transform(), colour_space=None, "
        "buffer_count=6, controls={}, display='main', encode='main', queue=True, sensor={}, "
        "use_case='video')",
    "Picamera2.configure": "(self, camera_config=None)",
    "Picamera2.start": "(self, config=None, show_preview=False)",
    "Picamera2.stop": "(self)",
    "Picamera2.start_encoder": "(self, encoder=None, output=None, pts=None, quality=None, name=None)",
    "Picamera2.stop_encoder": "(self, encoders=None)",
    "Picamera2.start_recording":
        "(self, encoder, output, pts=None, config=None, quality=None, name=None)",
    "Picamera2.stop_recording": "(self)",
    "Picamera2.close": "(self)",
    "Encoder.__init__": "(self, framerate=30)",
    "Encoder.start": "(self, quality=None)",
    "Encoder.stop": "(self)",
    "Encoder.outputframe": "(self, frame, keyframe=True, timestamp=None, packet=None, audio=False)",
    "H264Encoder.__init__":
        "(self, bitrate=None, repeat=True, iperiod=None, framerate=None, enable_sps_framerate=False, "
        "qp=None, profile=None)",
    "LibavH264Encoder.__init__":
        "(self, bitrate=None, repeat=True, iperiod=30, framerate=30, qp=None, profile=None)",
    "Output.__init__": "(self, pts=None)",
    "Output.start": "(self)",
    "Output.stop": "(self)",
    "Output.outputframe": "(self, frame, keyframe=True, timestamp=None, packet=None, audio=False)",
}


def _recorded(method):
    @functools.wraps(method)  # keeps the signature visible to inspect.signature
    def wrapper(self, *args, **kwargs):
        CALLS.append((method.__qualname__, args, kwargs))
        return method(self, *args, **kwargs)
    return wrapper


class _Transform:
    """Stands in for the libcamera.Transform() default of create_video_configuration."""

    def __repr__(self) -> str:
        return "libcamera.Transform()"


# ---- outputs -----------------------------------------------------------------

class Output:
    @_recorded
    def __init__(self, pts=None):
        self.recording = False
        self.ptsoutput = pts

    @_recorded
    def start(self):
        self.recording = True

    @_recorded
    def stop(self):
        self.recording = False

    def outputframe(self, frame, keyframe=True, timestamp=None, packet=None, audio=False):
        pass


outputs = SimpleNamespace(Output=Output)


# ---- encoders ----------------------------------------------------------------

class Encoder:
    @_recorded
    def __init__(self, framerate=30):
        self._output: list[Output] = []
        self._running = False
        self.firsttimestamp = None
        self.width = self.height = 0

    @property
    def output(self):
        return self._output[0] if len(self._output) == 1 else self._output

    @output.setter
    def output(self, value):
        values = value if isinstance(value, list) else [value]
        for out in values:
            if not isinstance(out, Output):
                raise RuntimeError("Must pass Output")
        self._output = values

    @_recorded
    def start(self, quality=None):
        if self._running:
            raise RuntimeError("Encoder already running")
        self._running = True
        self.firsttimestamp = None
        for out in self._output:
            out.start()

    @_recorded
    def stop(self):
        if not self._running:
            raise RuntimeError("Encoder already stopped")
        self._running = False
        for out in self._output:
            out.stop()

    def outputframe(self, frame, keyframe=True, timestamp=None, packet=None, audio=False):
        for out in self._output:
            out.outputframe(frame, keyframe, timestamp, packet, audio)

    # -- test driver: what the camera thread + encoder would do for one frame --
    def deliver(self, sensor_timestamp_us: int, data: bytes, keyframe: bool):
        if not self._running:
            raise AssertionError("frame delivered to a stopped encoder")
        if self.firsttimestamp is None:  # Encoder._timestamp()
            self.firsttimestamp = sensor_timestamp_us
        self._emit(data, keyframe, sensor_timestamp_us - self.firsttimestamp)

    def _emit(self, data: bytes, keyframe: bool, timestamp_us: int):
        raise NotImplementedError


class H264Encoder(Encoder):
    @_recorded
    def __init__(self, bitrate=None, repeat=True, iperiod=None, framerate=None, enable_sps_framerate=False,
                 qp=None, profile=None):
        super().__init__()
        self.bitrate, self.repeat, self.iperiod, self.framerate = bitrate, repeat, iperiod, framerate

    def _emit(self, data, keyframe, timestamp_us):
        # V4L2Encoder.thread_poll: positional, frame is bytes read from the mmap.
        self.outputframe(data, keyframe, timestamp_us)


class LibavH264Encoder(Encoder):
    @_recorded
    def __init__(self, bitrate=None, repeat=True, iperiod=30, framerate=30, qp=None, profile=None):
        super().__init__()
        self.bitrate, self.repeat, self.iperiod, self.framerate = bitrate, repeat, iperiod, framerate

    def _emit(self, data, keyframe, timestamp_us):
        # LibavH264Encoder._encode: bytes(packet), packet.is_keyframe, keywords.
        self.outputframe(data, keyframe, timestamp=timestamp_us, packet=SimpleNamespace(pts=timestamp_us))


encoders = SimpleNamespace(H264Encoder=H264Encoder, LibavH264Encoder=LibavH264Encoder)


# ---- Picamera2 -----------------------------------------------------------------

class Picamera2:
    instances: list["Picamera2"] = []

    @_recorded
    def __init__(self, camera_num=0, verbose_console=None, tuning=None, allocator=None):
        if camera_num >= CAMERAS_PRESENT:
            raise IndexError("list index out of range")  # what real picamera2 raises
        self.camera_config = None
        self.started = False
        self.is_open = True
        self.encoders: set[Encoder] = set()
        Picamera2.instances.append(self)

    @_recorded
    def create_video_configuration(self, main={}, lores=None, raw={}, transform=_Transform(), colour_space=None,
                                   buffer_count=6, controls={}, display="main", encode="main", queue=True,
                                   sensor={}, use_case="video"):
        main = {"format": "XBGR8888", "size": (1280, 720)} | main
        return {"use_case": use_case, "main": main, "controls": dict(controls), "buffer_count": buffer_count}

    @_recorded
    def configure(self, camera_config=None):
        if not isinstance(camera_config, dict):
            raise RuntimeError("fake only accepts a configuration dict")
        self.camera_config = camera_config

    @_recorded
    def start(self, config=None, show_preview=False):
        if not self.camera_config:
            raise RuntimeError("Camera has not been configured")
        self.started = True

    @_recorded
    def stop(self):
        self.started = False

    @_recorded
    def start_encoder(self, encoder=None, output=None, pts=None, quality=None, name=None):
        if output is not None:
            encoder.output = output
        encoder.width, encoder.height = self.camera_config["main"]["size"]
        encoder.start(quality=quality)
        self.encoders.add(encoder)

    @_recorded
    def stop_encoder(self, encoders=None):
        for encoder in list(self.encoders):
            encoder.stop()
        self.encoders.clear()

    @_recorded
    def start_recording(self, encoder, output, pts=None, config=None, quality=None, name=None):
        if not self.camera_config and config is None:
            config = "video"
        if config is not None:
            self.configure(config)
        self.start_encoder(encoder, output, pts=pts, quality=quality, name=name)
        self.start()

    @_recorded
    def stop_recording(self):
        self.stop()
        self.stop_encoder()

    @_recorded
    def close(self):
        self.stop()
        self.is_open = False
