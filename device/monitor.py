"""The health monitor: what the wearer is told is what the card holds (IND-1, FLT-1…5).

One clock timer, every TICK_US, looks at facts and never at intentions:
- when the newest video and audio frames arrived (the recorder reports each packet),
- how far media is durable on the card (the writer's checkpoints),
- whether the writer is stuck on one item, or its thread has died,
- the battery level and its measured drain rate, the card's free space,
- the wall clock against the monotonic clock.

From them it keeps the record LED honest, alerts the wearer with the patterns of
device/patterns.py, logs signed entries (media gaps, clock steps, alerts, watchdog
restarts), reopens a lost camera or microphone with back-off, and shuts the camera
down cleanly when the battery reaches its critical level.

On a virtual clock time does not wait for the writer thread, so before judging
commits each tick lets the writer catch up (bounded in real time, so a stalled
writer is still seen as stalled).
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Callable

from device.config import FIRMWARE_BUILD_UTC_US, Policy
from device.storage_reserve import reserve_bytes
from device.monitor_battery import BatteryEstimate
from device.patterns import PatternPlayer
from device.states import State
from device.writer import AuditEntry, Metadata
from hal.board import Board
from hal.indicators import LED_RECORD
from hal.media import MediaPacket

log = logging.getLogger(__name__)

TICK_US = 100_000
# Commits every flush interval; the LED stays on while the newest durable video is at
# most this much older than that (writer latency, the fragment being cut).
COMMIT_SLACK_US = 500_000
STALL_MARGIN_US = 100_000
# A wall-clock step smaller than this is drift being corrected, not a jump (FLT-4).
CLOCK_STEP_US = 1_000_000
STORAGE_CHECK_US = 10_000_000
FIRST_RETRY_US = 500_000
# Reminders of a lasting loss, so a wearer who missed the first alert still learns.
REPEAT_LOSS_ALERT_US = 30_000_000
# How long (real time) a tick on a virtual clock waits for the writer to catch up.
SETTLE_TIMEOUT_S = 2.0


class _Track:
    """Arrival of one kind of media, for loss detection and the gap's exact times."""

    def __init__(self, kind: str, pattern: str) -> None:
        self.kind, self.lost_pattern = kind, pattern
        self.back_pattern = "camera_back" if kind == "video" else "mic_back"
        self.last_end_us: int | None = None     # end of the newest frame
        self.lost_since_us: int | None = None   # gap start, while lost
        self.resumed_us: int | None = None      # first frame after the gap
        self.retry_us = 0
        self.backoff_us = FIRST_RETRY_US
        self.attempts = 0
        self.alerted_us = 0


