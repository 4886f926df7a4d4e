"""Battery / power-board interface."""
from __future__ import annotations

from abc import ABC, abstractmethod


class Battery(ABC):
    @abstractmethod
    def level_pct(self) -> float: ...

    @abstractmethod
    def voltage_v(self) -> float: ...

    @abstractmethod
    def is_charging(self) -> bool: ...
