"""Speaker interface: plays PCM without blocking the caller."""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Speaker(ABC):
    @abstractmethod
    def play(self, samples: np.ndarray, sample_rate_hz: int, tag: str | None = None) -> None:
        """Queue mono int16 samples for playback and return at once. `tag` names what
        is played (an announcement asset's SHA-256), for a simulator's trace."""

    @abstractmethod
    def is_playing(self) -> bool: ...
