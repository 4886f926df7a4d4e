"""The real picamera2 on stub hardware bindings, for tests in-process or in a subprocess.

picamera2 0.3.38 from PyPI runs unchanged; only what a Raspberry Pi provides
below it is replaced (tests/pi/stubs/): `libcamera` (the camera manager, a
sensor thread with synthetic frames, requests, controls), `pykms` (import
only) and the kernel devices picamera2 opens (pi_kernel: /dev/dma_heap,
/dev/video11, the board's platform answer). `videodev2` is the real PyPI
package (pure ctypes definitions).

In-process:   picamera2_env.configure(cameras=1, platform="vc4", speedup=4)
              api = picamera2_env.api("v4l2")         # or "libav"
              picamera2_env.sensor(0).stall()          # test controls of the stub camera
Subprocess:   env = picamera2_env.subprocess_env(cameras=1, platform="pisp")
              subprocess.run([...], env=env)           # e.g. `bwc doctor --hal pi`
Settings: cameras, model, modes ([[raw format, [w, h], max fps], ...]), platform
("vc4": Pi 4 / Zero 2 W, V4L2 encoder; "pisp": Pi 5, libav encoder), speedup.
A process's platform is fixed once picamera2 is imported (picamera2 reads it at import).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

STUBS_DIR = Path(__file__).resolve().parent / "stubs"
ENV_VAR = "BWC_LIBCAMERA_STUB"


def activate() -> None:
    """Put the stubs first on sys.path (idempotent)."""
    if str(STUBS_DIR) not in sys.path:
        sys.path.insert(0, str(STUBS_DIR))


def configure(**settings) -> None:
    """Set what the stub libcamera enumerates from the next Picamera2() on (see module doc)."""
    activate()
    import libcamera
    libcamera.configure(**settings)


def subprocess_env(base: dict | None = None, **settings) -> dict:
    """An environment in which `import picamera2` gets the real picamera2 on the stubs."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(STUBS_DIR), env.get("PYTHONPATH")]))
    env[ENV_VAR] = json.dumps(settings)
    return env


def api(encoder: str):
    """A Picamera2Api with picamera2's V4L2 H264Encoder ("v4l2") or its LibavH264Encoder ("libav")."""
    activate()
    from picamera2 import Picamera2
    from picamera2.encoders.h264_encoder import H264Encoder
    from picamera2.encoders.libav_h264_encoder import LibavH264Encoder
    from picamera2.outputs import Output

    from hal.pi.camera import Picamera2Api
    encoder_class = {"v4l2": H264Encoder, "libav": LibavH264Encoder}[encoder]
    return Picamera2Api(Picamera2=Picamera2, H264Encoder=encoder_class, Output=Output)


def sensor(camera_num: int = 0):
    """The stub libcamera Camera (stall(), wedge_stop(), frames, dropped)."""
    activate()
    import libcamera
    return libcamera.CameraManager.singleton().cameras[camera_num]


def encoder_devices() -> list:
    """Every fake /dev/video11 opened in this process, oldest first."""
    activate()
    from pi_kernel import v4l2_m2m
    return v4l2_m2m.devices
