"""VirtualClock: time moves only inside wait_until, timers run in order at their deadlines."""
from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.clock import DEFAULT_START_WALL_US, VirtualClock


def test_starts_at_given_times_and_holds_still():
    clock = VirtualClock(start_monotonic_us=5, start_wall_us=1_000)
    assert clock.monotonic_us() == 5
    assert clock.wall_time_us() == 1_000
    assert clock.monotonic_us() == 5  # reading time does not move it


def test_default_wall_time_is_2026_01_01_utc():
    import datetime

    clock = VirtualClock()
    assert clock.monotonic_us() == 1_000_000
    assert datetime.datetime.fromtimestamp(clock.wall_time_us() / 1e6, datetime.timezone.utc) == datetime.datetime(
        2026, 1, 1, tzinfo=datetime.timezone.utc
    )
    assert DEFAULT_START_WALL_US == 1_767_225_600_000_000


def test_wall_time_advances_with_monotonic_and_can_jump():
    clock = VirtualClock()
    wall0 = clock.wall_time_us()
    clock.advance(2_500_000)
    assert clock.wall_time_us() == wall0 + 2_500_000
    clock.set_wall_time_us(42)
    assert clock.wall_time_us() == 42
    assert clock.monotonic_us() == 3_500_000  # a wall jump never moves monotonic time
    clock.advance(8)
    assert clock.wall_time_us() == 50


def test_callbacks_run_at_their_deadline_in_order_and_time_ends_at_target():
    clock = VirtualClock(start_monotonic_us=0)
    seen = []
    for deadline in (30, 10, 20):
        clock.call_at(deadline, lambda d=deadline: seen.append((d, clock.monotonic_us())))
    clock.call_at(100, lambda: seen.append(("late", clock.monotonic_us())))
    clock.wait_until(50)
    assert seen == [(10, 10), (20, 20), (30, 30)]
    assert clock.monotonic_us() == 50
    clock.wait_until(100)  # a timer due exactly at the target runs
    assert seen[-1] == ("late", 100)


def test_ties_run_in_scheduling_order():
    clock = VirtualClock(start_monotonic_us=0)
    seen = []
    for i in range(10):
        clock.call_at(7, lambda i=i: seen.append(i))
    clock.advance(7)
    assert seen == list(range(10))


def test_callbacks_scheduled_by_callbacks_run_in_the_same_wait_in_order():
    clock = VirtualClock(start_monotonic_us=0)
    seen = []

    def first():
        seen.append(("first", clock.monotonic_us()))
        clock.call_at(15, lambda: seen.append(("nested-15", clock.monotonic_us())))
        clock.call_at(clock.monotonic_us(), lambda: seen.append(("nested-now", clock.monotonic_us())))
        clock.call_at(500, lambda: seen.append(("beyond", clock.monotonic_us())))

    clock.call_at(10, first)
    clock.call_at(20, lambda: seen.append(("second", clock.monotonic_us())))
    clock.wait_until(100)
    assert seen == [("first", 10), ("nested-now", 10), ("nested-15", 15), ("second", 20)]
    assert clock.monotonic_us() == 100
    assert clock.next_deadline_us() == 500


def test_periodic_chain_like_a_camera():
    clock = VirtualClock(start_monotonic_us=0)
    ticks = []

    def tick(n=0):
        ticks.append(clock.monotonic_us())
        clock.call_at(round((n + 1) * 1_000_000 / 30), lambda: tick(n + 1))

    clock.call_at(0, tick)
    clock.advance(1_000_000)
    assert ticks == [round(n * 1_000_000 / 30) for n in range(31)]


def test_cancel_prevents_the_callback():
    clock = VirtualClock(start_monotonic_us=0)
    seen = []
    timer = clock.call_at(10, lambda: seen.append("cancelled"))
    clock.call_at(20, lambda: seen.append("kept"))
    timer.cancel()
    timer.cancel()  # twice is fine
    assert clock.pending_timers() == 1
    clock.advance(30)
    assert seen == ["kept"]


def test_a_callback_can_cancel_a_later_timer_due_in_the_same_wait():
    clock = VirtualClock(start_monotonic_us=0)
    seen = []
    later = clock.call_at(20, lambda: seen.append("later"))
    clock.call_at(10, later.cancel)
    clock.advance(30)
    assert seen == []


def test_past_deadline_returns_at_once_but_runs_overdue_timers():
    clock = VirtualClock(start_monotonic_us=1_000)
    seen = []
    clock.call_at(500, lambda: seen.append(clock.monotonic_us()))  # already overdue
    clock.call_at(2_000, lambda: seen.append("future"))
    clock.wait_until(10)
    assert seen == [1_000]  # overdue timer runs now; time never goes back
    assert clock.monotonic_us() == 1_000


def test_advance_rejects_negative():
    clock = VirtualClock()
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_wait_until_inside_a_callback_is_an_error():
    clock = VirtualClock(start_monotonic_us=0)
    errors = []

    def sleepy():
        try:
            clock.wait_until(50)
        except RuntimeError as exc:
            errors.append(str(exc))

    clock.call_at(10, sleepy)
    clock.advance(20)
    assert errors and "inside a clock callback" in errors[0]


def test_callback_exception_propagates_and_later_timers_survive():
    clock = VirtualClock(start_monotonic_us=0)
    seen = []

    def boom():
        raise ZeroDivisionError("boom")

    clock.call_at(10, boom)
    clock.call_at(20, lambda: seen.append(clock.monotonic_us()))
    with pytest.raises(ZeroDivisionError):
        clock.advance(100)
    assert clock.monotonic_us() == 10
    clock.advance(90)
    assert seen == [20]
    assert clock.monotonic_us() == 100


def test_call_at_from_other_threads_is_safe():
    clock = VirtualClock(start_monotonic_us=0)
    seen = []
    lock = threading.Lock()

    def schedule(base):
        for i in range(200):
            clock.call_at(base + i, lambda v=base + i: (lock.acquire(), seen.append(v), lock.release()))

    threads = [threading.Thread(target=schedule, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    clock.advance(10_000)
    assert seen == sorted(seen) and len(seen) == 800


def test_fractional_deadline_rounds_up_never_early():
    clock = VirtualClock(start_monotonic_us=0)
    seen = []
    clock.call_at(10.2, lambda: seen.append(clock.monotonic_us()))
    clock.advance(10)
    assert seen == []
    clock.advance(1)
    assert seen == [11]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=1_000), min_size=1, max_size=40), st.integers(0, 1_200))
def test_any_schedule_runs_sorted_stably_and_only_up_to_target(deadlines, target):
    clock = VirtualClock(start_monotonic_us=0)
    seen = []
    for i, d in enumerate(deadlines):
        clock.call_at(d, lambda i=i, d=d: seen.append((d, i, clock.monotonic_us())))
    clock.wait_until(target)
    expected = sorted((d, i) for i, d in enumerate(deadlines) if d <= target)
    assert [(d, i) for d, i, _ in seen] == expected
    assert all(now == d for d, _, now in seen)
    assert clock.monotonic_us() == target
