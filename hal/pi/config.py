"""Wiring and settings of a Raspberry Pi body-camera board.

Pins are BCM GPIO numbers (the "GPIO17" names, not header pin positions).
Validation happens when the config is built, so a miswired config fails at
boot with a message naming the field, not later with a gpiozero pin conflict.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from hal.inputs import RECORD_BUTTON

# BCM GPIO numbers on the 40-pin header of every Pi with one (Zero 2 W to Pi 5, CM4/CM5 IO boards).
_HEADER_GPIOS = range(0, 28)
# Lines that an I2S microphone or amplifier board takes (dtparam=i2s=on / an I2S overlay):
# the default wiring keeps off them, and `bwc doctor` names a conflict.
I2S_GPIOS = {18: "PCM_CLK", 19: "PCM_FS", 20: "PCM_DIN", 21: "PCM_DOUT"}
# The I2C bus a fuel gauge (MAX17048, BQ27xxx) sits on.
I2C_GPIOS = {2: "I2C1 SDA", 3: "I2C1 SCL"}
BATTERY_KINDS = ("sysfs", "none")


class PiConfigError(ValueError):
    """The Pi board configuration is inconsistent; the message names the field."""


@dataclass(frozen=True)
class InputPinConfig:
    """One digital input line.

    `pull_up` follows gpiozero: True = internal pull-up (the line idles high and
    is active when pulled to ground), False = internal pull-down (active high),
    None = no internal pull (an external circuit drives the line), in which case
    `active_low` must say which level means "active".
    """

    pin: int
    pull_up: bool | None = True
    active_low: bool | None = None

    def __post_init__(self) -> None:
        if self.pull_up is None and self.active_low is None:
            raise PiConfigError(f"GPIO{self.pin}: with pull_up=None, active_low must be set")
        # gpiozero derives polarity from the pull resistor; a contradicting flag
        # would be silently ignored by it, so refuse it here.
        if self.pull_up is not None and self.active_low is not None and self.active_low != self.pull_up:
            raise PiConfigError(
                f"GPIO{self.pin}: pull_up={self.pull_up} implies active_low={self.pull_up}, "
                f"got active_low={self.active_low}")

    @property
    def gpiozero_active_state(self) -> bool | None:
        """The `active_state` argument gpiozero wants (only given for floating inputs)."""
        return None if self.pull_up is not None else not self.active_low


@dataclass(frozen=True)
class PiBoardConfig:
    # -- inputs (raw edges; debounced by the firmware, ACT-1) -----------------
    record_button: InputPinConfig = InputPinConfig(pin=17)
    # Trigger name -> line, e.g. {"holster": InputPinConfig(pin=24)} (ACT-2).
    triggers: Mapping[str, InputPinConfig] = field(default_factory=dict)

    # -- indicators -----------------------------------------------------------
    led_record_pin: int = 27
    led_status_pin: int = 22
    leds_active_high: bool = True
    # A passive piezo driven by PWM at the tone's frequency (50 % duty). GPIO12 (PWM0):
    # GPIO18, the old default, is the I2S clock most microphone boards need.
    buzzer_pin: int = 12
    # A vibration motor behind a transistor: on/off.
    vibration_pin: int = 23
    # gpiozero pin factory by entry-point name ("lgpio" on every Pi with
    # Bookworm; required on the Pi 5). Loaded exactly; never a fallback.
    pin_factory: str = "lgpio"

    # -- camera (picamera2) ---------------------------------------------------
    camera_num: int = 0
    width: int = 1920
    height: int = 1080
    fps: int = 30
    keyframe_interval_s: float = 1.0
    bitrate_bps: int = 10_000_000

    # -- audio (ALSA PCM names, e.g. "plughw:CARD=Device,DEV=0") --------------
    # "plughw:" lets ALSA convert rate/channels when the card lacks 48 kHz mono.
    alsa_mic_device: str = "default"
    alsa_speaker_device: str = "default"
    mic_sample_rate_hz: int = 48_000
    mic_bitrate_bps: int = 64_000

    # -- battery --------------------------------------------------------------
    # "sysfs": a fuel gauge's power_supply directory; "none": no gauge (mains or a
    # power bank), battery warnings off and said so at boot.
    battery: str = "sysfs"
    # A Linux power_supply class directory (fuel-gauge driver of the power board).
    battery_sysfs_dir: str = "/sys/class/power_supply/battery"

    def __post_init__(self) -> None:
        # Freeze the trigger table too: the config is shared between threads.
        object.__setattr__(self, "triggers", MappingProxyType(dict(self.triggers)))
        if RECORD_BUTTON in self.triggers:
            raise PiConfigError(f"trigger name {RECORD_BUTTON!r} is reserved for the record button")
        self._check_pins_unique()
        if self.fps <= 0:
            raise PiConfigError(f"fps must be positive, got {self.fps}")
        if self.width <= 0 or self.height <= 0:
            raise PiConfigError(f"camera size must be positive, got {self.width}x{self.height}")
        if self.keyframe_iperiod_frames < 1:
            raise PiConfigError(
                f"keyframe_interval_s={self.keyframe_interval_s} at {self.fps} fps is under one frame")
        if self.bitrate_bps <= 0 or self.mic_bitrate_bps <= 0:
            raise PiConfigError("bitrates must be positive")
        if self.battery not in BATTERY_KINDS:
            raise PiConfigError(f"battery must be one of {', '.join(map(repr, BATTERY_KINDS))}, "
                                f"got {self.battery!r}")

    def _check_pins_unique(self) -> None:
        owners: dict[int, str] = {}
        named = [("record_button", self.record_button.pin)]
        named += [(f"triggers[{name!r}]", cfg.pin) for name, cfg in self.triggers.items()]
        named += [("led_record_pin", self.led_record_pin), ("led_status_pin", self.led_status_pin),
                  ("buzzer_pin", self.buzzer_pin), ("vibration_pin", self.vibration_pin)]
        for what, pin in named:
            if pin not in _HEADER_GPIOS:
                raise PiConfigError(f"{what}: GPIO{pin} is not a header GPIO (0-27)")
            if pin in owners:
                raise PiConfigError(f"{what} and {owners[pin]} both use GPIO{pin}")
            owners[pin] = what

    @property
    def keyframe_iperiod_frames(self) -> int:
        """Frames between IDRs, as picamera2's `iperiod` wants it."""
        return round(self.fps * self.keyframe_interval_s)
