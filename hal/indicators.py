"""Wearer-facing indicators: LEDs, vibration motor, buzzer."""
from __future__ import annotations

from abc import ABC, abstractmethod

# LED names every board provides.
LED_RECORD = "record"   # red: media is reaching storage
LED_STATUS = "status"   # green: powered and buffering


class Indicators(ABC):
    @abstractmethod
    def set_led(self, name: str, on: bool) -> None: ...

    @abstractmethod
    def vibrate(self, duration_ms: int) -> None:
        """Start a vibration pulse and return at once."""

    @abstractmethod
    def beep(self, frequency_hz: int, duration_ms: int) -> None:
        """Start a buzzer tone and return at once."""
