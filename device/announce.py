"""The announced-recording cue (ANN-1…4, docs/announce.md): a chime, then the spoken
notice in each configured language, in order, each logged as signed metadata and an
audit entry (time, language, asset SHA-256).

Interface used by the recorder (device/recorder.py); the recorder calls these with
its lock held, so they must only schedule, play (non-blocking) and enqueue.
"""
from __future__ import annotations

from typing import Callable

from device.config import Policy
from hal.clock import Clock
from hal.speaker import Speaker


class Announcer:
    def __init__(self, clock: Clock, speaker: Speaker, put: Callable[[object], None], policy: Policy,
                 assets: object = None) -> None:
        self._clock, self._speaker, self._put, self._policy, self._assets = clock, speaker, put, policy, assets

    def event_started(self, event_id: str, now_us: int, utc_us: int) -> None:
        """An event began: play (or defer, or log the suppression of) the cue."""

    def replay(self, event_id: str, now_us: int, utc_us: int) -> None:
        """The wearer asked for the notice again (ANN-4)."""

    def event_stopped(self) -> None:
        """The event ended: a deferred cue not yet played is dropped."""
