"""Battery: what the low-battery warnings and the critical shutdown rely on (FLT-3).

A gauge is read fresh on every call (the firmware decides how often to ask); a board
without one says so (present = False) and never invents a level.
"""
from __future__ import annotations

import math

import pytest


def test_a_gauged_battery_is_present(battery_rig):
    assert battery_rig.battery.present is True


def test_level_voltage_and_charging_read_what_the_cell_says(battery_rig):
    rig = battery_rig
    rig.set_cell(level_pct=42, voltage_v=3.78, charging=False)
    level = rig.battery.level_pct()
    assert isinstance(level, float) and level == 42.0
    assert rig.battery.voltage_v() == pytest.approx(3.78, abs=1e-6)
    assert rig.battery.is_charging() is False


def test_every_call_reads_fresh(battery_rig):
    rig = battery_rig
    rig.set_cell(level_pct=90, voltage_v=4.05, charging=False)
    assert rig.battery.level_pct() == 90.0
    rig.set_cell(level_pct=7, voltage_v=3.52, charging=True)   # plugged in on a nearly flat cell
    assert rig.battery.level_pct() == 7.0
    assert rig.battery.voltage_v() == pytest.approx(3.52, abs=1e-6)
    assert rig.battery.is_charging() is True


@pytest.mark.parametrize("level_pct", [0, 1, 50, 99, 100])
def test_the_level_stays_within_0_to_100_percent(battery_rig, level_pct):
    rig = battery_rig
    rig.set_cell(level_pct=level_pct, voltage_v=3.7, charging=False)
    level = rig.battery.level_pct()
    assert math.isfinite(level) and 0.0 <= level <= 100.0 and level == float(level_pct)


def test_a_board_without_a_gauge_says_so(gaugeless_battery):
    assert gaugeless_battery.present is False


@pytest.mark.parametrize("read", ["level_pct", "voltage_v", "is_charging"])
def test_a_board_without_a_gauge_never_invents_a_reading(gaugeless_battery, read):
    # One clear line, not a made-up 100 % that would hide a dying power bank.
    with pytest.raises(RuntimeError, match=r"no battery gauge \(battery = \"none\"\)") as raised:
        getattr(gaugeless_battery, read)()
    assert "\n" not in str(raised.value)
