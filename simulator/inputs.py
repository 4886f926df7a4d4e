"""Simulated digital inputs: the record button and trigger lines (ACT-1, ACT-2).

Edges are raw, stamped with the clock's monotonic time, and can chatter like a
real contact (bounce()), because debouncing is the firmware's job.
"""
from __future__ import annotations

import threading

from hal.clock import Clock
from hal.inputs import RECORD_BUTTON, EdgeCallback, Inputs


class SimInputs(Inputs):
    def __init__(self, clock: Clock, names: tuple[str, ...] = (RECORD_BUTTON,)) -> None:
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate input names in {names}")
        self._clock = clock
        self._names = tuple(names)
        self._active = {name: False for name in names}
        self._subscribers: list[EdgeCallback] = []
        self._lock = threading.Lock()
        self.history: list[tuple[int, str, bool]] = []  # every edge delivered

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    def subscribe(self, callback: EdgeCallback) -> None:
        with self._lock:
            self._subscribers.append(callback)

    def is_active(self, name: str) -> bool:
        self._check(name)
        return self._active[name]

    def set(self, name: str, active: bool) -> bool:
        """Drive an input to a level now. Returns False (no edge) if it is already there."""
        self._check(name)
        with self._lock:
            if self._active[name] == active:
                return False
            self._active[name] = active
            timestamp_us = self._clock.monotonic_us()
            self.history.append((timestamp_us, name, active))
            subscribers = list(self._subscribers)
        # Outside the lock: a subscriber may read is_active() or schedule timers.
        for callback in subscribers:
            callback(name, active, timestamp_us)
        return True

    def press(self, name: str = RECORD_BUTTON) -> bool:
        return self.set(name, True)

    def release(self, name: str = RECORD_BUTTON) -> bool:
        return self.set(name, False)

    def bounce(self, name: str, active: bool, edges: int = 3, spacing_us: int = 2000) -> int:
        """Schedule a chattering contact: `edges` alternating edges from now, spacing_us apart,
        the last one leaving the input `active`. Returns the time of the last edge.

        The count must fit the current level: odd to change it (the default 3 is
        on-off-on), even to chatter and come back.
        """
        self._check(name)
        if edges < 1 or spacing_us < 0:
            raise ValueError(f"bounce needs edges >= 1 and spacing_us >= 0, got {edges}, {spacing_us}")
        changes_level = self._active[name] != active
        if changes_level != (edges % 2 == 1):
            raise ValueError(
                f"{edges} edges cannot take input {name!r} from {self._active[name]} to {active}: "
                f"use an {'odd' if changes_level else 'even'} count"
            )
        start_us = self._clock.monotonic_us()
        for i in range(edges):
            level = active if (edges - 1 - i) % 2 == 0 else not active
            self._clock.call_at(start_us + i * spacing_us, lambda level=level: self.set(name, level))
        return start_us + (edges - 1) * spacing_us

    def _check(self, name: str) -> None:
        if name not in self._active:
            raise KeyError(f"no input named {name!r}; this board has {', '.join(self._names)}")
