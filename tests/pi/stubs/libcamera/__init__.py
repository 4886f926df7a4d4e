"""Stub of libcamera's Python bindings for running the real picamera2 off a Pi (tests only).

picamera2 imports `libcamera` first of all, so importing this also puts the
fake kernel devices of `pi_kernel` in place (/dev/dma_heap, /dev/video11, the
board's platform). Settings, from the environment variable BWC_LIBCAMERA_STUB
(JSON, read once at import: for subprocesses) or from configure() in-process:

    cameras   how many camera modules libcamera enumerates (default 1)
    model     sensor model name (default "imx708"); modes: [[format, [w, h], fps], ...]
    platform  "vc4" (Pi 4, Zero 2 W: V4L2 H.264 encoder) or "pisp" (Pi 5: libav)
    speedup   sensor frames come this many times faster than real time (default 1);
              their SensorTimestamps keep the nominal frame spacing.
"""
from __future__ import annotations

import json
import os
from types import SimpleNamespace

from . import _libcamera
from ._libcamera import *  # noqa: F401,F403 - the pylibcamera names
from ._libcamera import controls, properties  # noqa: F401
from .camera import Camera, CameraManager, SensorSpec, read_sequence  # noqa: F401

stub_settings = SimpleNamespace(platform="vc4")


def configure(*, cameras: int = 1, model: str = "imx708", modes=None, platform: str | None = None,
              speedup: float = 1.0) -> None:
    """Set what the stub enumerates from now on (open cameras keep running on their old objects)."""
    specs = []
    for index in range(cameras):
        spec = SensorSpec(model=model, id=f"/base/soc/i2c0mux/i2c@{index + 1}/{model}@1a")
        if modes is not None:
            spec.modes = [(fmt, tuple(size), float(fps)) for fmt, size, fps in modes]
        specs.append(spec)
    CameraManager._specs = specs
    CameraManager.speedup = float(speedup)
    if CameraManager._instance is not None:
        # One manager per process, as in libcamera (picamera2 caches it); the modules change.
        CameraManager._instance.cameras = [Camera(CameraManager._instance, spec) for spec in specs]
    if platform is not None:
        stub_settings.platform = platform


def current_manager() -> CameraManager:
    return CameraManager.singleton()


configure(**json.loads(os.environ.get("BWC_LIBCAMERA_STUB", "{}")))

from pi_kernel import install as _install_kernel_fakes  # noqa: E402

_install_kernel_fakes()
