"""The Pi camera and microphone backends for the contract suite, on the real libraries.

Camera: hal.pi.camera.PiCamera through the real picamera2 0.3.38, on both encoder paths
(its V4L2 H264Encoder and its LibavH264Encoder), over the stubbed libcamera and kernel
devices of tests/pi/stubs (picamera2_env). The stub sensor delivers frames in real time on
CLOCK_MONOTONIC, so the rig runs on RealClock (what a Pi runs on) and run_for sleeps.

Microphone: hal.pi.audio.PiMicrophone through the real arecord, reading ALSA's `file`
plugin (tests/pi/alsa_env.py). That PCM is not paced by a sound card, so the rig's clock is
alsa_env's PacedClock (one 10 ms capture period per reading, as a card delivering in real
time would show), and run_for waits until that much capture time has been read.
"""
from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Iterator

PI_TESTS = Path(__file__).resolve().parents[1] / "pi"
if str(PI_TESTS) not in sys.path:   # picamera2_env and alsa_env live with the Pi tests
    sys.path.append(str(PI_TESTS))

import alsa_env  # noqa: E402
import picamera2_env  # noqa: E402


def pi_camera(encoder: str, video, rig_class):
    @contextlib.contextmanager
    def factory() -> Iterator:
        from hal.pi.camera import PiCamera
        from hal.realclock import RealClock

        picamera2_env.configure(cameras=1, speedup=1)
        clock = RealClock()
        camera = PiCamera(width=video.width, height=video.height, fps=video.fps,
                          keyframe_interval_s=video.keyframe_interval_s, bitrate_bps=video.bitrate_bps,
                          clock=clock, picamera2_api=picamera2_env.api(encoder))
        try:
            yield rig_class(camera, clock, time.sleep)
        finally:
            camera.stop()
    factory.__name__ = f"pi_camera_{encoder}"
    return factory


def pi_microphone(rig_class):
    @contextlib.contextmanager
    def factory(tmp_path: Path, monkeypatch) -> Iterator:
        from hal.pi.audio import PiMicrophone

        alsa = alsa_env.make_alsa_env(tmp_path, monkeypatch.setenv)
        clock = alsa_env.PacedClock()
        microphone = PiMicrophone(alsa.tone_pcm, clock)

        def run_for(duration_s: float) -> None:
            # Capture time passes as arecord's periods are read; when nothing reads (stopped),
            # the rig lets the time pass itself.
            target_us = clock.peek_us() + round(duration_s * 1e6)
            seen_us, seen_s = clock.peek_us(), time.monotonic()
            while clock.peek_us() < target_us and time.monotonic() - seen_s < 0.5:
                time.sleep(0.002)
                if clock.peek_us() != seen_us:
                    seen_us, seen_s = clock.peek_us(), time.monotonic()
            while clock.peek_us() < target_us:
                clock.monotonic_us()

        try:
            yield rig_class(microphone, clock, run_for)
        finally:
            microphone.stop()
    return factory
