"""Every backend the HAL contract runs against, one factory per part and backend.

Modelled on gpiozero's own tests, where one suite runs against every pin factory: here
each test in tests/hal_contract/ takes a *rig* (the part under test plus the handles a
test needs to play the world around it: press a button, let time pass, listen to what
came out) and conftest.py parametrises it over the factories listed below.

A factory is a context manager yielding a rig; leaving it releases what it claimed.
Adding a backend = adding one entry to a table here; no test changes.
"""
from __future__ import annotations

import contextlib
import importlib.util
import sys
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator

import av
import numpy as np

from hal.battery import Battery, NoBattery
from hal.camera import Camera
from hal.clock import Clock
from hal.indicators import LED_RECORD, LED_STATUS, Indicators
from hal.inputs import RECORD_BUTTON, Inputs
from hal.media import VideoFormat
from hal.microphone import Microphone
from hal.realclock import RealClock
from hal.speaker import Speaker
from simulator.clock import VirtualClock

import pi_media

TRIGGER = "holster"
INPUT_NAMES = (RECORD_BUTTON, TRIGGER)
VIDEO = VideoFormat(width=320, height=240, fps=30, keyframe_interval_s=0.5, bitrate_bps=500_000)
CLOCK_START_US = 5_000_000
# The Pi's camera stamps frames on the sensor's clock (CLOCK_MONOTONIC), which is not the
# board's Clock: a fixed, arbitrary offset makes sure PiCamera really maps one to the other.
SENSOR_CLOCK_OFFSET_US = 123_456_789


# ---- Inputs ---------------------------------------------------------------------------

@dataclass
class InputsRig:
    inputs: Inputs
    clock: VirtualClock
    drive: Callable[[str, bool], None]   # the world moves a line to "active" or not
    close: Callable[[], None]             # release the lines (shutdown)
    reopen: Callable[[], "InputsRig"]     # a new instance on the same lines


@contextlib.contextmanager
def sim_inputs() -> Iterator[InputsRig]:
    from simulator.inputs import SimInputs

    clock = VirtualClock(start_monotonic_us=CLOCK_START_US)

    def build() -> InputsRig:
        inputs = SimInputs(clock, INPUT_NAMES)
        # A simulated input holds no line: closing is nothing, reopening always works.
        return InputsRig(inputs, clock, inputs.set, close=lambda: None, reopen=build)

    yield build()


@contextlib.contextmanager
def pi_inputs() -> Iterator[InputsRig]:
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    from hal.pi.config import InputPinConfig, PiBoardConfig
    from hal.pi.gpio import PiInputs

    factory = MockFactory(pin_class=MockPWMPin)
    clock = VirtualClock(start_monotonic_us=CLOCK_START_US)
    # Both lines wired as docs/pi.md: to ground, internal pull-up, so active = driven low.
    config = PiBoardConfig(record_button=InputPinConfig(pin=17), triggers={TRIGGER: InputPinConfig(pin=24)})
    pins = {RECORD_BUTTON: 17, TRIGGER: 24}
    opened: list[PiInputs] = []

    def drive(name: str, active: bool) -> None:
        pin = factory.pin(pins[name])
        pin.drive_low() if active else pin.drive_high()

    def build() -> InputsRig:
        inputs = PiInputs(config, clock, pin_factory=factory)
        opened.append(inputs)
        return InputsRig(inputs, clock, drive, close=inputs.close, reopen=build)

    try:
        yield build()
    finally:
        for inputs in opened:
            inputs.close()
        factory.close()


INPUTS = {"sim": sim_inputs, "pi": pi_inputs}


# ---- Indicators -----------------------------------------------------------------------

@dataclass
class IndicatorsRig:
    indicators: Indicators
    clock: VirtualClock
    # What the wearer sees, feels and hears right now:
    led_lit: Callable[[str], bool]
    vibrating: Callable[[], bool]
    beeping: Callable[[], bool]


