"""The firmware as a systemd service: READY, STATUS and a watchdog fed only while healthy.

device/health.py decides what healthy means; this module turns it into sd_notify messages
on the runner's tick (tools/pi_main.py), at most every third of WatchdogSec.
"""
from __future__ import annotations

import logging

from device.health import WriterProgress, pipeline_problem
from device.states import State
from tools.sdnotify import SdNotify

log = logging.getLogger(__name__)


class ServiceWatchdog:
    def __init__(self, firmware, notifier: SdNotify) -> None:
        self._firmware, self._notifier = firmware, notifier
        self._last_ping_us: int | None = None
        self._status: str | None = None
        self._problem: str | None = None
        self._writer_progress = WriterProgress()

    def ready(self, boot_note: str) -> None:
        self._notifier.send(READY=1, STATUS=boot_note)
        self._status = boot_note

    def stopping(self) -> None:
        self._notifier.send(STOPPING=1, STATUS="closing any open event and shutting down")

    def tick(self, now_us: int) -> str | None:
        """Feed the watchdog if the pipeline is healthy; returns the problem, if any."""
        writer = self._firmware.writer
        stuck_us = self._writer_progress.stuck_us(writer, now_us) if writer is not None else 0
        problem = pipeline_problem(self._firmware, now_us, stuck_us)
        if problem != self._problem:
            if problem is not None:
                log.error("not feeding the service watchdog: %s", problem)
            self._problem = problem
        interval_us = self._notifier.watchdog_interval_us
        if problem is None and interval_us is not None and (
                self._last_ping_us is None or now_us - self._last_ping_us >= interval_us // 3):
            if self._notifier.send(WATCHDOG=1):
                self._last_ping_us = now_us
        status = self._status_line(problem)
        if status != self._status:
            self._notifier.send(STATUS=status)
            self._status = status
        return problem

    def _status_line(self, problem: str | None) -> str:
        if problem is not None:
            return f"unhealthy: {problem}"
        firmware = self._firmware
        state = firmware.recorder.state if firmware.recorder is not None else None
        faults = firmware.monitor.faults() if firmware.monitor is not None else []
        words = {State.RECORDING: "recording", State.BUFFERING: "buffering"}.get(state, "starting")
        return words + (f" ({', '.join(faults)})" if faults else "")
