"""Raspberry Pi backends (HAL-2): picamera2, gpiozero, ALSA, a sysfs battery.

Importing `hal.pi` imports no hardware library: picamera2, libcamera, gpiozero
and PyAV are imported inside build_pi_board(), so a laptop can import this
package (and its tests can check the error it gives there).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # names for type checkers only; nothing is imported at run time
    from hal.board import Board
    from hal.clock import Clock
    from hal.keystore import KeyStore
    from hal.pi.config import PiBoardConfig
    from hal.storage import Storage


class BackendUnavailable(Exception):
    """A chosen backend cannot run here. The firmware must stop, not fall back (DESIGN §3)."""


def build_pi_board(config: PiBoardConfig, clock: Clock, storage: Storage, keystore: KeyStore) -> Board:
    """The composition root for a Pi: every peripheral from `config`, or BackendUnavailable.

    The camera is checked first because it is the part most often missing on a
    laptop or a misconfigured Pi image. Nothing is half-built on failure: GPIO
    lines already claimed are released before the error propagates.
    """
    from hal.board import Board
    from hal.pi.camera import PiCamera, load_picamera2_api

    picamera2_api = load_picamera2_api()  # raises BackendUnavailable with install advice

    from hal.pi.audio import PiMicrophone, PiSpeaker
    from hal.pi.battery import PiBattery
    from hal.pi.gpio import PiIndicators, PiInputs, load_pin_factory

    camera = PiCamera(
        width=config.width, height=config.height, fps=config.fps,
        keyframe_interval_s=config.keyframe_interval_s, bitrate_bps=config.bitrate_bps,
        clock=clock, picamera2_api=picamera2_api, camera_num=config.camera_num)
    microphone = PiMicrophone(
        config.alsa_mic_device, clock,
        sample_rate_hz=config.mic_sample_rate_hz, bitrate_bps=config.mic_bitrate_bps)
    speaker = PiSpeaker(config.alsa_speaker_device)
    if config.battery == "none":
        from hal.battery import NoBattery
        battery = NoBattery()
    else:
        battery = PiBattery(config.battery_sysfs_dir)

    pin_factory = load_pin_factory(config.pin_factory)
    inputs = PiInputs(config, clock, pin_factory=pin_factory)
    try:
        indicators = PiIndicators(config, clock, pin_factory=pin_factory)
    except BaseException:
        inputs.close()
        raise
    return Board(
        camera=camera, microphone=microphone, speaker=speaker, inputs=inputs,
        indicators=indicators, clock=clock, storage=storage, battery=battery, keystore=keystore)


__all__ = ["BackendUnavailable", "build_pi_board"]