@contextlib.contextmanager
def sim_indicators() -> Iterator[IndicatorsRig]:
    from simulator.indicators import SimIndicators

    clock = VirtualClock(start_monotonic_us=CLOCK_START_US)
    indicators = SimIndicators(clock)
    yield IndicatorsRig(indicators, clock, led_lit=lambda name: indicators.led_state[name],
                        vibrating=indicators.is_vibrating, beeping=indicators.is_beeping)


@contextlib.contextmanager
def pi_indicators() -> Iterator[IndicatorsRig]:
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    from hal.pi.config import PiBoardConfig
    from hal.pi.gpio import PiIndicators

    # PWM-capable mock pins: the buzzer is a PWMOutputDevice (lgpio does PWM on any pin).
    factory = MockFactory(pin_class=MockPWMPin)
    clock = VirtualClock(start_monotonic_us=CLOCK_START_US)
    config = PiBoardConfig()   # the default wiring of docs/pi.md, LEDs active high
    led_pins = {LED_RECORD: config.led_record_pin, LED_STATUS: config.led_status_pin}
    indicators = PiIndicators(config, clock, pin_factory=factory)
    try:
        yield IndicatorsRig(
            indicators, clock,
            led_lit=lambda name: factory.pin(led_pins[name]).state == 1,
            vibrating=lambda: factory.pin(config.vibration_pin).state == 1,
            beeping=lambda: factory.pin(config.buzzer_pin).state > 0)
    finally:
        indicators.close()
        factory.close()


INDICATORS = {"sim": sim_indicators, "pi": pi_indicators}


# ---- Battery --------------------------------------------------------------------------

@dataclass
class BatteryRig:
    battery: Battery
    # The world: what the cell (or the fuel gauge reading it) says from now on.
    set_cell: Callable[..., None]   # set_cell(level_pct=, voltage_v=, charging=)


@contextlib.contextmanager
def sim_battery(tmp_path: Path) -> Iterator[BatteryRig]:
    from simulator.battery import SimBattery

    # The level follows the clock; this one stands still, so what the world sets is read back.
    battery = SimBattery(VirtualClock(start_monotonic_us=CLOCK_START_US), level_pct=80.0)

    def set_cell(*, level_pct: float, voltage_v: float, charging: bool) -> None:
        battery.set_level(level_pct)
        battery.set_voltage(voltage_v)
        battery.set_charging(charging)

    yield BatteryRig(battery, set_cell)


@contextlib.contextmanager
def pi_battery(tmp_path: Path) -> Iterator[BatteryRig]:
    from hal.pi.battery import PiBattery

    # Laid out like /sys/class/power_supply/<name>/ (kernel sysfs ABI: %, µV, status word).
    supply = tmp_path / "power_supply" / "battery"
    supply.mkdir(parents=True)

    def set_cell(*, level_pct: float, voltage_v: float, charging: bool) -> None:
        values = {"capacity": str(round(level_pct)), "voltage_now": str(round(voltage_v * 1_000_000)),
                  "status": "Charging" if charging else "Discharging"}
        for name, value in values.items():
            (supply / name).write_text(value + "\n")   # sysfs values end with a newline

    set_cell(level_pct=80, voltage_v=3.95, charging=False)
    yield BatteryRig(PiBattery(str(supply)), set_cell)


GAUGED_BATTERIES = {"sim": sim_battery, "pi": pi_battery}
# Boards with no fuel gauge (pi.toml battery = "none"); NoBattery is shared by every board.
GAUGELESS_BATTERIES = {"none": lambda tmp_path: contextlib.nullcontext(NoBattery())}


# ---- Speaker --------------------------------------------------------------------------

@dataclass
class SpeakerRig:
    speaker: Speaker
    # Let time pass until nothing plays, at most `timeout_s` of the speaker's clock;
    # returns how long that took in seconds.
    wait_quiet: Callable[[float], float]
    # What someone standing in front of the camera heard so far: (int16 samples, rate in Hz).
    heard: Callable[[], tuple[np.ndarray, int]]


