"""Battery / power-board interface."""
from __future__ import annotations

from abc import ABC, abstractmethod


class Battery(ABC):
    # False for a board with no fuel gauge (pi.toml battery = "none"): nothing is read,
    # and the firmware says at boot that battery warnings are off.
    present: bool = True

    @abstractmethod
    def level_pct(self) -> float: ...

    @abstractmethod
    def voltage_v(self) -> float: ...

    @abstractmethod
    def is_charging(self) -> bool: ...


class NoBattery(Battery):
    """A board powered without a fuel gauge (mains, a power bank): no level is invented."""

    present = False

    def level_pct(self) -> float:
        raise RuntimeError("this board has no battery gauge (battery = \"none\")")

    def voltage_v(self) -> float:
        raise RuntimeError("this board has no battery gauge (battery = \"none\")")

    def is_charging(self) -> bool:
        raise RuntimeError("this board has no battery gauge (battery = \"none\")")
