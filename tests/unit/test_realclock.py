"""RealClock: OS time, timers run by the waiting thread, early wake on earlier deadlines.

The only tests that really sleep, each for a few milliseconds at most.
"""
from __future__ import annotations

import threading
import time

import pytest

from hal.realclock import RealClock

MS = 1_000


def test_reads_os_time():
    clock = RealClock()
    assert abs(clock.monotonic_us() - time.monotonic_ns() // 1000) < 50 * MS
    assert abs(clock.wall_time_us() - time.time_ns() // 1000) < 50 * MS


def test_wait_until_sleeps_to_the_deadline():
    clock = RealClock()
    deadline = clock.monotonic_us() + 5 * MS
    clock.wait_until(deadline)
    after = clock.monotonic_us()
    assert deadline <= after < deadline + 200 * MS


def test_past_deadline_returns_at_once():
    clock = RealClock()
    t0 = time.monotonic()
    clock.wait_until(clock.monotonic_us() - 1_000_000)
    assert time.monotonic() - t0 < 0.05


def test_callbacks_run_on_the_waiting_thread_in_deadline_order_with_ties_in_order():
    clock = RealClock()
    base = clock.monotonic_us()
    seen = []
    me = threading.get_ident()
    for label, offset in (("c", 3 * MS), ("a", 1 * MS), ("b1", 2 * MS), ("b2", 2 * MS)):
        clock.call_at(base + offset, lambda label=label, offset=offset: seen.append(
            (label, clock.monotonic_us() >= base + offset, threading.get_ident() == me)))
    clock.wait_until(base + 4 * MS)
    assert seen == [("a", True, True), ("b1", True, True), ("b2", True, True), ("c", True, True)]


def test_timer_due_after_the_deadline_does_not_run():
    clock = RealClock()
    base = clock.monotonic_us()
    seen = []
    clock.call_at(base + 500 * MS, lambda: seen.append("late"))
    clock.wait_until(base + 1 * MS)
    assert seen == []
    assert clock.pending_timers() == 1


def test_cancel():
    clock = RealClock()
    base = clock.monotonic_us()
    seen = []
    timer = clock.call_at(base + 1 * MS, lambda: seen.append("x"))
    timer.cancel()
    clock.wait_until(base + 2 * MS)
    assert seen == []


def test_callback_may_schedule_another_inside_the_window():
    clock = RealClock()
    base = clock.monotonic_us()
    seen = []
    clock.call_at(base + 1 * MS, lambda: clock.call_at(base + 2 * MS, lambda: seen.append("nested")))
    clock.wait_until(base + 4 * MS)
    assert seen == ["nested"]


class _Woken(Exception):
    """Raised by the early callback to end the wait at once (exceptions propagate out of wait_until)."""


@pytest.mark.parametrize("pending_later_timer", [False, True])
def test_another_thread_scheduling_an_earlier_deadline_wakes_the_waiter(pending_later_timer):
    clock = RealClock()
    start = clock.monotonic_us()
    far_us = start + 2_000_000  # without a wake-up, nothing could run before this
    if pending_later_timer:
        clock.call_at(far_us, lambda: None)
    ran_at = []

    def early():
        ran_at.append(clock.monotonic_us())
        raise _Woken

    def gpio_thread():
        time.sleep(0.003)  # the main thread is asleep in wait_until by now
        clock.call_at(clock.monotonic_us() + 1 * MS, early)

    worker = threading.Thread(target=gpio_thread, name="fake-gpio")
    worker.start()
    with pytest.raises(_Woken):
        clock.wait_until(far_us)
    worker.join(timeout=5)
    assert ran_at and ran_at[0] - start < 500 * MS, "the waiter slept through an earlier deadline"


def test_wait_until_inside_a_callback_is_an_error():
    clock = RealClock()
    errors = []

    def sleepy():
        try:
            clock.wait_until(clock.monotonic_us() + 1 * MS)
        except RuntimeError as exc:
            errors.append(str(exc))

    clock.call_at(clock.monotonic_us(), sleepy)
    clock.wait_until(clock.monotonic_us() + 1 * MS)
    assert errors and "inside a clock callback" in errors[0]


def test_callback_exception_leaves_the_clock_usable():
    clock = RealClock()
    base = clock.monotonic_us()
    seen = []

    def boom():
        raise ValueError("boom")

    clock.call_at(base, boom)
    clock.call_at(base + 1 * MS, lambda: seen.append("after"))
    with pytest.raises(ValueError):
        clock.wait_until(base + 2 * MS)
    clock.wait_until(base + 2 * MS)
    assert seen == ["after"]


def test_two_waiting_threads_run_callbacks_one_at_a_time():
    clock = RealClock()
    base = clock.monotonic_us()
    active = []
    overlaps = []
    order = []
    lock = threading.Lock()

    def cb(i):
        with lock:
            active.append(i)
            if len(active) > 1:
                overlaps.append(tuple(active))
        time.sleep(0.0005)
        with lock:
            active.remove(i)
            order.append(i)

    for i in range(6):
        clock.call_at(base + 1 * MS + (i // 2) * 500, lambda i=i: cb(i))
    threads = [threading.Thread(target=clock.wait_until, args=(base + 8 * MS,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    assert overlaps == []
    assert order == list(range(6))
