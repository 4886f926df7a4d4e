"""The simulator's rig: the same interface as the GPIO rig, over simulated inputs and indicators."""
from __future__ import annotations

import pytest

from hal.indicators import LED_RECORD, LED_STATUS
from hal.inputs import RECORD_BUTTON
from simulator.clock import VirtualClock
from simulator.indicators import SimIndicators
from simulator.inputs import SimInputs
from tools.bench.rig import RECORD_LED, STATUS_LED, VIBRATION, RigError, self_test
from tools.bench.rig_sim import SimRig


@pytest.fixture
def parts():
    clock = VirtualClock(start_monotonic_us=5_000_000)
    inputs = SimInputs(clock, (RECORD_BUTTON, "holster"))
    rig = SimRig(clock, inputs)
    return clock, inputs, rig, rig.watch(SimIndicators(clock))


def test_an_edge_reaches_the_board_dated_on_the_simulator_clock(parts):
    clock, inputs, rig, _ = parts
    seen = []
    inputs.subscribe(lambda name, active, t_us: seen.append((name, active, t_us)))
    clock.advance(1_234)
    edge = rig.press("holster")
    assert inputs.is_active("holster") and seen == [("holster", True, 5_001_234)]
    assert edge.t_ns == 5_001_234_000 and edge.active
    rig.release("holster")
    assert not inputs.is_active("holster")
    with pytest.raises(RigError, match="no line 'pod'"):
        rig.press("pod")


def test_indicator_changes_are_recorded_once_each_and_a_pulse_ends_on_the_clock(parts):
    clock, _, rig, indicators = parts
    before_ns = rig.wall_ns()
    indicators.set_led(LED_RECORD, True)
    indicators.set_led(LED_RECORD, True)   # the same level again: no change on a wire
    indicators.vibrate(200)
    clock.advance(100_000)
    indicators.vibrate(50)                  # shorter than what runs: the motor keeps going to 200 ms
    clock.advance(60_000)
    assert rig.level(VIBRATION)
    clock.advance(50_000)
    indicators.set_led(LED_STATUS, True)
    changes = rig.changes(before_ns)
    assert [(c.indicator, c.on) for c in changes] == [
        (RECORD_LED, True), (VIBRATION, True), (VIBRATION, False), (STATUS_LED, True)]
    assert [c.t_ns for c in changes] == [5_000_000_000, 5_000_000_000, 5_200_000_000, 5_210_000_000]
    assert all(before_ns <= a.wall_ns <= b.wall_ns for a, b in zip(changes, changes[1:]))
    assert rig.first_change(before_ns, VIBRATION, on=False).t_ns == 5_200_000_000


def test_the_self_test_passes_on_the_simulator_and_leaves_every_line_released(parts):
    clock, inputs, rig, indicators = parts
    self_test(rig, inputs, indicators, let_pass_us=clock.advance)
    assert not any(inputs.is_active(name) for name in inputs.names)
    assert not any(rig.level(name) for name in (RECORD_LED, STATUS_LED, VIBRATION))
