"""Is the recording pipeline healthy? What the service watchdog is fed on (docs/pi.md#watchdog).

systemd restarts the firmware when it stops saying WATCHDOG=1. A restart is the cure for a
process that cannot help itself (a hung loop, a dead writer, a camera stack wedged inside
the kernel) and a harm for one that can: it ends an open event and costs seconds of media.
So the watchdog is fed while the firmware's own loops run and every part is either
delivering or being recovered in-process:
- a camera or microphone that stopped delivering (a pulled cord) is reopened by the
  monitor with back-off while the other track keeps recording (FLT-1): still fed;
- a camera whose stop() could not finish (Camera.stuck(): threads blocked inside the camera
  stack) can only come back in a new process: not fed while buffering; while recording,
  audio is the evidence being made, so feeding goes on until the event ends;
- the monitor not ticking, the writer thread dead, or, while recording, no media reaching
  the card for COMMIT_STALL_RESTART_S *and* the writer stuck on one item that long (wedged,
  not merely slow: a slow card's writer keeps finishing items): not fed.
"""
from __future__ import annotations

from device.states import State

# The monitor ticks every 100 ms, but one tick may sit in a camera stop() for up to its 3 s
# bound (a reopen, FLT-1): stale only well past that, still well inside WatchdogSec=10.
MONITOR_STALE_US = 5_000_000
COMMIT_STALL_RESTART_S = 10.0       # well past the commit_stall alert (flush interval + ~1.5 s)


def pipeline_problem(firmware, now_us: int, writer_stuck_us: int = 0) -> str | None:
    """None while healthy; else one line saying why the watchdog must not be fed.
    `writer_stuck_us`: how long the writer has been busy on one item without finishing it
    (WriterProgress): a slow card that keeps up less than real time is not a wedged writer."""
    if firmware.failure is not None:
        return f"the firmware failed: {firmware.failure}"
    monitor, writer, recorder = firmware.monitor, firmware.writer, firmware.recorder
    if monitor is None or writer is None or recorder is None:
        return "not booted"
    if monitor.last_tick_us is None or now_us - monitor.last_tick_us > MONITOR_STALE_US:
        return "the health monitor has stopped running"
    if not writer.alive():
        return "the writer thread is dead"
    age_us = monitor.commit_age_us(now_us)
    limit_us = COMMIT_STALL_RESTART_S * 1e6
    if age_us is not None and age_us > limit_us and writer_stuck_us > limit_us:
        return (f"no media has reached the card for {age_us / 1e6:.0f} s while recording, and the "
                f"writer has been stuck on one item for {writer_stuck_us / 1e6:.0f} s")
    if firmware.board.camera.stuck() and recorder.state is not State.RECORDING:
        return "the camera stack is wedged (a stop did not finish); a restart reopens it"
    return None


class WriterProgress:
    """How long the writer has been busy without finishing anything (its progress() count
    standing still while busy_since() is set), on the caller's clock."""

    def __init__(self) -> None:
        self._progress: int | None = None
        self._since_us = 0

    def stuck_us(self, writer, now_us: int) -> int:
        progress = writer.progress()
        if progress != self._progress or writer.busy_since() is None:
            self._progress, self._since_us = progress, now_us
            return 0
        return now_us - self._since_us
