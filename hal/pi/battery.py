"""PiBattery: a Linux power_supply sysfs directory (HAL-2).

Power boards with a kernel fuel-gauge driver (MAX17048/max17040_battery,
BQ27xxx, the CM4/CM5 IO-board PMICs with a gauge ...) appear as
/sys/class/power_supply/<name>/ with, per the kernel's sysfs ABI:
  capacity     percent, 0-100
  voltage_now  µV
  status       "Charging", "Discharging", "Not charging", "Full" or "Unknown"
Every value is read fresh: the fuel gauge is the source of truth and the
firmware decides how often to ask (FLT-3).
"""
from __future__ import annotations

import os

from hal.battery import Battery
from hal.pi import BackendUnavailable

_REQUIRED_FILES = ("capacity", "voltage_now", "status")
# "Full" is reported only while external power is connected (the charger has
# stopped because the cell is full), so for the firmware's purpose - "are we
# on external power, is running down a concern" - it counts as charging.
_CHARGING_STATUSES = frozenset({"Charging", "Full"})
_KNOWN_STATUSES = _CHARGING_STATUSES | {"Discharging", "Not charging", "Unknown"}


class BatteryReadError(OSError):
    """A power_supply attribute could not be read or parsed. Never guessed around (FLT-3)."""


class PiBattery(Battery):
    def __init__(self, sysfs_dir: str) -> None:
        self.sysfs_dir = sysfs_dir
        # Check at construction so a wrong path fails at boot, not at the
        # first low-battery check an hour into a shift.
        missing = [name for name in _REQUIRED_FILES if not os.path.isfile(os.path.join(sysfs_dir, name))]
        if missing:
            raise BackendUnavailable(
                f"battery: {sysfs_dir} lacks {', '.join(missing)}; set battery_sysfs_dir to the "
                "power board's directory under /sys/class/power_supply/")

    def _read(self, name: str) -> str:
        path = os.path.join(self.sysfs_dir, name)
        try:
            with open(path, encoding="ascii") as f:
                return f.read().strip()
        except (OSError, UnicodeDecodeError) as exc:  # EIO/ENODATA: the gauge did not answer on I2C
            raise BatteryReadError(getattr(exc, "errno", None), f"cannot read {path}: {exc}") from exc

    def _read_int(self, name: str) -> int:
        text = self._read(name)
        try:
            return int(text)
        except ValueError:
            raise BatteryReadError(None, f"{os.path.join(self.sysfs_dir, name)}: expected an integer, "
                                         f"got {text!r}") from None

    def level_pct(self) -> float:
        level = self._read_int("capacity")
        if not 0 <= level <= 100:
            raise BatteryReadError(None, f"{self.sysfs_dir}/capacity out of range: {level}")
        return float(level)

    def voltage_v(self) -> float:
        return self._read_int("voltage_now") / 1_000_000  # sysfs gives µV

    def is_charging(self) -> bool:
        status = self._read("status")
        if status not in _KNOWN_STATUSES:
            raise BatteryReadError(None, f"{self.sysfs_dir}/status: unknown value {status!r}")
        return status in _CHARGING_STATUSES
