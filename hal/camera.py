"""Camera interface: a source of encoded H.264 access units."""
from __future__ import annotations

from abc import ABC, abstractmethod

from hal.media import PacketSink, VideoFormat


class Camera(ABC):
    """Delivers every encoded frame to one sink, in capture order.

    The sink is called on the camera's own thread (picamera2's encoder thread on a
    Pi, the clock's thread in the simulator); it must only append to memory.
    """

    @property
    @abstractmethod
    def video_format(self) -> VideoFormat: ...

    @abstractmethod
    def start(self, sink: PacketSink) -> None:
        """Begin delivering packets to `sink`. Frames start with a keyframe."""

    @abstractmethod
    def stop(self) -> None:
        """Stop delivering packets. Safe to call twice."""
