"""Simulated battery: a world model whose level follows the clock and the load (FLT-3).

A cell of `capacity_mah` discharges at the current the device draws in its present
state (`load_ma`): by default 375 mA while buffering and 600 mA while recording from
3000 mAh, i.e. 8 h of buffering or 5 h of recording from full (12.5 and 20 %/hour),
and nothing when off (shut down, or the battery pulled by power.cut). The state is
read from `state_source`, a callable returning "buffering", "recording" or "off",
which the runner points at the live firmware's recorder.

The level is piecewise linear in clock time: each stretch at one rate is settled when
the rate changes. The runner calls state_changed() at the moment the recorder's state
changes, so the level is exact under the virtual clock; a state change nobody reported
is noticed at the next reading and counted from then.

A fixed drain (set_drain, or the scenario's battery.drain) overrides the per-state
model until set_drain(None); charging overrides both. Voltage follows the level along
a typical Li-ion discharge curve unless a test pins it.
"""
from __future__ import annotations

import threading
from typing import Callable

import numpy as np

from hal.battery import Battery
from hal.clock import Clock

_US_PER_HOUR = 3_600_000_000
STATES = ("buffering", "recording", "off")
DEFAULT_CAPACITY_MAH = 3000.0
# A Pi-class board with camera and encoder running; recording adds card writes and
# crypto. Chosen so the documented runtimes from full hold: 8 h buffering, 5 h recording.
DEFAULT_LOAD_MA = {"buffering": 375.0, "recording": 600.0, "off": 0.0}
# A single Li-ion cell under light load: level % -> terminal voltage.
_CURVE_PCT = np.array([0.0, 5.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0])
_CURVE_V = np.array([3.30, 3.50, 3.60, 3.68, 3.77, 3.87, 4.00, 4.18])


class SimBattery(Battery):
    def __init__(
        self,
        clock: Clock,
        level_pct: float = 100.0,
        drain_pct_per_hour: float | None = None,
        charge_pct_per_hour: float = 50.0,
        charging: bool = False,
        capacity_mah: float = DEFAULT_CAPACITY_MAH,
        load_ma: dict[str, float] | None = None,
        state_source: Callable[[], str] | None = None,
    ) -> None:
        """`drain_pct_per_hour`: a fixed drain instead of the per-state model (None: the model)."""
        loads = dict(DEFAULT_LOAD_MA, **(load_ma or {}))
        if set(loads) != set(STATES) or capacity_mah <= 0 or any(v < 0 for v in loads.values()):
            raise ValueError(f"need capacity_mah > 0 and a load >= 0 mA for each of {STATES}, "
                             f"got {capacity_mah} mAh and {loads}")
        self._clock = clock
        self._lock = threading.RLock()
        self.capacity_mah = float(capacity_mah)
        self.load_ma = loads
        self.charge_pct_per_hour = charge_pct_per_hour
        self._fixed_drain_pct_per_hour = drain_pct_per_hour
        self._charging = charging
        self._source = state_source or (lambda: "buffering")
        self._state = self._read_source()
        self._voltage_override_v: float | None = None
        self._set_level_locked(level_pct, self._clock.monotonic_us())

    # -- the model -------------------------------------------------------------------

    def rate_pct_per_hour(self, state: str) -> float:
        """The model's drain in `state`, in % of capacity per hour."""
        return self.load_ma[state] / self.capacity_mah * 100.0

    def minutes_left(self, state: str = "recording") -> float:
        """How long the level now lasts in `state` at the model's rate (inf at no load)."""
        rate = self.rate_pct_per_hour(state)
        return float("inf") if rate == 0 else self.level_pct() / rate * 60.0

    @property
    def state(self) -> str:
        """The state the level is draining in now, as last read from the source."""
        return self._state

    @property
    def drain_pct_per_hour(self) -> float:
        """The drain in effect now (the fixed override, or the model's for the state)."""
        with self._lock:
            return self._drain_locked()

    def _drain_locked(self) -> float:
        if self._fixed_drain_pct_per_hour is not None:
            return self._fixed_drain_pct_per_hour
        return self.rate_pct_per_hour(self._state)

    def _rate_locked(self) -> float:
        return self.charge_pct_per_hour if self._charging else -self._drain_locked()

    def _read_source(self) -> str:
        state = self._source()
        if state not in STATES:
            raise ValueError(f"battery state source gave {state!r}, not one of {STATES}")
        return state

    def _level_at_locked(self, at_us: int) -> float:
        elapsed_h = (at_us - self._ref_us) / _US_PER_HOUR
        return min(100.0, max(0.0, self._level_at_ref_pct + self._rate_locked() * elapsed_h))

    def _set_level_locked(self, level_pct: float, at_us: int) -> None:
        self._level_at_ref_pct = min(100.0, max(0.0, float(level_pct)))
        self._ref_us = at_us

    def _settle_locked(self, at_us: int) -> None:
        """End the stretch at the present rate at `at_us` (never before the last one began)."""
        at_us = max(at_us, self._ref_us)
        self._set_level_locked(self._level_at_locked(at_us), at_us)

    def follow(self, state_source: Callable[[], str] | None) -> None:
        """Drain by the state `state_source` returns from now (None: "buffering")."""
        with self._lock:
            self._settle_locked(self._clock.monotonic_us())
            self._source = state_source or (lambda: "buffering")
            self._state = self._read_source()

    def state_changed(self, at_us: int | None = None) -> None:
        """The source's state changed at `at_us` (default now): what came before drained at
        the old state's rate."""
        with self._lock:
            self._settle_locked(self._clock.monotonic_us() if at_us is None else at_us)
            self._state = self._read_source()

    # -- the Battery interface ---------------------------------------------------------

    def level_pct(self) -> float:
        with self._lock:
            now_us = self._clock.monotonic_us()
            state = self._read_source()
            if state != self._state:   # a change nobody reported: count it from now
                self._settle_locked(now_us)
                self._state = state
            return self._level_at_locked(now_us)

    def voltage_v(self) -> float:
        if self._voltage_override_v is not None:
            return self._voltage_override_v
        return float(np.interp(self.level_pct(), _CURVE_PCT, _CURVE_V))

    def is_charging(self) -> bool:
        return self._charging

    # -- world controls (tests, scenario steps) -------------------------------------------

    def set_level(self, level_pct: float) -> None:
        with self._lock:
            self._set_level_locked(level_pct, self._clock.monotonic_us())

    def set_charging(self, charging: bool) -> None:
        # Freeze the level reached so far, then continue at the new rate.
        with self._lock:
            self._settle_locked(self._clock.monotonic_us())
            self._charging = charging

    def set_drain(self, drain_pct_per_hour: float | None) -> None:
        """A fixed drain from now on; None: back to the per-state model."""
        if drain_pct_per_hour is not None and not drain_pct_per_hour >= 0:
            raise ValueError(f"drain must be >= 0 %/hour, got {drain_pct_per_hour}")
        with self._lock:
            self._settle_locked(self._clock.monotonic_us())
            self._fixed_drain_pct_per_hour = drain_pct_per_hour

    def set_voltage(self, voltage_v: float | None) -> None:
        """Pin the reported voltage (a sagging cell, a bad reading); None follows the level again."""
        self._voltage_override_v = voltage_v
