"""gpiozero backends for the inputs and the indicators (HAL-2).

Every gpiozero device is given its pin factory explicitly. gpiozero's own
default (Device.pin_factory = None) silently walks lgpio -> rpigpio -> pigpio
-> native; on a body camera that would mean a button that may or may not be
wired to anything. load_pin_factory() loads exactly the factory named, or
raises BackendUnavailable naming it.
"""
from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any, Callable

from gpiozero import LED, DigitalInputDevice, DigitalOutputDevice, PWMOutputDevice

from hal.clock import Clock, Timer
from hal.indicators import LED_RECORD, LED_STATUS, Indicators
from hal.inputs import RECORD_BUTTON, EdgeCallback, Inputs
from hal.pi import BackendUnavailable
from hal.pi.config import InputPinConfig, PiBoardConfig

_PIN_FACTORY_GROUP = "gpiozero_pin_factories"
# A passive piezo sounds loudest near 50 % duty; 100 % would be silent DC.
_BUZZER_DUTY = 0.5


def load_pin_factory(name: str) -> Any:
    """Instantiate gpiozero's pin factory `name` ("lgpio", "rpigpio", "native", "mock" ...)."""
    matches = [ep for ep in entry_points(group=_PIN_FACTORY_GROUP) if ep.name == name.lower()]
    if not matches:
        known = sorted(ep.name for ep in entry_points(group=_PIN_FACTORY_GROUP))
        raise BackendUnavailable(f"gpiozero pin factory {name!r} does not exist (known: {', '.join(known)})")
    try:
        return matches[0].load()()
    except Exception as exc:  # ImportError (no lgpio module), PinFactoryFallback, OSError (no /dev/gpiochip)
        raise BackendUnavailable(
            f"gpiozero pin factory {name!r} could not load: {type(exc).__name__}: {exc}") from exc


class PiInputs(Inputs):
    """The record button and trigger lines as raw edges, bounce and all (ACT-1).

    Subscribers are called on gpiozero's callback thread (lgpio's alert
    thread on a Pi); they must be thread-safe and quick.
    """

    def __init__(self, config: PiBoardConfig, clock: Clock, *, pin_factory: Any) -> None:
        if pin_factory is None:
            raise ValueError("pin_factory is required: gpiozero's default would fall back silently")
        self._clock = clock
        self._subscribers: list[EdgeCallback] = []
        self._devices: dict[str, DigitalInputDevice] = {}
        lines = {RECORD_BUTTON: config.record_button, **config.triggers}
        try:
            for name, line in lines.items():
                self._devices[name] = self._open(name, line, pin_factory)
        except BaseException:
            self.close()
            raise
        self._names = tuple(lines)

    def _open(self, name: str, line: InputPinConfig, pin_factory: Any) -> DigitalInputDevice:
        # bounce_time=None: gpiozero's debounce drops edges based on real time,
        # which the firmware's debouncer (and its tests) could not see.
        device = DigitalInputDevice(
            line.pin, pull_up=line.pull_up, active_state=line.gpiozero_active_state,
            bounce_time=None, pin_factory=pin_factory)
        device.when_activated = lambda: self._edge(name, True)
        device.when_deactivated = lambda: self._edge(name, False)
        return device

    def _edge(self, name: str, active: bool) -> None:
        timestamp_us = self._clock.monotonic_us()
        for callback in tuple(self._subscribers):  # a copy: subscribe() may run concurrently
            callback(name, active, timestamp_us)

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    def subscribe(self, callback: EdgeCallback) -> None:
        self._subscribers.append(callback)

    def is_active(self, name: str) -> bool:
        try:
            device = self._devices[name]
        except KeyError:
            raise KeyError(f"no input named {name!r}; this board has {', '.join(self._names)}") from None
        return bool(device.is_active)

    def close(self) -> None:
        """Release the GPIO lines (on shutdown, and so tests can reuse pins)."""
        for device in self._devices.values():
            device.close()
        self._devices.clear()


class PiIndicators(Indicators):
    """Two LEDs, a vibration motor and a passive buzzer.

    Pulses end through clock.call_at(), not sleep() or gpiozero's blink
    threads: nothing here blocks, no thread is added, and under a virtual
    clock the pulse length is exact. The cost: the off-switch runs on the
    thread inside clock.wait_until(), so a stalled firmware loop leaves the
    motor or buzzer on until the watchdog restarts the service (FLT-5).
    """

    def __init__(self, config: PiBoardConfig, clock: Clock, *, pin_factory: Any) -> None:
        if pin_factory is None:
            raise ValueError("pin_factory is required: gpiozero's default would fall back silently")
        self._clock = clock
        self._devices: list[Any] = []
        self._vibration_off: Timer | None = None
        self._buzzer_off: Timer | None = None
        # When each output's running pulse ends (monotonic µs), so a shorter pulse does not cut it.
        self._pulse_end_us = {"vibration": 0, "buzzer": 0}
        try:
            self._leds = {
                LED_RECORD: self._add(LED(config.led_record_pin, active_high=config.leds_active_high,
                                          initial_value=False, pin_factory=pin_factory)),
                LED_STATUS: self._add(LED(config.led_status_pin, active_high=config.leds_active_high,
                                          initial_value=False, pin_factory=pin_factory)),
            }
            self._vibration = self._add(DigitalOutputDevice(
                config.vibration_pin, initial_value=False, pin_factory=pin_factory))
            self._buzzer = self._add(PWMOutputDevice(
                config.buzzer_pin, initial_value=0, pin_factory=pin_factory))
        except BaseException:
            self.close()
            raise

    def _add(self, device: Any) -> Any:
        self._devices.append(device)
        return device

    def set_led(self, name: str, on: bool) -> None:
        try:
            led = self._leds[name]
        except KeyError:
            # KeyError, as for an unknown input name (and on the simulator): one contract.
            raise KeyError(f"no LED named {name!r}; this board has {', '.join(self._leds)}") from None
        led.value = bool(on)

    def vibrate(self, duration_ms: int) -> None:
        _check_duration(duration_ms)
        self._vibration_off = self._pulse("vibration", self._vibration_off, duration_ms,
                                          self._vibration.on, self._vibration.off)

    def beep(self, frequency_hz: int, duration_ms: int) -> None:
        _check_duration(duration_ms)
        if frequency_hz <= 0:
            raise ValueError(f"frequency_hz must be positive, got {frequency_hz}")

        def sound() -> None:
            self._buzzer.frequency = frequency_hz
            self._buzzer.value = _BUZZER_DUTY

        self._buzzer_off = self._pulse("buzzer", self._buzzer_off, duration_ms, sound, self._buzzer.off)

    def _pulse(self, output: str, pending_off: Timer | None, duration_ms: int,
               on: Callable[[], None], off: Callable[[], None]) -> Timer:
        # The output stays on until the *later* of the running pulse's end and the new
        # one's: neither an earlier timer nor a shorter new pulse cuts it (as simulated).
        now_us = self._clock.monotonic_us()
        end_us = now_us + duration_ms * 1000
        on()
        if pending_off is not None:
            if self._pulse_end_us[output] >= end_us:
                return pending_off
            pending_off.cancel()
        self._pulse_end_us[output] = end_us
        return self._clock.call_at(end_us, off)

    def close(self) -> None:
        for timer in (self._vibration_off, self._buzzer_off):
            if timer is not None:
                timer.cancel()
        for device in self._devices:
            device.close()
        self._devices.clear()


def _check_duration(duration_ms: int) -> None:
    if duration_ms <= 0:
        raise ValueError(f"duration_ms must be positive, got {duration_ms}")
