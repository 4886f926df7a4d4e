"""hal/devicelock.py: one holder at a time, a refused attempt changes nothing, and a
holder's death (however it dies) frees the device."""
from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hal.devicelock import LOCK_FILE, DeviceBusyError, DeviceLock, DeviceLockError

REPO = Path(__file__).resolve().parents[2]

# Holds the lock on argv[1] and says so, then waits to be killed.
HOLDER = """\
import sys, time
from hal.devicelock import DeviceLock
DeviceLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(60)
"""


def test_the_holder_writes_its_pid_and_a_second_lock_is_refused(tmp_path):
    with DeviceLock(str(tmp_path)):
        lock_file = tmp_path / LOCK_FILE
        assert lock_file.read_text() == f"{os.getpid()}\n"
        before = lock_file.read_bytes(), lock_file.stat().st_mtime_ns
        # flock conflicts between open file descriptions, so one process can test this.
        with pytest.raises(DeviceBusyError) as refused:
            DeviceLock(str(tmp_path)).acquire()
        assert refused.value.pid == os.getpid()
        assert str(refused.value) == f"device {tmp_path} is already running (pid {os.getpid()})"
        assert (lock_file.read_bytes(), lock_file.stat().st_mtime_ns) == before, "a refused attempt wrote"


def test_released_lock_can_be_taken_again(tmp_path):
    first = DeviceLock(str(tmp_path))
    first.acquire()
    first.release()
    with DeviceLock(str(tmp_path)):
        pass


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE,
                              text=True, env=env)
    try:
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(DeviceBusyError) as refused:
            DeviceLock(str(tmp_path)).acquire()
        assert refused.value.pid == holder.pid
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    finally:
        holder.kill()
        holder.wait(timeout=10)
        holder.stdout.close()
    assert (tmp_path / LOCK_FILE).exists(), "the file stays; only the flock went"
    with DeviceLock(str(tmp_path)):
        assert (tmp_path / LOCK_FILE).read_text() == f"{os.getpid()}\n"


def test_a_holder_that_has_not_written_its_pid_yet_is_named_as_unknown(tmp_path):
    fd = os.open(tmp_path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(DeviceBusyError, match=r"already running \(pid unknown\)"):
            DeviceLock(str(tmp_path)).acquire()
    finally:
        os.close(fd)


def test_a_missing_device_directory_is_a_lock_error_not_busy(tmp_path):
    with pytest.raises(DeviceLockError) as failed:
        DeviceLock(str(tmp_path / "absent")).acquire()
    assert not isinstance(failed.value, DeviceBusyError)
    assert "cannot open the device lock" in str(failed.value)
