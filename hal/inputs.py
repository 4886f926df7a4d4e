"""Digital inputs: the record button and trigger lines (holster, light bar ...).

Edges are delivered raw, with contact bounce: debouncing is the firmware's job
(ACT-1), so it behaves the same on every backend and under test.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable

# (input name, active, monotonic timestamp in µs)
EdgeCallback = Callable[[str, bool, int], None]

RECORD_BUTTON = "record"


class Inputs(ABC):
    @property
    @abstractmethod
    def names(self) -> tuple[str, ...]:
        """Every input this board has; the record button is called "record"."""

    @abstractmethod
    def subscribe(self, callback: EdgeCallback) -> None:
        """Call `callback` on every raw edge of every input."""

    @abstractmethod
    def is_active(self, name: str) -> bool: ...
