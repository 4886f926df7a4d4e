"""A virtual clock: time stands still until someone waits (SIM-2).

Time moves only inside wait_until(): it jumps from one due timer to the next,
running each callback at exactly its deadline, so a 60 s scenario takes as long
as its work does and every run is identical. For interactive real-time use the
simulator uses hal.realclock.RealClock instead; this clock never looks at the OS.
"""
from __future__ import annotations

import heapq
import itertools
import threading
from typing import Callable

from hal.clock import Clock
from hal.realclock import TimerHandle, as_deadline_us

DEFAULT_START_MONOTONIC_US = 1_000_000
# 2026-01-01T00:00:00Z: a fixed, plausible date so runs are reproducible.
DEFAULT_START_WALL_US = 1_767_225_600 * 1_000_000


class VirtualClock(Clock):
    virtual = True   # hal/clock.py: time does not wait for other threads

    def __init__(
        self,
        start_monotonic_us: int = DEFAULT_START_MONOTONIC_US,
        start_wall_us: int = DEFAULT_START_WALL_US,
    ) -> None:
        self._lock = threading.Lock()
        self._now_us = start_monotonic_us
        # wall = monotonic + offset; set_wall_time_us() moves the offset (a time sync).
        self._wall_offset_us = start_wall_us - start_monotonic_us
        self._heap: list[tuple[int, int, TimerHandle]] = []
        self._sequence = itertools.count()
        # The thread currently inside wait_until(), if any: time has one driver.
        self._driver: int | None = None

    # -- reading time -------------------------------------------------------

    def monotonic_us(self) -> int:
        return self._now_us

    def wall_time_us(self) -> int:
        with self._lock:
            return self._now_us + self._wall_offset_us

    def set_wall_time_us(self, wall_time_us: int) -> None:
        """Make the wall clock jump (an NTP/GNSS sync or a wrong RTC); monotonic is untouched."""
        with self._lock:
            self._wall_offset_us = wall_time_us - self._now_us

    # -- timers --------------------------------------------------------------

    def call_at(self, deadline_us: int, callback: Callable[[], None]) -> TimerHandle:
        handle = TimerHandle(as_deadline_us(deadline_us), callback)
        with self._lock:
            heapq.heappush(self._heap, (handle.deadline_us, next(self._sequence), handle))
        return handle

    def call_later(self, delay_us: int, callback: Callable[[], None]) -> TimerHandle:
        return self.call_at(self._now_us + delay_us, callback)

    def next_deadline_us(self) -> int | None:
        """Deadline of the earliest pending timer, or None when nothing is scheduled."""
        with self._lock:
            self._drop_cancelled_head()
            return self._heap[0][0] if self._heap else None

    def pending_timers(self) -> int:
        with self._lock:
            return sum(1 for _, _, h in self._heap if not h.cancelled)

    # -- letting time pass ---------------------------------------------------

    def wait_until(self, deadline_us: int) -> None:
        """Run every timer due at or before `deadline_us` in order, then stop there.

        Timers that callbacks schedule inside the window run in this same call.
        A deadline in the past runs only timers that are already overdue and
        leaves time where it is (monotonic time never goes back). An exception
        from a callback propagates, with time left at that callback's deadline.
        """
        deadline_us = as_deadline_us(deadline_us)
        me = threading.get_ident()
        with self._lock:
            if self._driver is not None:
                where = "from inside a clock callback" if self._driver == me else "from two threads at once"
                raise RuntimeError(f"VirtualClock.wait_until() called {where}")
            self._driver = me
        try:
            while True:
                with self._lock:
                    self._drop_cancelled_head()
                    if not self._heap or self._heap[0][0] > max(deadline_us, self._now_us):
                        self._now_us = max(self._now_us, deadline_us)
                        return
                    due_us, _, handle = heapq.heappop(self._heap)
                    self._now_us = max(self._now_us, due_us)
                callback = handle.callback
                if callback is not None:  # cancelled after it was popped
                    callback()
        finally:
            with self._lock:
                self._driver = None

    def advance(self, delta_us: int) -> None:
        """Let `delta_us` of virtual time pass, running due timers."""
        if delta_us < 0:
            raise ValueError(f"cannot advance by a negative delta ({delta_us} us)")
        self.wait_until(self._now_us + delta_us)

    def advance_s(self, delta_s: float) -> None:
        self.advance(round(delta_s * 1_000_000))

    def _drop_cancelled_head(self) -> None:
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
