"""The announced-recording cue (ANN-1…4, docs/announce.md): a chime, then the spoken
notice in each configured language, in order, each logged as signed metadata and an
audit entry (time, language, asset SHA-256).

Interface used by the recorder (device/recorder.py); the recorder calls these with
its lock held, so they only schedule timers, play (non-blocking) and enqueue.

Each clip of a cue (the chime, then one clip per language) is handed to the speaker
by a timer at the moment the previous one ends, and its record is written then: so
a stop drops the languages not yet begun (the recording they would announce has
ended), and every record dates a clip that really started. A cue asked for while
another still plays (a wearer's replay) starts after it.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable

from device.announce_assets import CHIME_RATE_HZ, AnnouncementAssets, Asset, chime, load_assets
from device.config import ConfigError, Policy
from device.writer import AuditEntry, Metadata
from hal.clock import Clock, Timer
from hal.speaker import Speaker

log = logging.getLogger(__name__)

RECORD_TYPE = "announcement"   # both the metadata record and the audit entry (docs/format.md)
CHIME_TAG = "chime"            # the speaker trace's name for the chime (it is not an asset)


class Announcer:
    def __init__(self, clock: Clock, speaker: Speaker, put: Callable[[object], None], policy: Policy,
                 assets: AnnouncementAssets | None = None, on_cue: Callable[[], None] | None = None) -> None:
        """`on_cue`: called as each cue's chime starts (the wearer's "announcement" pattern)."""
        self._clock, self._speaker, self._put, self._policy = clock, speaker, put, policy
        self._on_cue = on_cue
        languages = list(policy.announce_languages)
        self._assets = load_assets(None, languages) if assets is None else assets
        missing = [lang for lang in languages if self._assets.get(lang) is None]
        if missing:
            raise ConfigError(f"no announcement audio loaded for {', '.join(missing)}")
        self._cue_assets: list[Asset] = [self._assets.get(lang) for lang in languages]
        self._chime = chime()
        self._chime_us = len(self._chime) * 1_000_000 // CHIME_RATE_HZ
        self._lock = threading.Lock()   # timers run on the clock's thread, the rest under the recorder's lock
        self._timers: list[Timer] = []
        self._deferred: Timer | None = None
        self._deferred_pending = False  # a deferred cue is due and not yet stood in for
        # Where the last clip handed to the speaker ends (the speaker queues behind it),
        # and where the last clip planned so far ends (a new cue starts there).
        self._playing_end_us = 0
        self._planned_end_us = 0
        self._generation = 0            # bumped by a stop: timers of an older event do nothing

    # -- the recorder's interface ------------------------------------------------
    def event_started(self, event_id: str, now_us: int, utc_us: int) -> None:
        """An event began: play (or defer, or log the suppression of) the cue."""
        with self._lock:
            mode = self._policy.announce
            if mode == "suppressed":
                fields = {"status": "suppressed", "cause": "event_start",
                          "reason": self._policy.announce_suppress_reason}
                self._log(event_id, now_us, utc_us, fields)
            elif mode == "deferred":
                at_us = now_us + round(self._policy.announce_defer_s * 1_000_000)
                generation = self._generation
                self._deferred_pending = True
                self._deferred = self._at(at_us, lambda: self._deferred_due(generation, event_id))
            else:
                self._cue(event_id, "event_start")

    def replay(self, event_id: str, now_us: int, utc_us: int) -> None:
        """The wearer asked for the notice again (ANN-4). An explicit request always plays,
        whatever the policy for the start cue: the wearer judged it safe to speak. It
        also stands in for a deferred cue not yet played."""
        with self._lock:
            self._deferred_pending = False
            if self._deferred is not None:
                self._deferred.cancel()
                self._deferred = None
            self._cue(event_id, "wearer")

    def event_stopped(self) -> None:
        """The event ended: a deferred cue not yet played is dropped, and so are the
        languages of a cue that have not started (a clip already playing finishes)."""
        with self._lock:
            self._generation += 1
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
            self._deferred, self._deferred_pending = None, False
            self._planned_end_us = self._playing_end_us

    # -- internals (self._lock held) ----------------------------------------------
    def _deferred_due(self, generation: int, event_id: str) -> None:
        if generation == self._generation and self._deferred_pending:
            self._deferred, self._deferred_pending = None, False
            self._cue(event_id, "deferred")

    def _cue(self, event_id: str, cause: str) -> None:
        """Plan the chime and each language back to back, after anything still playing."""
        now_us = self._clock.monotonic_us()
        if self._planned_end_us <= now_us:
            # Every clip timer of earlier cues has fired: forget them (a long event with
            # many replays must not collect them); only a pending deferred cue remains.
            self._timers = [t for t in self._timers if t is self._deferred]
        start_us = max(now_us, self._planned_end_us)
        generation = self._generation
        self._at(start_us, lambda: self._play_chime(generation))
        at_us = start_us + self._chime_us
        for asset in self._cue_assets:
            self._at(at_us, lambda a=asset: self._play_language(generation, event_id, cause, a))
            at_us += asset.duration_us
        self._planned_end_us = at_us

    def _at(self, at_us: int, action: Callable[[], None]) -> Timer | None:
        """Run `action` at `at_us`: at once if that time has come (the lock is held then)."""
        if at_us <= self._clock.monotonic_us():
            action()
            return None
        timer = self._clock.call_at(at_us, lambda: self._fire(action))
        self._timers.append(timer)
        return timer

    def _fire(self, action: Callable[[], None]) -> None:
        with self._lock:
            action()

    def _play_chime(self, generation: int) -> None:
        if generation == self._generation:
            if self._start_clip(self._chime, CHIME_RATE_HZ, CHIME_TAG, self._chime_us) is not None \
                    and self._on_cue is not None:
                self._on_cue()   # the wearer feels that the people around are being told

    def _play_language(self, generation: int, event_id: str, cause: str, asset: Asset) -> None:
        if generation != self._generation:
            return   # the event stopped before this language began
        start_us = self._start_clip(asset.samples, asset.sample_rate_hz, asset.sha256, asset.duration_us)
        if start_us is None:
            return   # the speaker refused it: nothing was played, so nothing is claimed
        utc_us = self._clock.wall_time_us() + (start_us - self._clock.monotonic_us())
        self._log(event_id, start_us, utc_us, {
            "status": "played", "cause": cause, "language": asset.language,
            "asset_sha256": asset.sha256, "duration_us": asset.duration_us})

    def _start_clip(self, samples, rate_hz: int, tag: str, duration_us: int) -> int | None:
        """Hand a clip to the speaker; returns when it starts (behind what still plays),
        or None if the speaker failed (logged; recording must go on without it)."""
        start_us = max(self._clock.monotonic_us(), self._playing_end_us)
        try:
            self._speaker.play(samples, rate_hz, tag=tag)
        except Exception:  # noqa: BLE001 - a broken speaker must not stop the recording
            log.exception("the speaker could not play %s", tag)
            return None
        self._playing_end_us = start_us + duration_us
        return start_us

    def _log(self, event_id: str, monotonic_us: int, utc_us: int, fields: dict) -> None:
        self._put(Metadata(RECORD_TYPE, monotonic_us, dict(fields)))
        self._put(AuditEntry(RECORD_TYPE, monotonic_us, utc_us, {"event_id": event_id, **fields}))
