"""Simulated inputs (raw, bouncing edges), indicators and battery on the virtual clock."""
from __future__ import annotations

import pytest

from hal.indicators import LED_RECORD, LED_STATUS
from simulator.battery import SimBattery
from simulator.clock import VirtualClock
from simulator.indicators import SimIndicators
from simulator.inputs import SimInputs


def make_inputs(names=("record", "holster")):
    clock = VirtualClock(start_monotonic_us=0)
    inputs = SimInputs(clock, names)
    edges = []
    inputs.subscribe(lambda name, active, ts: edges.append((ts, name, active)))
    return clock, inputs, edges


def test_default_board_has_the_record_button():
    inputs = SimInputs(VirtualClock())
    assert inputs.names == ("record",)
    assert inputs.is_active("record") is False


def test_set_delivers_a_stamped_edge_to_every_subscriber():
    clock, inputs, edges = make_inputs()
    second = []
    inputs.subscribe(lambda *edge: second.append(edge))
    clock.advance(1_500)
    assert inputs.set("record", True) is True
    assert inputs.is_active("record")
    assert edges == [(1_500, "record", True)]
    assert second == [("record", True, 1_500)]
    assert inputs.set("record", True) is False  # no level change, no edge
    assert len(edges) == 1
    clock.advance(10)
    inputs.release("record")
    assert edges[-1] == (1_510, "record", False)
    assert inputs.history == edges


def test_unknown_input_is_a_clear_key_error():
    _, inputs, _ = make_inputs()
    with pytest.raises(KeyError, match="no input named 'trigger'.*record, holster"):
        inputs.set("trigger", True)
    with pytest.raises(KeyError):
        inputs.is_active("trigger")
    with pytest.raises(KeyError):
        inputs.bounce("trigger", True)


def test_bounce_chatters_on_the_clock_and_ends_in_the_final_state():
    clock, inputs, edges = make_inputs()
    clock.advance(100)
    last_us = inputs.bounce("record", True, edges=5, spacing_us=2_000)
    assert last_us == 100 + 8_000
    assert edges == []  # nothing happens until time passes
    clock.advance(10_000)
    assert edges == [
        (100, "record", True),
        (2_100, "record", False),
        (4_100, "record", True),
        (6_100, "record", False),
        (8_100, "record", True),
    ]
    assert inputs.is_active("record")


def test_bounce_default_is_on_off_on_and_release_bounce_works():
    clock, inputs, edges = make_inputs()
    inputs.bounce("holster", True)
    clock.advance(5_000)
    assert [a for _, _, a in edges] == [True, False, True]
    inputs.bounce("holster", False, edges=3, spacing_us=500)
    clock.advance(5_000)
    assert [a for _, _, a in edges[3:]] == [False, True, False]
    assert not inputs.is_active("holster")


def test_bounce_parity_must_fit_the_current_level():
    _, inputs, _ = make_inputs()
    with pytest.raises(ValueError, match="odd"):
        inputs.bounce("record", True, edges=2)
    with pytest.raises(ValueError, match="even"):
        inputs.bounce("record", False, edges=3)
    with pytest.raises(ValueError):
        inputs.bounce("record", True, edges=0)


def test_indicators_keep_state_and_a_timed_history():
    clock = VirtualClock(start_monotonic_us=0)
    ind = SimIndicators(clock)
    assert ind.led_state == {LED_RECORD: False, LED_STATUS: False}
    clock.advance(1_000)
    ind.set_led(LED_RECORD, True)
    ind.vibrate(200)
    ind.beep(2_000, 100)
    assert ind.led_state[LED_RECORD] is True
    assert ind.history == [
        (1_000, "led", (LED_RECORD, True)),
        (1_000, "vibrate", (200,)),
        (1_000, "beep", (2_000, 100)),
    ]
    assert ind.is_vibrating() and ind.is_beeping()
    clock.advance(100_000)
    assert ind.is_vibrating() and not ind.is_beeping()
    clock.advance(100_000)
    assert not ind.is_vibrating()
    assert ind.events("beep") == [(1_000, (2_000, 100))]
    with pytest.raises(KeyError):
        ind.set_led("blue", True)


def test_battery_drains_with_clock_time_and_charges():
    clock = VirtualClock(start_monotonic_us=0)
    battery = SimBattery(clock, level_pct=50.0, drain_pct_per_hour=10.0)
    assert battery.level_pct() == 50.0
    assert 3.7 < battery.voltage_v() < 3.9
    clock.advance(3_600_000_000)  # one hour
    assert battery.level_pct() == pytest.approx(40.0)
    battery.set_charging(True)
    assert battery.is_charging()
    clock.advance(1_800_000_000)
    assert battery.level_pct() == pytest.approx(65.0)  # +50 %/h for half an hour
    battery.set_charging(False)
    battery.set_level(3.0)
    clock.advance(3_600_000_000)
    assert battery.level_pct() == 0.0  # clamped, never negative
    assert battery.voltage_v() == pytest.approx(3.30)
    battery.set_voltage(3.1)
    assert battery.voltage_v() == 3.1
    battery.set_voltage(None)
    assert battery.voltage_v() == pytest.approx(3.30)
