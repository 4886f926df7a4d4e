"""The segment writer's health, as other threads read it (FLT-5).

Updated by the writer thread, read by a watchdog: all under one lock. No clock is
read here either: times come from the items the writer handles.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class DurableMark:
    """What one checkpoint of an open event made durable (write and sync returned), for
    listeners that measure activation latency (tools/bench). Monotonic µs throughout."""
    event_id: str
    seq: int
    activation_monotonic_us: int
    video_end_us: int | None      # end of the newest durable video frame of the event
    audio_end_us: int | None
    pre_event_durable: bool       # every packet the activation took from the buffer is durable


class WriterHealth:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._committed: tuple[int | None, int | None] = (None, None)
        self._progress = 0
        self._busy_since: int | None = None

    # -- writer thread --------------------------------------------------------------
    def begin(self, item_time_us: int | None) -> None:
        with self._lock:
            self._busy_since = item_time_us

    def finish(self) -> None:
        with self._lock:
            self._busy_since = None
            self._progress += 1

    def set_committed(self, video_end_us: int | None, audio_end_us: int | None) -> None:
        """Newest durable ends; a None keeps the track's previous value (a new segment's
        muxer has delivered nothing yet, but what the last one did is still on the card)."""
        with self._lock:
            old_video, old_audio = self._committed
            self._committed = (old_video if video_end_us is None else video_end_us,
                               old_audio if audio_end_us is None else audio_end_us)

    def clear_committed(self) -> None:
        """No event open (or it just ended): nothing of an open event is durable."""
        with self._lock:
            self._committed = (None, None)

    # -- any thread -----------------------------------------------------------------
    def committed(self) -> tuple[int | None, int | None]:
        with self._lock:
            return self._committed

    def progress(self) -> int:
        with self._lock:
            return self._progress

    def busy_since(self) -> int | None:
        with self._lock:
            return self._busy_since
