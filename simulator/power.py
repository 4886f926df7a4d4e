"""One firmware instance's view of the clock, which a power cut switches off (SIM-3).

Every simulated part of a device (camera, microphone, inputs, indicators, the
firmware's own timers) schedules through this view. When the power goes, cut()
cancels everything it scheduled and later call_at()s do nothing, so an abandoned
firmware instance never runs again while the next one boots on the same clock.
"""
from __future__ import annotations

import threading
from typing import Callable

from hal.clock import Clock
from hal.realclock import TimerHandle

_PRUNE_EVERY = 1024   # forget cancelled timers this often, so a long run does not hoard them


class PowerDomain(Clock):
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._live: set = set()
        self._added = 0
        self._on = True

    @property
    def virtual(self) -> bool:
        return self._clock.virtual

    @property
    def on(self) -> bool:
        return self._on

    def monotonic_us(self) -> int:
        return self._clock.monotonic_us()

    def wall_time_us(self) -> int:
        return self._clock.wall_time_us()

    def call_at(self, deadline_us: int, callback: Callable[[], None]):
        with self._lock:
            if not self._on:
                dead = TimerHandle(deadline_us, callback)
                dead.cancel()
                return dead
            holder: list = []

            def run() -> None:
                with self._lock:
                    self._live.discard(holder[0])
                    if not self._on:
                        return
                callback()

            handle = self._clock.call_at(deadline_us, run)
            holder.append(handle)
            self._live.add(handle)
            self._added += 1
            if self._added % _PRUNE_EVERY == 0:
                self._live = {h for h in self._live if not getattr(h, "cancelled", False)}
            return handle

    def wait_until(self, deadline_us: int) -> None:
        raise RuntimeError("a device's parts do not drive the clock; the runner does")

    def cut(self) -> None:
        """Power off: nothing this domain scheduled runs any more."""
        with self._lock:
            self._on = False
            live, self._live = self._live, set()
        for handle in live:   # drop them from the clock now rather than when each falls due
            handle.cancel()
