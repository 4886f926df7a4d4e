"""Simulated digital inputs: the record button and trigger lines (ACT-1, ACT-2).

Edges are raw, stamped with the clock's monotonic time, and can chatter like a
real contact (bounce()), because debouncing is the firmware's job.

A scripted edge is stamped with the time the script meant (`at_us`), not the time
its clock callback happened to run: on the wall clock a callback runs a little
late, by a different amount each time, so a hold scripted as exactly 3 s would
otherwise be measured as 3 s plus the release's lateness minus the press's, and
stop a recording only when the release happened to run later than the press did.
A GPIO interrupt on the device is stamped the same way, by the kernel at the edge.
"""
from __future__ import annotations

import threading

from hal.clock import Clock
from hal.inputs import RECORD_BUTTON, EdgeCallback, Inputs
from simulator.trace import Trace


class SimInputs(Inputs):
    def __init__(self, clock: Clock, names: tuple[str, ...] = (RECORD_BUTTON,),
                 trace: Trace | None = None) -> None:
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate input names in {names}")
        self._clock = clock
        self._trace = trace
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

    def set(self, name: str, active: bool, at_us: int | None = None) -> bool:
        """Drive an input to a level. The edge is stamped `at_us` (when it happened, if the
        caller ran late; never later than now) or now. Returns False (no edge) if the
        input is already at that level."""
        self._check(name)
        with self._lock:
            if self._active[name] == active:
                return False
            self._active[name] = active
            now_us = self._clock.monotonic_us()
            timestamp_us = now_us if at_us is None else min(at_us, now_us)
            self.history.append((timestamp_us, name, active))
            subscribers = list(self._subscribers)
            if self._trace is not None:
                self._trace.record("input", timestamp_us, name=name, active=active)
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
            at_us = start_us + i * spacing_us
            self._clock.call_at(at_us, lambda level=level, at_us=at_us: self.set(name, level, at_us))
        return start_us + (edges - 1) * spacing_us

    def _check(self, name: str) -> None:
        if name not in self._active:
            raise KeyError(f"no input named {name!r}; this board has {', '.join(self._names)}")