@contextlib.contextmanager
def sim_speaker(tmp_path: Path) -> Iterator[SpeakerRig]:
    from simulator.audio import SimAir, SimSpeaker

    clock = VirtualClock(start_monotonic_us=CLOCK_START_US)
    air = SimAir()
    speaker = SimSpeaker(clock, air)
    start_index = air.sample_index(clock.monotonic_us())

    def wait_quiet(timeout_s: float) -> float:
        began_us = clock.monotonic_us()
        while speaker.is_playing() and clock.monotonic_us() - began_us < timeout_s * 1_000_000:
            clock.advance(1_000)
        return (clock.monotonic_us() - began_us) / 1_000_000

    def heard() -> tuple[np.ndarray, int]:
        count = air.sample_index(clock.monotonic_us()) - start_index
        level = air.mix(start_index, count) / air.speaker_gain * 32768.0
        return np.round(level).astype(np.int16), air.sample_rate_hz

    yield SpeakerRig(speaker, wait_quiet, heard)


PI_SPEAKER_RATE_HZ = 8_000   # every clip in the speaker tests is played at this rate


@contextlib.contextmanager
def pi_speaker(tmp_path: Path) -> Iterator[SpeakerRig]:
    from hal.pi.audio import PiSpeaker

    # The real aplay (alsa-utils) into ALSA's own "file" plugin, whose FILE may be a pipe:
    # each clip's aplay appends what it played, so the file is what the room heard, in order.
    out = tmp_path / "heard.s16le"
    out.touch()
    speaker = PiSpeaker(f'file:FILE="|cat >>{out}",FORMAT=raw')

    def wait_quiet(timeout_s: float) -> float:
        began_s = time.monotonic()
        while speaker.is_playing() and time.monotonic() - began_s < timeout_s:
            time.sleep(0.005)
        return time.monotonic() - began_s

    def heard() -> tuple[np.ndarray, int]:
        return np.frombuffer(out.read_bytes(), dtype="<i2").astype(np.int16), PI_SPEAKER_RATE_HZ

    try:
        yield SpeakerRig(speaker, wait_quiet, heard)
    finally:
        speaker.close()
        assert speaker.last_error is None, speaker.last_error


SPEAKERS = {"sim": sim_speaker, "pi": pi_speaker}


# ---- Microphone -----------------------------------------------------------------------

@dataclass
class MicrophoneRig:
    microphone: Microphone
    clock: Clock
    run_for: Callable[[float], None]   # let the microphone capture for `duration_s`


@contextlib.contextmanager
def sim_microphone(tmp_path: Path, monkeypatch) -> Iterator[MicrophoneRig]:
    from simulator.audio import SimAir, SimMicrophone

    clock = VirtualClock(start_monotonic_us=CLOCK_START_US)
    microphone = SimMicrophone(clock, SimAir())
    try:
        yield MicrophoneRig(microphone, clock, clock.advance_s)
    finally:
        microphone.stop()


# The Pi microphone: PiMicrophone through the real arecord (pi_media.py).
MICROPHONES = {"sim": sim_microphone, "pi": pi_media.pi_microphone(MicrophoneRig)}


# ---- Camera ---------------------------------------------------------------------------

@dataclass
class CameraRig:
    camera: Camera
    clock: Clock
    # Let the camera capture for `duration_s` of its clock (frames reach the sink meanwhile).
    run_for: Callable[[float], None]


@contextlib.contextmanager
def sim_camera() -> Iterator[CameraRig]:
    from simulator.camera import SimCamera

    clock = VirtualClock(start_monotonic_us=CLOCK_START_US)
    camera = SimCamera(clock, VIDEO)
    try:
        yield CameraRig(camera, clock, clock.advance_s)
    finally:
        camera.close()


# The Pi camera: PiCamera through the real picamera2, on its V4L2 and its libav encoder (pi_media.py).
CAMERAS = {"sim": sim_camera, "pi-v4l2": pi_media.pi_camera("v4l2", VIDEO, CameraRig),
           "pi-libav": pi_media.pi_camera("libav", VIDEO, CameraRig)}


# ---- Clock ----------------------------------------------------------------------------

# The simulator's virtual clock, and the real clock a Pi runs on (bwc run --hal pi).
CLOCKS: dict[str, Callable[[], Clock]] = {
    "sim": lambda: VirtualClock(start_monotonic_us=CLOCK_START_US),
    "pi": RealClock,
}
