"""PowerDomain (simulator/power.py): after a cut nothing a dead firmware instance
scheduled runs, while the shared clock keeps serving the next instance."""
from __future__ import annotations

from simulator.clock import VirtualClock
from simulator.power import PowerDomain


def test_a_cut_cancels_what_the_domain_scheduled_and_refuses_more():
    clock = VirtualClock()
    old, new = PowerDomain(clock), PowerDomain(clock)
    ran = []
    old.call_at(clock.monotonic_us() + 10, lambda: ran.append("old, before the cut"))
    old.call_at(clock.monotonic_us() + 30, lambda: ran.append("old, after the cut"))
    clock.call_at(clock.monotonic_us() + 20, old.cut)
    new.call_at(clock.monotonic_us() + 40, lambda: ran.append("new"))
    clock.advance(50)
    handle = old.call_at(clock.monotonic_us() + 10, lambda: ran.append("old, scheduled after the cut"))
    clock.advance(50)
    assert ran == ["old, before the cut", "new"]
    assert handle.cancelled and not old.on and new.on


def test_a_cut_stops_a_self_rescheduling_timer_like_the_camera():
    clock = VirtualClock()
    domain = PowerDomain(clock)
    ticks = []

    def tick():
        ticks.append(clock.monotonic_us())
        domain.call_at(clock.monotonic_us() + 10, tick)

    domain.call_at(clock.monotonic_us(), tick)
    clock.advance(45)
    domain.cut()
    clock.advance(100)
    assert len(ticks) == 5 and clock.pending_timers() == 0


def test_time_reads_through():
    clock = VirtualClock()
    domain = PowerDomain(clock)
    clock.advance(123)
    assert (domain.monotonic_us(), domain.wall_time_us()) == (clock.monotonic_us(), clock.wall_time_us())
