"""The Pi composition root: loud failure where the Pi stack is missing, no hardware on import."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import picamera2_env
from hal.dirstorage import DirectoryStorage
from hal.filekeystore import FileKeyStore
from hal.pi import BackendUnavailable, build_pi_board
from hal.pi.config import InputPinConfig, PiBoardConfig
from simulator.clock import VirtualClock

HARDWARE_MODULES = ["picamera2", "libcamera", "gpiozero", "gpiozero.pins.lgpio", "lgpio", "av"]


def test_importing_hal_pi_imports_no_hardware_library():
    probe = ("import json, sys; import hal.pi, hal.pi.config; "
             f"print(json.dumps([m for m in {HARDWARE_MODULES!r} if m in sys.modules]))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert json.loads(result.stdout) == []


def test_with_the_pi_stack_present_the_board_is_built_from_the_config(tmp_path, monkeypatch):
    # Stand-ins at the edges only: the real picamera2 on stubbed libcamera and kernel devices,
    # gpiozero's mock factory (chosen by name, as on a Pi), a sysfs-like battery dir; the
    # real arecord and aplay (alsa-utils).
    import hal.pi.camera
    from hal.pi.audio import PiMicrophone, PiSpeaker
    from hal.pi.battery import PiBattery
    from hal.pi.camera import PiCamera
    from hal.pi.gpio import PiIndicators, PiInputs

    picamera2_env.configure(cameras=1, platform="vc4")
    monkeypatch.setattr(hal.pi.camera, "load_picamera2_api", lambda: picamera2_env.api("v4l2"))
    monkeypatch.setenv("GPIOZERO_MOCK_PIN_CLASS", "mockpwmpin")
    battery_dir = tmp_path / "power_supply" / "battery"
    battery_dir.mkdir(parents=True)
    for name, value in {"capacity": "64", "voltage_now": "3800000", "status": "Discharging"}.items():
        (battery_dir / name).write_text(value + "\n")

    config = PiBoardConfig(pin_factory="mock", triggers={"holster": InputPinConfig(pin=24)},
                           width=1280, height=720, fps=30, keyframe_interval_s=2.0,
                           battery_sysfs_dir=str(battery_dir))
    clock = VirtualClock()
    storage = DirectoryStorage(str(tmp_path / "store"))
    keystore = FileKeyStore(str(tmp_path / "keys"))
    board = build_pi_board(config, clock, storage, keystore)
    try:
        assert isinstance(board.camera, PiCamera) and isinstance(board.microphone, PiMicrophone)
        assert isinstance(board.speaker, PiSpeaker) and isinstance(board.battery, PiBattery)
        assert isinstance(board.inputs, PiInputs) and isinstance(board.indicators, PiIndicators)
        assert (board.clock, board.storage, board.keystore) == (clock, storage, keystore)
        assert board.inputs.names == ("record", "holster")
        assert board.camera.video_format.keyframe_interval_s == 2.0
        assert board.battery.level_pct() == 64.0
    finally:
        board.inputs.close()
        board.indicators.close()
        board.speaker.close()


def test_a_pin_factory_that_cannot_load_is_fatal_not_a_fallback(tmp_path, monkeypatch):
    import hal.pi.camera

    monkeypatch.setattr(hal.pi.camera, "load_picamera2_api", lambda: picamera2_env.api("v4l2"))
    battery_dir = tmp_path / "battery"
    battery_dir.mkdir()
    for name in ("capacity", "voltage_now", "status"):
        (battery_dir / name).write_text("1\n")
    with pytest.raises(BackendUnavailable, match="pin factory 'gpiod' does not exist"):
        build_pi_board(PiBoardConfig(pin_factory="gpiod", battery_sysfs_dir=str(battery_dir)),
                       VirtualClock(), DirectoryStorage(str(tmp_path / "s")), FileKeyStore(str(tmp_path / "k")))


def test_a_board_without_a_fuel_gauge_gets_no_battery_and_invents_no_level(tmp_path, monkeypatch):
    import hal.pi.camera
    from hal.battery import NoBattery
    from hal.pi.config import PiConfigError

    monkeypatch.setattr(hal.pi.camera, "load_picamera2_api", lambda: picamera2_env.api("v4l2"))
    monkeypatch.setenv("GPIOZERO_MOCK_PIN_CLASS", "mockpwmpin")
    board = build_pi_board(PiBoardConfig(pin_factory="mock", battery="none",
                                         battery_sysfs_dir=str(tmp_path / "no-such-gauge")),
                           VirtualClock(), DirectoryStorage(str(tmp_path / "s")), FileKeyStore(str(tmp_path / "k")))
    try:
        assert isinstance(board.battery, NoBattery) and board.battery.present is False
        with pytest.raises(RuntimeError, match="no battery gauge"):
            board.battery.level_pct()
    finally:
        board.inputs.close()
        board.indicators.close()
    with pytest.raises(PiConfigError, match="battery must be one of 'sysfs', 'none', got 'gauge'"):
        PiBoardConfig(battery="gauge")
