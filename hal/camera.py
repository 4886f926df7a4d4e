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
        """Stop delivering packets. Safe to call twice. Returns within a bounded time
        even when the camera stack is wedged (then `stuck()` turns True)."""

    def stuck(self) -> bool:
        """A stop() could not finish: threads of an old session are still blocked inside
        the camera stack, so this process cannot bring the camera back; only a restart
        of the process can (the systemd watchdog stops being fed, docs/pi.md)."""
        return False
