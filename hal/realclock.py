"""The real clock: OS monotonic and wall time, timers run by whoever waits.

Used on the device and for the simulator's real-time (interactive) mode (SIM-2).
Timers live in a heap; the thread inside wait_until() sleeps on a condition
variable until the earlier of its own deadline and the first timer's, so a
call_at() from another thread (a GPIO callback, a UI) with an earlier deadline
wakes it at once. No polling.
"""
from __future__ import annotations

import heapq
import itertools
import math
import threading
import time
from typing import Callable

from hal.clock import Clock


class TimerHandle:
    """What call_at() returns. cancel() prevents the callback if it has not started."""

    __slots__ = ("deadline_us", "callback", "cancelled")

    def __init__(self, deadline_us: int, callback: Callable[[], None]) -> None:
        self.deadline_us = deadline_us
        self.callback: Callable[[], None] | None = callback
        self.cancelled = False

    def cancel(self) -> None:
        # Plain attribute writes are atomic under the GIL; the clock re-checks the
        # flag under its lock when it pops the entry, so no lock is needed here.
        self.cancelled = True
        self.callback = None  # drop references held by the closure early

    def __repr__(self) -> str:
        state = "cancelled" if self.cancelled else "pending"
        return f"<TimerHandle at {self.deadline_us} us, {state}>"


def as_deadline_us(deadline_us: int | float) -> int:
    """Deadlines are whole µs; a fractional one rounds up so a timer never fires early."""
    if isinstance(deadline_us, int):
        return deadline_us
    return math.ceil(deadline_us)


class RealClock(Clock):
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        # Entries are (deadline_us, sequence, handle): the sequence number makes
        # ties run in scheduling order and keeps handles out of comparisons.
        self._heap: list[tuple[int, int, TimerHandle]] = []
        self._sequence = itertools.count()
        # Only one callback runs at a time, even with several waiting threads.
        self._dispatching = False
        self._local = threading.local()

    def monotonic_us(self) -> int:
        return time.monotonic_ns() // 1000

    def wall_time_us(self) -> int:
        return time.time_ns() // 1000

    def call_at(self, deadline_us: int, callback: Callable[[], None]) -> TimerHandle:
        handle = TimerHandle(as_deadline_us(deadline_us), callback)
        with self._cond:
            heapq.heappush(self._heap, (handle.deadline_us, next(self._sequence), handle))
            # Wake any waiter: it recomputes its sleep against the new head.
            self._cond.notify_all()
        return handle

    def pending_timers(self) -> int:
        with self._cond:
            return sum(1 for _, _, h in self._heap if not h.cancelled)

    def wait_until(self, deadline_us: int) -> None:
        if getattr(self._local, "in_callback", False):
            # A callback that sleeps would stall every other timer: a bug, so say so.
            raise RuntimeError("wait_until() called from inside a clock callback")
        deadline_us = as_deadline_us(deadline_us)
        while True:
            handle = self._next_due_or_none(deadline_us)
            if handle is None:
                return
            self._run(handle)

    def _next_due_or_none(self, deadline_us: int) -> TimerHandle | None:
        """Block until a timer is due (return it, marked as dispatching) or the deadline passes (None)."""
        with self._cond:
            while True:
                heap = self._heap
                while heap and heap[0][2].cancelled:
                    heapq.heappop(heap)
                now_us = self.monotonic_us()
                if heap and not self._dispatching and heap[0][0] <= now_us:
                    handle = heapq.heappop(heap)[2]
                    self._dispatching = True
                    return handle
                if now_us >= deadline_us:
                    return None
                wake_us = deadline_us
                if heap and not self._dispatching:
                    wake_us = min(wake_us, heap[0][0])
                # Condition.wait uses the same monotonic clock; it may return a
                # hair early, in which case the loop simply sleeps the remainder.
                self._cond.wait((wake_us - now_us) / 1_000_000)

    def _run(self, handle: TimerHandle) -> None:
        callback = handle.callback
        self._local.in_callback = True
        try:
            if callback is not None:
                callback()
        finally:
            self._local.in_callback = False
            with self._cond:
                self._dispatching = False
                # Another waiter may have been holding back for this callback to end.
                self._cond.notify_all()
