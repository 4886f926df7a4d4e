"""The rig over gpiozero (docs/bench-rig.md): real pins, jumper-wired to the prototype's.

One DigitalOutputDevice per driven line (record button, trigger lines) and one
DigitalInputDevice per watched indicator (record LED, status LED, vibration motor).
Time base: CLOCK_MONOTONIC (time.monotonic_ns), both for `t_ns` and `wall_ns`. An edge is
stamped just before the rig writes the pin; an indicator change is stamped inside
gpiozero's pin callback, i.e. the wire's time plus the callback latency (lgpio's alert
thread: tens of µs on a Pi 4), which only ever adds to a measured latency.

The loopback form (`loopback_prototype`): the firmware on the Pi board runs in this
process, on the same GPIO chip, its pins wired to the rig's. `mock_loopback_prototype` is
the same over gpiozero's MockFactory, with the wires made of MockConnectedPin-style pins:
what CI runs.
"""
from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from device.config import Policy, load_identity
from device.firmware import Firmware
from hal.inputs import RECORD_BUTTON
from hal.media import VideoFormat
from hal.pi.config import PiBoardConfig
from tools.bench.devices import make_device
from tools.bench.rig import (INDICATORS, RECORD_LED, STATUS_LED, VIBRATION, Edge, Prototype, Rig,
                             RigError, TappedPart)

# The rig's own BCM pins, off every line the prototype's default wiring (hal/pi/config.py,
# docs/pi.md) uses, I2S (18-21) and I2C (2, 3) included, so one Pi can be both (loopback).
RIG_DRIVE_PINS = {RECORD_BUTTON: 5}
RIG_SPARE_DRIVE_PINS = (16, 25, 7, 8)     # for trigger lines, in order of the config's triggers
RIG_WATCH_PINS = {RECORD_LED: 6, STATUS_LED: 13, VIBRATION: 26}
# BCM GPIO -> physical pin of the 40-pin header.
HEADER_PIN = {0: 27, 1: 28, 2: 3, 3: 5, 4: 7, 5: 29, 6: 31, 7: 26, 8: 24, 9: 21, 10: 19, 11: 23, 12: 32,
              13: 33, 14: 8, 15: 10, 16: 36, 17: 11, 18: 12, 19: 35, 20: 38, 21: 40, 22: 15, 23: 16,
              24: 18, 25: 22, 26: 37, 27: 13}


def gpio_name(pin: int) -> str:
    return f"GPIO{pin} (header pin {HEADER_PIN[pin]})"


