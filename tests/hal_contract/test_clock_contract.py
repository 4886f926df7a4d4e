"""Clock: the firmware's only source of time (DESIGN §3); every timer and timestamp hangs
off it. Runs on the simulator's virtual clock and on the real clock a Pi runs on, with
deadlines a few ms away so the real one costs milliseconds."""
from __future__ import annotations

import threading

MS = 1_000


def test_monotonic_time_never_goes_back(clock):
    readings = [clock.monotonic_us() for _ in range(1_000)]
    clock.wait_until(clock.monotonic_us() + 2 * MS)
    readings.append(clock.monotonic_us())
    assert all(isinstance(t, int) for t in readings)
    assert readings == sorted(readings)


def test_wait_until_returns_at_or_after_its_deadline(clock):
    deadline_us = clock.monotonic_us() + 3 * MS
    clock.wait_until(deadline_us)
    assert clock.monotonic_us() >= deadline_us


def test_a_deadline_in_the_past_returns_at_once_and_time_stays_put(clock):
    now_us = clock.monotonic_us()
    clock.wait_until(now_us - 1_000_000)
    assert clock.monotonic_us() >= now_us


def test_timers_run_in_deadline_order_ties_in_scheduling_order(clock):
    ran: list[str] = []
    base_us = clock.monotonic_us()
    for name, offset_ms in [("c", 3), ("a", 1), ("b1", 2), ("b2", 2), ("b3", 2)]:
        clock.call_at(base_us + offset_ms * MS, lambda name=name: ran.append(name))
    clock.wait_until(base_us + 5 * MS)
    assert ran == ["a", "b1", "b2", "b3", "c"]


def test_a_timer_never_fires_before_its_deadline(clock):
    fired_at: list[tuple[int, int]] = []
    base_us = clock.monotonic_us()
    for offset_ms in (1, 2, 4):
        deadline_us = base_us + offset_ms * MS
        clock.call_at(deadline_us, lambda d=deadline_us: fired_at.append((d, clock.monotonic_us())))
    clock.wait_until(base_us + 6 * MS)
    assert len(fired_at) == 3 and all(now_us >= deadline_us for deadline_us, now_us in fired_at)


def test_timers_not_yet_due_wait_for_a_later_wait_until(clock):
    ran: list[str] = []
    base_us = clock.monotonic_us()
    clock.call_at(base_us + 1 * MS, lambda: ran.append("soon"))
    # 250 ms apart: a real clock's wait may return late on a loaded machine, and must
    # still not have reached the later timer.
    clock.call_at(base_us + 250 * MS, lambda: ran.append("later"))
    clock.wait_until(base_us + 3 * MS)
    assert ran == ["soon"]
    clock.wait_until(base_us + 252 * MS)
    assert ran == ["soon", "later"]


def test_a_cancelled_timer_never_runs_and_the_others_do(clock):
    ran: list[str] = []
    base_us = clock.monotonic_us()
    keep = clock.call_at(base_us + 1 * MS, lambda: ran.append("kept"))
    drop = clock.call_at(base_us + 2 * MS, lambda: ran.append("dropped"))
    drop.cancel()
    drop.cancel()                                   # cancelling twice is harmless
    clock.wait_until(base_us + 4 * MS)
    keep.cancel()                                   # so is cancelling one that already ran
    assert ran == ["kept"]


def test_a_callback_may_cancel_a_later_timer(clock):
    ran: list[str] = []
    base_us = clock.monotonic_us()
    later = clock.call_at(base_us + 3 * MS, lambda: ran.append("later"))
    clock.call_at(base_us + 1 * MS, lambda: (ran.append("first"), later.cancel()))
    clock.wait_until(base_us + 5 * MS)
    assert ran == ["first"]


def test_a_timer_scheduled_by_a_callback_runs_in_the_same_wait(clock):
    # Pulses end and patterns chain this way (hal/pi/gpio.py, device/patterns.py).
    ran: list[str] = []
    base_us = clock.monotonic_us()
    clock.call_at(base_us + 1 * MS,
                  lambda: clock.call_at(base_us + 2 * MS, lambda: ran.append("chained")))
    clock.wait_until(base_us + 4 * MS)
    assert ran == ["chained"]


def test_callbacks_run_on_the_waiting_thread_one_at_a_time(clock):
    threads: set[int] = set()
    running = [0]
    overlaps = []
    base_us = clock.monotonic_us()

    def callback() -> None:
        running[0] += 1
        overlaps.append(running[0])
        threads.add(threading.get_ident())
        running[0] -= 1

    for offset_ms in (1, 1, 2):
        clock.call_at(base_us + offset_ms * MS, callback)
    clock.wait_until(base_us + 3 * MS)
    assert threads == {threading.get_ident()} and overlaps == [1, 1, 1]


def test_wall_time_is_utc_microseconds_since_the_epoch(clock):
    # 2020-01-01 .. 2100-01-01: a plausible UTC time in µs (not ms, not ns).
    assert 1_577_836_800_000_000 < clock.wall_time_us() < 4_102_444_800_000_000
