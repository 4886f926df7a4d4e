"""A clock whose wall time the simulated world can step (SIM-3: clock.jump, clock.set).

Wraps the run's clock (VirtualClock, or RealClock under --realtime) and adds an offset
to its wall time only: monotonic time, timers and waiting are the wrapped clock's,
untouched, as on a device whose RTC is stepped by NTP, GNSS or a wrong battery-backed
chip (FLT-4: ordering uses monotonic time; the firmware sees wall_time_us() jump).
One wrapper serves both clocks, so a scenario's clock steps behave the same under
--realtime, where the OS clock must not be touched.
"""
from __future__ import annotations

import threading
from typing import Callable

from hal.clock import Clock, Timer


class SteppableWallClock(Clock):
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._offset_us = 0

    @property
    def virtual(self) -> bool:
        return self._clock.virtual

    @property
    def inner(self) -> Clock:
        """The wrapped clock (a test may drive a VirtualClock through it)."""
        return self._clock

    def monotonic_us(self) -> int:
        return self._clock.monotonic_us()

    def wall_time_us(self) -> int:
        # Never before the epoch: the firmware's utc_us is a non-negative count, and no RTC
        # shows a time before 1970 (a jump back past it stops there).
        return max(0, self._clock.wall_time_us() + self._offset_us)

    def jump_us(self, delta_us: int) -> int:
        """Step the wall clock by `delta_us` (negative: back). Returns the new wall time."""
        with self._lock:
            now_us = self.wall_time_us()
            self._offset_us = max(0, now_us + delta_us) - self._clock.wall_time_us()
            return self.wall_time_us()

    def set_wall_time_us(self, wall_time_us: int) -> None:
        """The wall clock reads `wall_time_us` now, and runs on from there."""
        if wall_time_us < 0:
            raise ValueError(f"wall time before the epoch: {wall_time_us} us")
        with self._lock:
            self._offset_us = wall_time_us - self._clock.wall_time_us()

    def call_at(self, deadline_us: int, callback: Callable[[], None]) -> Timer:
        return self._clock.call_at(deadline_us, callback)

    def wait_until(self, deadline_us: int) -> None:
        self._clock.wait_until(deadline_us)