@dataclass(frozen=True)
class RigWiring:
    """Which rig pin drives which prototype line, which watches which indicator."""
    drive: Mapping[str, int]                        # line -> rig BCM pin (an output)
    watch: Mapping[str, int]                        # indicator -> rig BCM pin (an input)
    prototype_drive: Mapping[str, int] = field(default_factory=dict)   # line -> prototype BCM pin
    prototype_watch: Mapping[str, int] = field(default_factory=dict)   # indicator -> prototype BCM pin
    lines_active_low: Mapping[str, bool] = field(default_factory=dict)  # as the prototype reads them
    leds_active_high: bool = True

    def __post_init__(self) -> None:
        for name in ("drive", "watch", "prototype_drive", "prototype_watch", "lines_active_low"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    @classmethod
    def for_config(cls, config: PiBoardConfig) -> "RigWiring":
        """The default rig wiring for a prototype wired as `config` (docs/bench-rig.md's table)."""
        lines = {RECORD_BUTTON: config.record_button, **config.triggers}
        if len(config.triggers) > len(RIG_SPARE_DRIVE_PINS):
            raise RigError(f"the rig has {len(RIG_SPARE_DRIVE_PINS)} spare outputs for trigger lines, "
                           f"the prototype has {len(config.triggers)} triggers")
        drive = dict(RIG_DRIVE_PINS, **dict(zip(config.triggers, RIG_SPARE_DRIVE_PINS)))
        used = {line.pin for line in lines.values()} | {config.led_record_pin, config.led_status_pin,
                                                         config.vibration_pin, config.buzzer_pin}
        clash = sorted(used & (set(drive.values()) | set(RIG_WATCH_PINS.values())))
        if clash:
            raise RigError(f"the prototype uses GPIO{clash[0]}, one of the rig's pins: wire the rig by hand "
                           f"(RigWiring) for a loopback on one Pi")
        return cls(drive=drive, watch=RIG_WATCH_PINS,
                   prototype_drive={name: line.pin for name, line in lines.items()},
                   prototype_watch={RECORD_LED: config.led_record_pin, STATUS_LED: config.led_status_pin,
                                    VIBRATION: config.vibration_pin},
                   # pull_up None leaves the polarity to active_low (hal/pi/config.py).
                   lines_active_low={name: line.pull_up if line.pull_up is not None else bool(line.active_low)
                                     for name, line in lines.items()},
                   leds_active_high=config.leds_active_high)


class GpioRig(Rig):
    time_base = "CLOCK_MONOTONIC (time.monotonic_ns), stamped in gpiozero's pin callbacks"
    wall_base = "CLOCK_MONOTONIC (time.monotonic_ns)"

    def __init__(self, wiring: RigWiring, *, pin_factory: Any) -> None:
        from gpiozero import DigitalInputDevice, DigitalOutputDevice

        if pin_factory is None:
            raise ValueError("pin_factory is required: gpiozero's default would fall back silently")
        super().__init__(tuple(wiring.drive))
        self._wiring = wiring
        self._outputs: dict[str, Any] = {}
        self._inputs: dict[str, Any] = {}
        try:
            for line, pin in wiring.drive.items():
                # Active low for a prototype input with a pull-up (a button to ground): the
                # rig's output idles high, as the pull-up would, and pulls low to press.
                self._outputs[line] = DigitalOutputDevice(
                    pin, active_high=not wiring.lines_active_low.get(line, True), initial_value=False,
                    pin_factory=pin_factory)
            for indicator, pin in wiring.watch.items():
                if indicator not in INDICATORS:
                    raise RigError(f"the rig watches no indicator {indicator!r} (it knows {', '.join(INDICATORS)})")
                # A pull towards "off": an unplugged wire reads as a dark LED, never a lit one.
                active_high = wiring.leds_active_high or indicator == VIBRATION
                device = DigitalInputDevice(pin, pull_up=not active_high, bounce_time=None, pin_factory=pin_factory)
                device.when_activated = lambda ind=indicator: self._seen(ind, True)
                device.when_deactivated = lambda ind=indicator: self._seen(ind, False)
                self._inputs[indicator] = device
                self._levels[indicator] = bool(device.is_active)
        except BaseException:
            self.close()
            raise

    def wall_ns(self) -> int:
        return time.monotonic_ns()

    def wire(self, name: str) -> str:
        w = self._wiring
        if name in w.drive:
            far = w.prototype_drive.get(name)
            return (f"rig {gpio_name(w.drive[name])} to the prototype's {name!r} input"
                    + ("" if far is None else f", {gpio_name(far)}"))
        far = w.prototype_watch.get(name)
        return (f"the prototype's {name}" + ("" if far is None else f", {gpio_name(far)},")
                + f" to rig {gpio_name(w.watch[name])}")

    def _seen(self, indicator: str, on: bool) -> None:
        now_ns = time.monotonic_ns()
        self._record(indicator, on, now_ns, now_ns)

    def _drive(self, line: str, active: bool) -> Edge:
        now_ns = time.monotonic_ns()
        output = self._outputs[line]
        output.on() if active else output.off()
        return Edge(line, active, now_ns, now_ns)

    def close(self) -> None:
        for device in (*self._outputs.values(), *self._inputs.values()):
            device.close()
        self._outputs.clear()
        self._inputs.clear()


def wire_mock(factory: Any, wiring: RigWiring, missing: tuple[str, ...] = ()) -> None:
    """Jumper wires on gpiozero's MockFactory, before any device claims a pin: each rig output
    drives its prototype input and each prototype indicator drives its rig input, as
    gpiozero.pins.mock.MockConnectedPin does. `missing`: lines or indicators left unwired."""
    from gpiozero.pins.mock import MockConnectedPin, MockPWMPin

    class MockWire(MockConnectedPin, MockPWMPin):
        """A connected pin that is also PWM-capable, so a factory whose pin class is
        MockPWMPin (the buzzer needs it) accepts it."""

    pairs = [(pin, wiring.prototype_drive[line]) for line, pin in wiring.drive.items() if line not in missing]
    pairs += [(wiring.prototype_watch[ind], pin) for ind, pin in wiring.watch.items() if ind not in missing]
    for source, target in pairs:
        factory.pin(source, pin_class=MockWire, input_pin=factory.pin(target))


class GpioPrototype(Prototype):
    """The firmware on a board whose inputs and indicators are the Pi's GPIO backends
    (hal/pi/gpio.py), wired to a GpioRig."""

    def __init__(self, root: str, policy: Policy, board_for, rig_for) -> None:
        """`board_for(device_dir, storage_dir)` -> (board, clock); `rig_for()` -> the rig, built
        before the board so its outputs hold the prototype's lines idle from the start."""
        super().__init__()
        device_dir, self.custodian_key_path = make_device(root)
        self.device_pub_path = os.path.join(device_dir, "device.pub")
        self.storage_dir = os.path.join(device_dir, "storage")
        self.rig = rig_for()
        try:
            board, self.clock = board_for(device_dir, self.storage_dir)
            self.board = dataclasses.replace(board, camera=TappedPart(board.camera, self),
                                             microphone=TappedPart(board.microphone, self))
            self.firmware = Firmware(self.board, load_identity(device_dir), policy)
        except BaseException:
            self.rig.close()
            raise

    def deliver(self) -> None:
        # lgpio reports edges on its own thread; mock pins at once (a few ms are plenty either way).
        if not getattr(self.clock, "virtual", False):
            time.sleep(0.005)

    def close(self) -> None:
        try:
            super().close()
        finally:
            # The GPIO lines (so a next prototype can claim them) and the Pi speaker's player.
            for part in (self.board.inputs, self.board.indicators, self.board.speaker):
                close = getattr(part, "close", None)
                if close is not None:
                    close()


def mock_loopback_prototype(root: str, policy: Policy, video: VideoFormat, config: PiBoardConfig = PiBoardConfig(),
                            missing: tuple[str, ...] = (), clock_factory=None) -> GpioPrototype:
    """The loopback over MockFactory on a virtual clock: PiInputs and PiIndicators (the Pi
    board's GPIO) on mock pins jumper-wired to the rig's, replayed media, the simulator's
    storage and key store. `missing`: wires left out (the self-test must say which).
    `clock_factory`: another clock (hal.realclock.RealClock: the --hal pi timing path)."""
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    from hal.pi.gpio import PiIndicators, PiInputs
    from simulator.board import build_sim_board
    from simulator.clock import VirtualClock
    from simulator.replay import ReplayCamera, ReplayMicrophone

    factory = MockFactory(pin_class=MockPWMPin)
    wiring = RigWiring.for_config(config)
    wire_mock(factory, wiring, missing)

    def board_for(device_dir: str, storage_dir: str):
        clock = VirtualClock() if clock_factory is None else clock_factory()
        world = build_sim_board(clock, device_dir, storage_dir, video)
        inputs = PiInputs(config, clock, pin_factory=factory)
        board = dataclasses.replace(world.board, inputs=inputs,
                                    indicators=PiIndicators(config, clock, pin_factory=factory),
                                    camera=ReplayCamera(clock, video), microphone=ReplayMicrophone(clock))
        return board, clock

    proto = GpioPrototype(root, policy, board_for, lambda: GpioRig(wiring, pin_factory=factory))
    proto.pin_factory = factory
    return proto


def loopback_prototype(root: str, policy: Policy, rig: GpioRig | None = None,
                       config: PiBoardConfig | None = None, config_path: str | None = None) -> GpioPrototype:
    """`--hal pi`: the firmware on the Pi board (build_pi_board: camera, microphone, GPIO) on
    the real clock, in this process, its pins wired to the rig's on the same Pi.
    `config`, or the pi.toml at `config_path` (`bwc bench run --pi-config`): the
    prototype's wiring; else the default wiring."""
    from hal.dirstorage import DirectoryStorage
    from hal.filekeystore import FileKeyStore
    from hal.pi import build_pi_board
    from hal.pi.gpio import load_pin_factory
    from hal.realclock import RealClock

    if config is None:
        from tools.pi_main import load_pi_config
        config = load_pi_config(config_path) if config_path else PiBoardConfig()
    factory = load_pin_factory(config.pin_factory)

    def board_for(device_dir: str, storage_dir: str):
        clock = RealClock()
        return build_pi_board(config, clock, DirectoryStorage(storage_dir), FileKeyStore(device_dir)), clock

    def rig_for() -> GpioRig:
        return rig if rig is not None else GpioRig(RigWiring.for_config(config), pin_factory=factory)

    return GpioPrototype(root, policy, board_for, rig_for)
