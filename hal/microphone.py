"""Microphone interface: a source of encoded AAC frames."""
from __future__ import annotations

from abc import ABC, abstractmethod

from hal.media import AudioFormat, PacketSink


class Microphone(ABC):
    """Delivers AAC-LC frames (FFmpeg's native encoder, so the stream's
    AudioSpecificConfig follows from `audio_format` alone) to one sink."""

    @property
    @abstractmethod
    def audio_format(self) -> AudioFormat: ...

    @abstractmethod
    def start(self, sink: PacketSink) -> None: ...

    @abstractmethod
    def stop(self) -> None: ...