class Monitor:
    def __init__(self, board: Board, policy: Policy, recorder, writer, player: PatternPlayer,
                 on_battery_critical: Callable[[], None]) -> None:
        self._board, self._clock, self._policy = board, board.clock, policy
        self._recorder, self._writer, self._player = recorder, writer, player
        self._on_battery_critical = on_battery_critical
        self._lock = threading.Lock()
        self._tracks = {"video": _Track("video", "camera_lost"), "audio": _Track("audio", "mic_lost")}
        self._timer = None
        self._stopped = False
        self._offset_us: int | None = None     # wall - monotonic at the last tick
        self._clock_unset = False
        self._stall_alerted = False
        self._writer_restarts = 0
        self._stuck_at_progress: int | None = None
        self._failed_checks: set[str] = set()
        self._storage_fault = False
        self._reminder_due_us: int | None = None
        self._storage_next_us = 0
        self._storage_warned = False
        self._battery = BatteryEstimate(policy)
        self._battery_warned = False
        self._battery_minutes: float | None = None   # of recording left, for pod beacons
        self._critical = False
        self._led_on = False
        self._event_start_us: int | None = None
        video, audio = board.camera.video_format, board.microphone.audio_format
        self._bytes_per_s = (video.bitrate_bps + (audio.bitrate_bps if audio else 0)) / 8
        self._reserve_bytes = reserve_bytes(video, policy)
        self.alerts: deque = deque(maxlen=256)   # (monotonic_us, name): what the wearer was told
        self.last_tick_us: int | None = None      # when the checks last ran (device/health.py)

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        now_us = self._clock.monotonic_us()
        self.last_tick_us = now_us   # the first tick is one period away: not yet "stopped running"
        for track in self._tracks.values():
            track.last_end_us = now_us   # a part that never delivers is lost after the timeout
        self._offset_us = self._clock.wall_time_us() - now_us
        if self._clock.wall_time_us() < FIRMWARE_BUILD_UTC_US:
            self._clock_unset = True
            self._alert("clock_unset", "clock_unset", clock_utc_us=self._clock.wall_time_us(),
                        build_utc_us=FIRMWARE_BUILD_UTC_US)
        self._schedule(now_us + TICK_US)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _schedule(self, at_us: int) -> None:
        with self._lock:
            if not self._stopped:
                self._timer = self._clock.call_at(at_us, self._tick)

    # -- facts reported by the recorder (camera/microphone threads, its lock held) ----
    def on_packet(self, packet: MediaPacket) -> None:
        track = self._tracks.get(packet.kind)
        if track is None:
            return
        # The writer resumes video at a keyframe (frames before it cannot be decoded), so
        # the gap ends there.
        if track.lost_since_us is not None and track.resumed_us is None \
                and (packet.kind != "video" or packet.keyframe):
            track.resumed_us = packet.timestamp_us
        end_us = packet.timestamp_us + packet.duration_us
        if track.last_end_us is None or end_us > track.last_end_us:
            track.last_end_us = end_us

    def on_committed(self, media_monotonic_us: int) -> None:
        """Writer thread: video up to this frame is durable; light the LED at once
        (what is durable is read from the writer itself, SegmentWriter.committed_us)."""
        # A late commit of old frames (the writer catching up after a stall) must not
        # light the LED: only fresh media does.
        with self._lock:
            self._storage_fault = False   # the card takes media again
        if self._media_fresh(self._clock.monotonic_us()):
            self._set_led(True)

    def set_record_led(self, on: bool) -> None:
        """The recorder's own changes (a stop turns it off at once)."""
        self._set_led(on)

    def note_storage_fault(self) -> None:
        """The writer ended an event on a storage fault or a full card: a fault until
        media reaches the card again (the status gesture says so)."""
        with self._lock:
            self._storage_fault = True

    def event_started(self, now_us: int) -> None:
        """Recorder lock held, right after the EventStart was queued."""
        self._event_start_us = now_us
        for track in self._tracks.values():
            if track.lost_since_us is not None:
                # The loss began before this event: its own record says so, so the
                # event's metadata names the gap it starts in.
                self._writer.put(Metadata("media_gap", now_us, {
                    "track": track.kind, "phase": "lost", "gap_start_monotonic_us": track.lost_since_us}))
        interval_us = round(self._policy.reminder_interval_s * 1e6)
        self._reminder_due_us = now_us + interval_us if interval_us else None

    def event_stopped(self) -> None:
        self._reminder_due_us = None
        self._event_start_us = None
        self._stall_alerted = False

    # -- what the status gesture reports (IND-2) ---------------------------------------
    def faults(self) -> list[str]:
        found = [t.lost_pattern for t in self._tracks.values() if t.lost_since_us is not None]
        if self._stall_alerted:
            found.append("commit_stall")
        if self._storage_fault:
            found.append("storage")
        if self._clock_unset:
            found.append("clock_unset")
        return found

    def pod_status(self) -> dict:
        """What a pod beacon carries (docs/link.md §3.1): the same facts the camera shows."""
        now_us = self._clock.monotonic_us()
        newest = max((t for t in self._writer.committed_us() if t is not None), default=None)
        recording = self._recorder.state is State.RECORDING
        faults = self.faults()
        faults += [name for name, on in (("battery_low", self._battery_warned), ("storage_low", self._storage_warned))
                   if on]
        minutes = self._battery_minutes
        # No measured drain reads as infinite minutes (mains power, a stuck gauge): unknown.
        if minutes is not None and not (0 <= minutes < 65535):
            minutes = None
        return {"state": self._recorder.state.value if recording or self._recorder.state is State.BUFFERING
                else "off",
                "record_led": self._led_on,
                "committed_age_ms": None if newest is None or not recording else max(0, (now_us - newest) // 1000),
                "faults": faults,
                "battery_min": None if minutes is None else int(minutes)}

    def storage_minutes_left(self, free_bytes: int) -> float:
        """Minutes of recording at the configured rates that `free_bytes` holds, beyond
        the reserve that closes a segment cleanly (FLT-2)."""
        return max(0, free_bytes - self._reserve_bytes) / self._bytes_per_s / 60

    def battery_minutes_left(self) -> float | None:
        """The newest estimate of recording minutes left on the battery (None: unknown)."""
        return self._battery_minutes

    def commit_age_us(self, now_us: int) -> int | None:
        """While recording: how long since the newest durable media (or the activation, before
        the first commit); None when no event is open."""
        start_us = self._event_start_us
        if self._recorder.state is not State.RECORDING or start_us is None:
            return None
        newest = max((t for t in self._writer.committed_us() if t is not None), default=start_us)
        return now_us - max(newest, start_us)

    def committing(self) -> bool:
        """Media committed to the card within the last flush interval (and slack)."""
        return self._media_fresh(self._clock.monotonic_us())

    # -- the tick ----------------------------------------------------------------------
    def _tick(self) -> None:
        with self._lock:
            self._timer = None
            if self._stopped:
                return
        if self._clock.virtual:
            self._settle()
        now_us = self._clock.monotonic_us()
        self.last_tick_us = now_us
        for check in (self._check_clock, self._check_tracks, self._check_commits, self._check_writer_thread,
                      self._check_reminder, self._check_storage, self._check_battery):
            try:
                check(now_us)
            except Exception:  # noqa: BLE001 - the watchdog must outlive its own bugs and a bad part
                # Once per check: a fuel gauge that cannot be read must not flood the log.
                if check.__name__ not in self._failed_checks:
                    self._failed_checks.add(check.__name__)
                    log.exception("health check %s failed", check.__name__)
        if not self._critical:
            self._schedule(now_us + TICK_US)

    def _settle(self) -> None:
        # A writer found stuck is not waited for again until it makes progress: the
        # simulation goes on, and the stall is judged in simulated time like any other.
        progress = self._writer.progress()
        if progress == self._stuck_at_progress:
            return
        if not self._writer.wait_idle(SETTLE_TIMEOUT_S):
            self._stuck_at_progress = progress

    def _check_clock(self, now_us: int) -> None:
        utc_us = self._clock.wall_time_us()
        offset_us = utc_us - now_us
        step_us = offset_us - self._offset_us
        if abs(step_us) >= CLOCK_STEP_US:
            before_utc_us = utc_us - step_us
            fields = {"step_us": step_us, "before_utc_us": before_utc_us, "after_utc_us": utc_us}
            self._writer.put(Metadata("time_sync", now_us, dict(fields)))
            self._writer.put(AuditEntry("time_sync", now_us, utc_us, fields))
            unset = utc_us < FIRMWARE_BUILD_UTC_US
            if unset and not self._clock_unset:
                self._alert("clock_unset", "clock_unset", clock_utc_us=utc_us, build_utc_us=FIRMWARE_BUILD_UTC_US)
            self._clock_unset = unset
        self._offset_us = offset_us

    def _check_tracks(self, now_us: int) -> None:
        timeout_us = round(self._policy.camera_timeout_s * 1e6)
        for track in self._tracks.values():
            if track.lost_since_us is None:
                if now_us - track.last_end_us > timeout_us:
                    self._lost(track, now_us)
            elif track.resumed_us is not None:
                self._back(track, now_us)
            else:
                if now_us - track.alerted_us >= REPEAT_LOSS_ALERT_US:
                    track.alerted_us = now_us
                    self._play(track.lost_pattern)
                if now_us >= track.retry_us:
                    self._reopen(track, now_us)

    def _lost(self, track: _Track, now_us: int) -> None:
        track.lost_since_us, track.resumed_us = track.last_end_us, None
        track.attempts, track.backoff_us = 0, FIRST_RETRY_US
        track.retry_us = now_us + track.backoff_us
        track.alerted_us = now_us
        self._play(track.lost_pattern)
        self._gap_entry(track, "lost", now_us, gap_start_monotonic_us=track.lost_since_us)
        log.warning("%s lost: no frame since %d us", "camera" if track.kind == "video" else "microphone",
                    track.lost_since_us)

    def _back(self, track: _Track, now_us: int) -> None:
        self._gap_entry(track, "back", now_us, gap_start_monotonic_us=track.lost_since_us,
                        gap_end_monotonic_us=track.resumed_us)
        track.lost_since_us = track.resumed_us = None
        self._play(track.back_pattern)

    def _gap_entry(self, track: _Track, phase: str, now_us: int, **times: int) -> None:
        fields = {"track": track.kind, "phase": phase, **times}
        self._writer.put(Metadata("media_gap", now_us, dict(fields)))
        self._writer.put(AuditEntry("media_gap", now_us, self._clock.wall_time_us(),
                                    dict(fields, event_id=self._recorder.event_id)))

    def _reopen(self, track: _Track, now_us: int) -> None:
        """FLT-1: stop and start the part again; back off so a dead cord costs nothing."""
        track.attempts += 1
        track.backoff_us = min(track.backoff_us * 2, round(self._policy.camera_retry_max_s * 1e6))
        track.retry_us = now_us + track.backoff_us
        part = self._board.camera if track.kind == "video" else self._board.microphone
        name = "camera" if track.kind == "video" else "microphone"
        self._writer.put(AuditEntry("watchdog", now_us, self._clock.wall_time_us(),
                                    {"part": name, "action": "restart", "attempt": track.attempts}))
        try:
            part.stop()
            part.start(self._recorder.on_packet)
        except Exception as exc:  # noqa: BLE001 - a part that cannot open now may open later
            log.warning("reopening the %s failed (attempt %d): %s", name, track.attempts, exc)

    def _media_fresh(self, now_us: int) -> bool:
        """Some media (video or audio) durable on the card was captured within the last
        flush interval and slack: the people in front of the camera are being recorded."""
        newest = max((t for t in self._writer.committed_us() if t is not None), default=None)
        limit_us = round(self._policy.flush_interval_s * 1e6) + COMMIT_SLACK_US
        return newest is not None and now_us - newest <= limit_us

    def _check_commits(self, now_us: int) -> None:
        """IND-1: the record LED is lit by durable media, and a stall is alerted (also
        during a camera loss: then audio is what must keep reaching the card)."""
        if self._recorder.state is not State.RECORDING:
            self._set_led(False)
            return
        self._set_led(self._media_fresh(now_us))
        video_us, audio_us = self._writer.committed_us()
        newest = max((t for t in (video_us, audio_us) if t is not None), default=self._event_start_us)
        # The first commit carries the whole pre-event, so it may take longer to write:
        # the clock for a stall starts at the activation, whose first media is older.
        # The next commit is due a flush interval after the newest one; alert once it is
        # overdue by the slack (FLT-5/IND-1: within flush_interval_s + 1 s).
        limit_us = round(self._policy.flush_interval_s * 1e6) + COMMIT_SLACK_US + STALL_MARGIN_US
        stalled = newest is not None and now_us - max(newest, self._event_start_us or newest) > limit_us
        if stalled and not self._stall_alerted:
            self._stall_alerted = True
            self._alert("fault", "commit_stall", committed_monotonic_us=newest,
                        busy_since_us=self._writer.busy_since())
        elif not stalled:
            self._stall_alerted = False

    def _check_writer_thread(self, now_us: int) -> None:
        """FLT-5: a writer thread that died is started again on the same queue."""
        if not self._writer.alive() and self._writer.restart():
            self._writer_restarts += 1
            self._play("fault")
            self._writer.put(AuditEntry("watchdog", self._clock.monotonic_us(), self._clock.wall_time_us(),
                                        {"part": "writer", "action": "restart", "attempt": self._writer_restarts}))

    def _check_reminder(self, now_us: int) -> None:
        due = self._reminder_due_us
        if due is None or now_us < due or self._recorder.state is not State.RECORDING:
            return
        self._reminder_due_us = now_us + round(self._policy.reminder_interval_s * 1e6)
        if self._media_fresh(now_us):
            self._play("reminder")   # only a recording that is really reaching the card

    def _check_storage(self, now_us: int) -> None:
        if now_us < self._storage_next_us:
            return
        self._storage_next_us = now_us + STORAGE_CHECK_US
        try:
            free_bytes = self._board.storage.free_bytes()
        except OSError:
            return   # the writer reports storage faults; this is only a forecast
        minutes_left = self.storage_minutes_left(free_bytes)
        low = minutes_left <= self._policy.storage_warn_min
        if low and not self._storage_warned:
            self._alert("storage_low", "storage_low", free_bytes=free_bytes, minutes_left=round(minutes_left, 1))
        self._storage_warned = low

    def _check_battery(self, now_us: int) -> None:
        battery = self._board.battery
        if not battery.present:   # no gauge (battery = "none"): the boot entry said so
            return
        level_pct = battery.level_pct()
        charging = battery.is_charging()
        estimate = self._battery.update(now_us, level_pct, charging, self._recorder.state is State.RECORDING)
        if self._critical:
            return
        if not charging and level_pct <= self._policy.battery_critical_pct:
            self._critical = True
            self._alert("battery_critical", "battery_critical", level_pct=round(level_pct, 2))
            self._on_battery_critical()
            return
        minutes_left = estimate.recording_minutes_left
        self._battery_minutes = minutes_left
        low = not charging and minutes_left is not None and minutes_left <= self._policy.battery_warn_min
        if low and not self._battery_warned:
            self._alert("battery_low", "battery_low", level_pct=round(level_pct, 2),
                        minutes_left=round(minutes_left, 1))
        self._battery_warned = low

    # -- outputs -----------------------------------------------------------------------
    def _set_led(self, on: bool) -> None:
        with self._lock:
            # Checked under this lock: the recorder changes its state before it turns the
            # LED off through here, so a check racing a stop cannot relight it.
            if on and self._recorder.state is not State.RECORDING:
                on = False
            if on == self._led_on:
                return
            self._led_on = on
            self._board.indicators.set_led(LED_RECORD, on)

    def _play(self, pattern: str) -> None:
        self.alerts.append((self._clock.monotonic_us(), pattern))
        self._player.play(pattern)

    def _alert(self, pattern: str, alert: str, **fields) -> None:
        self._play(pattern)
        self._writer.put(AuditEntry("alert", self._clock.monotonic_us(), self._clock.wall_time_us(),
                                    {"alert": alert, **fields}))
