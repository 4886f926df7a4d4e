"""Simulated battery: a world model whose level follows the clock (FLT-3).

The level drains (or charges) linearly in clock time from the last time it was
set; voltage follows the level along a typical Li-ion discharge curve unless a
test pins it.
"""
from __future__ import annotations

import threading

import numpy as np

from hal.battery import Battery
from hal.clock import Clock

_US_PER_HOUR = 3_600_000_000
# A single Li-ion cell under light load: level % -> terminal voltage.
_CURVE_PCT = np.array([0.0, 5.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0])
_CURVE_V = np.array([3.30, 3.50, 3.60, 3.68, 3.77, 3.87, 4.00, 4.18])


class SimBattery(Battery):
    def __init__(
        self,
        clock: Clock,
        level_pct: float = 100.0,
        drain_pct_per_hour: float = 25.0,
        charge_pct_per_hour: float = 50.0,
        charging: bool = False,
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.drain_pct_per_hour = drain_pct_per_hour
        self.charge_pct_per_hour = charge_pct_per_hour
        self._charging = charging
        self._voltage_override_v: float | None = None
        self._set_level_locked(level_pct)

    def _set_level_locked(self, level_pct: float) -> None:
        self._level_at_ref_pct = min(100.0, max(0.0, float(level_pct)))
        self._ref_us = self._clock.monotonic_us()

    def level_pct(self) -> float:
        with self._lock:
            elapsed_h = (self._clock.monotonic_us() - self._ref_us) / _US_PER_HOUR
            rate = self.charge_pct_per_hour if self._charging else -self.drain_pct_per_hour
            return min(100.0, max(0.0, self._level_at_ref_pct + rate * elapsed_h))

    def voltage_v(self) -> float:
        if self._voltage_override_v is not None:
            return self._voltage_override_v
        return float(np.interp(self.level_pct(), _CURVE_PCT, _CURVE_V))

    def is_charging(self) -> bool:
        return self._charging

    def set_level(self, level_pct: float) -> None:
        with self._lock:
            self._set_level_locked(level_pct)

    def set_charging(self, charging: bool) -> None:
        # Freeze the level reached so far, then continue at the new rate.
        level = self.level_pct()
        with self._lock:
            self._charging = charging
            self._set_level_locked(level)

    def set_drain(self, drain_pct_per_hour: float) -> None:
        level = self.level_pct()
        with self._lock:
            self.drain_pct_per_hour = drain_pct_per_hour
            self._set_level_locked(level)

    def set_voltage(self, voltage_v: float | None) -> None:
        """Pin the reported voltage (a sagging cell, a bad reading); None follows the level again."""
        self._voltage_override_v = voltage_v
