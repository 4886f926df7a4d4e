"""Simulated indicators: LEDs, vibration motor and buzzer, recorded for tests (IND-*).

With a trace (simulator/trace.py), each LED change, vibration and tone is also a line
of what a person standing there saw, felt or heard; setting an LED to the level it
already has is no change and no line.
"""
from __future__ import annotations

import threading

from hal.clock import Clock
from hal.indicators import LED_RECORD, LED_STATUS, Indicators
from simulator.trace import Trace


class SimIndicators(Indicators):
    def __init__(self, clock: Clock, leds: tuple[str, ...] = (LED_RECORD, LED_STATUS),
                 trace: Trace | None = None) -> None:
        self._clock = clock
        self._trace = trace
        self._lock = threading.Lock()
        self.led_state: dict[str, bool] = {name: False for name in leds}
        # (timestamp_us, kind, args): ("led", (name, on)), ("vibrate", (duration_ms,)),
        # ("beep", (frequency_hz, duration_ms)).
        self.history: list[tuple[int, str, tuple]] = []
        self._vibrate_until_us = 0
        self._beep_until_us = 0

    def set_led(self, name: str, on: bool) -> None:
        if name not in self.led_state:
            raise KeyError(f"no LED named {name!r}; this board has {', '.join(self.led_state)}")
        with self._lock:
            changed = self.led_state[name] != bool(on)
            self.led_state[name] = bool(on)
            now_us = self._clock.monotonic_us()
            self.history.append((now_us, "led", (name, bool(on))))
            if changed and self._trace is not None:
                self._trace.record("led", now_us, name=name, on=bool(on))

    def vibrate(self, duration_ms: int) -> None:
        # Refused as on the Pi (hal/pi/gpio.py): a zero-length pulse is a caller's bug.
        if duration_ms <= 0:
            raise ValueError(f"duration_ms must be positive, got {duration_ms}")
        with self._lock:
            now_us = self._clock.monotonic_us()
            self._vibrate_until_us = max(self._vibrate_until_us, now_us + duration_ms * 1000)
            self.history.append((now_us, "vibrate", (duration_ms,)))
            if self._trace is not None:
                self._trace.record("vibrate", now_us, duration_ms=duration_ms)

    def beep(self, frequency_hz: int, duration_ms: int) -> None:
        if duration_ms <= 0:
            raise ValueError(f"duration_ms must be positive, got {duration_ms}")
        if frequency_hz <= 0:
            raise ValueError(f"frequency_hz must be positive, got {frequency_hz}")
        with self._lock:
            now_us = self._clock.monotonic_us()
            self._beep_until_us = max(self._beep_until_us, now_us + duration_ms * 1000)
            self.history.append((now_us, "beep", (frequency_hz, duration_ms)))
            if self._trace is not None:
                self._trace.record("tone", now_us, frequency_hz=frequency_hz, duration_ms=duration_ms)

    def is_vibrating(self) -> bool:
        return self._clock.monotonic_us() < self._vibrate_until_us

    def is_beeping(self) -> bool:
        return self._clock.monotonic_us() < self._beep_until_us

    def events(self, kind: str, since_us: int = 0) -> list[tuple[int, tuple]]:
        """(timestamp_us, args) of every `kind` event at or after `since_us`."""
        with self._lock:
            return [(t, args) for t, k, args in self.history if k == kind and t >= since_us]
