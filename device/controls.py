"""What each gesture on the record button means, by state (ACT-1, ACT-4, ACT-5, ANN-4,
IND-2): the table is in docs/indicators.md ("Gestures"), kept in one place.

A stop that policy asks to confirm (`stop_confirm`) opens a window of
`stop_confirm_s` after the hold; presses in it confirm, and their count picks the
stop reason from `stop_reasons` (1 press: the first). No press: the stop is cancelled
and the recording goes on (it never paused). The window closes `double_press_window_ms`
after its end at the latest, so a press just before the end is still counted.
"""
from __future__ import annotations

import threading

from device import gestures
from device.config import Policy
from device.states import Event, State
from device.writer import AuditEntry, Metadata
from hal.clock import Clock

SETTLE_US = 100_000   # after the window, for the last press's gesture to be decoded


class Controls:
    def __init__(self, clock: Clock, policy: Policy, recorder, writer, monitor) -> None:
        self._clock, self._policy = clock, policy
        self._recorder, self._writer, self._monitor = recorder, writer, monitor
        self._lock = threading.Lock()
        self._pending: dict | None = None   # an unconfirmed stop: {"hold_us", "presses", "timer"}

    def button(self, gesture: str, press_us: int, source: str = "button") -> None:
        """A decoded gesture of the record button, or of a paired pod's (`source`
        "pod:ID", docs/link.md §5); `press_us` is when its press began."""
        recording = self._recorder.state is State.RECORDING
        with self._lock:
            pending = self._pending
            if pending is not None and press_us >= pending["hold_us"] and gesture != gestures.HOLD:
                pending["presses"] += 2 if gesture == gestures.DOUBLE_PRESS else 1
                self._recorder.player.play("stop_counted")
                return
        if gesture == gestures.DOUBLE_PRESS:
            if recording:
                self._recorder.replay_announcement(source)   # ANN-4: say it again
            else:
                self._recorder.handle(Event.START_BUTTON, source, press_us)
        elif gesture == gestures.PRESS:
            if recording:
                self._recorder.handle(Event.MARKER_BUTTON, source, press_us)
            self.status()
        elif gesture == gestures.HOLD and recording:
            if self._policy.stop_confirm:
                self._ask_to_confirm(press_us, source)
            else:
                self._recorder.handle(Event.STOP_BUTTON, source, press_us)

    def status(self) -> None:
        """IND-2: answer what the camera is doing, from facts (the monitor's)."""
        if self._monitor.faults():
            self._recorder.player.play("status_fault")
        elif self._recorder.state is State.RECORDING:
            self._recorder.player.play("status_recording" if self._monitor.committing() else "status_fault")
        else:
            self._recorder.player.play("status_buffering")

    def cancel(self) -> None:
        """Shutdown: an unconfirmed stop is dropped (the shutdown stops the event anyway)."""
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            pending["timer"].cancel()

    # -- ACT-5 ---------------------------------------------------------------------------
    def _ask_to_confirm(self, hold_us: int, source: str) -> None:
        with self._lock:
            if self._pending is not None:
                return
            close_us = (hold_us + round(self._policy.hold_stop_s * 1e6)
                        + round(self._policy.stop_confirm_s * 1e6)
                        + self._policy.double_press_window_ms * 1000 + SETTLE_US)
            self._pending = {"hold_us": hold_us, "presses": 0, "source": source,
                             "timer": self._clock.call_at(close_us, self._close)}
        self._log_request("pending", hold_us, source)
        self._recorder.player.play("stop_pending")

    def _close(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is None or self._recorder.state is not State.RECORDING:
            return
        presses = pending["presses"]
        if presses == 0:
            self._log_request("cancelled", self._clock.monotonic_us(), pending["source"])
            self._recorder.player.play("stop_cancelled")
            return
        reasons = self._policy.stop_reasons
        reason = reasons[min(presses, len(reasons)) - 1] if reasons else None
        self._log_request("confirmed", self._clock.monotonic_us(), pending["source"], presses=presses,
                          **({} if reason is None else {"reason": reason}))
        self._recorder.handle(Event.STOP_BUTTON, pending["source"], reason=reason)

    def _log_request(self, status: str, monotonic_us: int, source: str, **fields) -> None:
        utc_us = self._clock.wall_time_us() - (self._clock.monotonic_us() - monotonic_us)
        record = {"status": status, "source": source, **fields}
        self._writer.put(Metadata("stop_request", monotonic_us, dict(record)))
        self._writer.put(AuditEntry("stop_request", monotonic_us, utc_us,
                                    dict(record, event_id=self._recorder.event_id)))
