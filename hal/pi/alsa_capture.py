"""`arecord` as the microphone's ALSA edge: one process streaming raw PCM into a pipe.

Why a process and not PyAV's ALSA demuxer (measured on PyAV 18.1.0, issue 9 item 2):
the PyPI `av` wheel bundles libasound 1.2.14 built with its configuration in
/tmp/vendor/share/alsa and its plugins in /tmp/vendor/lib/alsa-lib, paths from
the wheel's build machine. Every device name fails, even `null` ("Cannot access
file /tmp/vendor/share/alsa/alsa.conf", then "Unknown PCM null"). Setting
ALSA_CONFIG_DIR=/usr/share/alsa makes `null` and `hw:` devices open, but plugin
devices still fail: Raspberry Pi OS's desktop image routes `default` through
PipeWire's ALSA plugin, which the bundled library looks for in
/tmp/vendor/lib/alsa-lib and cannot load (and loading the system's plugin into
a different libasound build would be an ABI gamble anyway). `arecord` uses the
system's own libasound, configuration and plugins, exactly as `aplay` does for
the speaker, so both directions share one dependency (alsa-utils) and one
configuration; a wedged ALSA read becomes a process we can kill instead of a
thread we cannot join; and ALSA's own error text reaches us on stderr.

This module knows nothing about AAC or timestamps: it starts arecord, proves it
runs (its first bytes arrive), hands out fixed-size blocks, and ends it.
"""
from __future__ import annotations

import collections
import logging
import os
import re
import select
import signal
import subprocess
import time
from typing import Callable

_log = logging.getLogger(__name__)

# A real capture device delivers its first period within tens of ms; a device
# that opened but sends nothing for this long is as good as absent.
DEFAULT_OPEN_TIMEOUT_S = 1.0
# arecord writes one ALSA period per write(); 10 ms keeps read-return times, which
# stamp the audio (SampleClock), within 10 ms of capture. The buffer stays at
# arecord's default (up to 500 ms), and the pipe adds 64 KiB (~0.7 s at 48 kHz).
PERIOD_TIME_US = 10_000
# How often a blocked reader looks at its stop flag: a wedged device (no bytes,
# process not dead) still lets the capture thread end this soon after stop().
_POLL_S = 0.1

_TOOL_LINE = re.compile(r"^(?:arecord|aplay): (?:\w+:\d+: )?(.*)$")
_LIB_LINE = re.compile(r"^ALSA lib [^(]*\([^)]*\)\s*(.*)$")


def alsa_reason(stderr_text: str) -> str:
    """ALSA's reason, in one line, from arecord's or aplay's stderr.

    The tool's own line ("audio open error: No such file or directory") says what
    failed; ALSA's first library line ("Unknown PCM nosuch", "cannot find card
    '0'") is usually the root cause, the later ones being its consequences.
    """
    lines = [line.strip() for line in stderr_text.splitlines() if line.strip()]
    tool = [m.group(1) for m in map(_TOOL_LINE.match, lines) if m]
    lib = [m.group(1) for m in map(_LIB_LINE.match, lines) if m]
    if tool and lib:
        return f"{lib[0]} ({tool[-1]})"
    if tool or lib:
        return (tool or lib)[-1]
    return lines[-1] if lines else "no message from ALSA"


class CaptureFailed(Exception):
    """arecord did not start or stopped: the message is one line, ALSA's reason included."""


