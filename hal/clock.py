"""Time as a HAL part: the firmware never calls time.* itself (DESIGN §3).

Modelled on trio's Clock: small enough that a simulator clock can hold still
until a test advances it.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable, Protocol


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(ABC):
    # True for a clock that jumps from callback to callback (the simulator's): work handed
    # to another thread does not advance with it, so a watchdog must let that work catch
    # up before judging how long it took (device/monitor.py).
    virtual = False

    @abstractmethod
    def monotonic_us(self) -> int:
        """Monotonic time in µs; never jumps, origin arbitrary."""

    @abstractmethod
    def wall_time_us(self) -> int:
        """UTC wall time in µs since the Unix epoch; may jump when synced."""

    @abstractmethod
    def call_at(self, deadline_us: int, callback: Callable[[], None]) -> Timer:
        """Run `callback` once monotonic time reaches `deadline_us`.

        Callbacks run on the thread that is inside wait_until(), one at a time,
        in deadline order (ties in scheduling order).
        """

    @abstractmethod
    def wait_until(self, deadline_us: int) -> None:
        """Let time pass until `deadline_us`, running due callbacks meanwhile.

        A real clock sleeps; a virtual clock jumps straight from one callback to
        the next, so a 60 s scenario takes as long as its work does.
        """
