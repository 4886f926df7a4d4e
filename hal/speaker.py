"""Speaker interface: plays PCM without blocking the caller."""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Speaker(ABC):
    @abstractmethod
    def play(self, samples: np.ndarray, sample_rate_hz: int) -> None:
        """Queue mono int16 samples for playback and return at once."""

    @abstractmethod
    def is_playing(self) -> bool: ...