class ArecordStream:
    """One arecord process: S16_LE mono at `sample_rate_hz` on its stdout.

    read() belongs to one thread (the capture thread), which also calls close();
    terminate() may be called from any thread, at any time.
    """

    def __init__(self, arecord_path: str, device: str, sample_rate_hz: int, *,
                 open_timeout_s: float = DEFAULT_OPEN_TIMEOUT_S,
                 on_warning: Callable[[str], None] | None = None) -> None:
        self.device = device
        self.argv = [arecord_path, "-q", "-D", device, "-t", "raw", "-f", "S16_LE", "-c", "1",
                     "-r", str(sample_rate_hz), f"--period-time={PERIOD_TIME_US}"]
        self._on_warning = on_warning or (lambda line: None)
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
        self._stderr_partial = b""
        self._pending = bytearray()
        # Its own session: a Ctrl-C meant for the firmware must not end capture
        # before the firmware closes the event; if the firmware dies, arecord's
        # next write gets EPIPE and it exits.
        self._proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, bufsize=0, start_new_session=True)
        self._open_fds = [self._proc.stdout.fileno(), self._proc.stderr.fileno()]
        try:
            self._await_first_bytes(open_timeout_s)
        except BaseException:
            # Nothing captured yet, nothing to let it finish: no SIGTERM grace.
            self._proc.kill()
            try:
                self._proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                _log.error("arecord (pid %d) on %r did not exit after SIGKILL", self._proc.pid, device)
            self.close()
            raise

    @property
    def pid(self) -> int:
        return self._proc.pid

    def _await_first_bytes(self, timeout_s: float) -> None:
        # Proof that the device opened and runs: a process that is merely alive may
        # still be about to fail on hw_params, or be stuck inside the driver.
        deadline = time.monotonic() + timeout_s
        while not self._pending:
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                raise CaptureFailed(f"no audio within {timeout_s:g} s of starting arecord")
            if not self._pump(remaining_s):
                raise CaptureFailed(self.exit_reason())

    def read(self, nbytes: int, should_stop: Callable[[], bool]) -> bytes | None:
        """The next `nbytes` of PCM, or None once arecord has ended or `should_stop()`."""
        while len(self._pending) < nbytes:
            if should_stop() or not self._pump(_POLL_S):
                return None
        block = bytes(self._pending[:nbytes])
        del self._pending[:nbytes]
        return block

    def _pump(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for output; False once stdout has closed (arecord ended)."""
        out_fd, err_fd = self._proc.stdout.fileno(), self._proc.stderr.fileno()
        watched = [fd for fd in (out_fd, err_fd) if fd in self._open_fds]
        ready, _, _ = select.select(watched, [], [], timeout_s)
        if err_fd in ready:
            self._take_stderr(os.read(err_fd, 4096))
        if out_fd in ready:
            data = os.read(out_fd, 65536)
            if not data:
                return False
            self._pending += data
        return True

    def _take_stderr(self, data: bytes) -> None:
        # Drained as it comes: an unread stderr pipe full of overrun warnings
        # would block arecord, and with it the audio.
        if not data:
            self._open_fds.remove(self._proc.stderr.fileno())
            data, self._stderr_partial = self._stderr_partial + b"\n", b""
        *lines, self._stderr_partial = (self._stderr_partial + data).split(b"\n")
        for raw in lines:
            line = raw.decode(errors="replace").strip()
            if line:
                self._stderr_tail.append(line)
                if line.startswith("overrun"):
                    self._on_warning(line)

    def exit_reason(self, timeout_s: float = 0.5) -> str:
        """Why arecord ended, in one line: ALSA's words, and its exit status."""
        try:
            returncode = self._proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return f"arecord stopped sending audio: {alsa_reason(chr(10).join(self._stderr_tail))}"
        # Its last words may still be in the stderr pipe.
        deadline = time.monotonic() + timeout_s
        err_fd = self._proc.stderr.fileno()
        while err_fd in self._open_fds and time.monotonic() < deadline:
            ready, _, _ = select.select([err_fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            self._take_stderr(os.read(err_fd, 4096))
        if returncode < 0:
            status = f"arecord killed by {signal.Signals(-returncode).name}"
        else:
            status = f"arecord exited {returncode}"
        if not self._stderr_tail:
            return status
        return f"{alsa_reason(chr(10).join(self._stderr_tail))}, {status}"

    def terminate(self, timeout_s: float) -> None:
        """End arecord within about `timeout_s`: SIGTERM, then SIGKILL for a wedged one."""
        if self._proc.poll() is not None:
            return
        deadline = time.monotonic() + timeout_s
        self._proc.terminate()
        try:
            self._proc.wait(timeout=timeout_s / 2)
            return
        except subprocess.TimeoutExpired:
            pass
        self._proc.kill()
        try:
            self._proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            # Stuck in the kernel (uninterruptible); reaped by a later poll().
            _log.error("arecord (pid %d) on %r did not exit after SIGKILL", self._proc.pid, self.device)

    def close(self) -> None:
        """Close the pipes. Only the thread that reads may call this (after terminate())."""
        self._open_fds.clear()
        self._proc.stdout.close()
        self._proc.stderr.close()
