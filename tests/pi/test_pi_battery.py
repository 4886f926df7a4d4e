"""PiBattery on a temporary directory laid out like /sys/class/power_supply/<name>/."""
from __future__ import annotations

import pytest

from hal.pi import BackendUnavailable
from hal.pi.battery import BatteryReadError, PiBattery


def write_supply(directory, **attributes: str) -> None:
    for name, value in attributes.items():
        (directory / name).write_text(value + "\n")  # sysfs values end with a newline


@pytest.fixture
def supply(tmp_path):
    write_supply(tmp_path, capacity="87", voltage_now="3912000", status="Discharging")
    return tmp_path


def test_reads_level_voltage_and_status(supply):
    battery = PiBattery(str(supply))
    assert battery.level_pct() == 87.0
    assert battery.voltage_v() == pytest.approx(3.912)   # sysfs voltage_now is in µV
    assert battery.is_charging() is False


def test_values_are_read_fresh_every_time(supply):
    battery = PiBattery(str(supply))
    write_supply(supply, capacity="12", status="Charging")
    assert battery.level_pct() == 12.0
    assert battery.is_charging() is True


@pytest.mark.parametrize("status, charging", [
    ("Charging", True), ("Full", True), ("Discharging", False), ("Not charging", False), ("Unknown", False)])
def test_status_values_of_the_kernel_abi(supply, status, charging):
    write_supply(supply, status=status)
    assert PiBattery(str(supply)).is_charging() is charging


def test_missing_attributes_fail_at_construction_naming_them(tmp_path):
    write_supply(tmp_path, capacity="50")
    with pytest.raises(BackendUnavailable, match="lacks voltage_now, status"):
        PiBattery(str(tmp_path))


def test_garbage_is_an_error_not_a_guess(supply):
    battery = PiBattery(str(supply))
    write_supply(supply, capacity="n/a", status="Exploding")
    with pytest.raises(BatteryReadError, match="capacity: expected an integer, got 'n/a'"):
        battery.level_pct()
    with pytest.raises(BatteryReadError, match="unknown value 'Exploding'"):
        battery.is_charging()
    write_supply(supply, capacity="140")
    with pytest.raises(BatteryReadError, match="out of range"):
        battery.level_pct()


def test_an_attribute_that_vanishes_is_a_read_error(supply):
    battery = PiBattery(str(supply))
    (supply / "voltage_now").unlink()     # e.g. the gauge driver unbound
    with pytest.raises(BatteryReadError, match="cannot read .*voltage_now"):
        battery.voltage_v()
