"""One firmware per device: an exclusive lock on the device directory.

Two firmwares on one device would interleave its audit log and reuse its segment
sequence numbers, and honest footage would then fail verification. `bwc run`
therefore holds an flock(2) on DEVICE_DIR/run.lock for its whole run.

flock rather than a pid file made with O_EXCL: the kernel drops the lock when the
holding process dies however it dies (SIGKILL, a power cut), so a crash never
leaves a stale lock to clear by hand. The file stays behind, harmless; it holds
the holder's pid only so a refused second run can name it.
"""
from __future__ import annotations

import fcntl
import os

LOCK_FILE = "run.lock"
_PID_MAX_BYTES = 32


class DeviceLockError(Exception):
    """The device directory cannot be locked."""


class DeviceBusyError(DeviceLockError):
    """Another process holds the device's lock."""

    def __init__(self, device_dir: str, pid: int | None) -> None:
        holder = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(f"device {device_dir} is already running ({holder})")
        self.pid = pid


def _read_pid(fd: int) -> int | None:
    # The holder may be between truncating and writing: then there is no pid yet.
    text = os.pread(fd, _PID_MAX_BYTES, 0).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None


class DeviceLock:
    """`with DeviceLock(device_dir):` holds the lock, or raises DeviceBusyError at once.

    A refused attempt changes nothing: the lock file is opened without truncation
    and only written once the lock is held.
    """

    def __init__(self, device_dir: str) -> None:
        self.device_dir = device_dir
        self.path = os.path.join(device_dir, LOCK_FILE)
        self._fd: int | None = None

    def acquire(self) -> None:
        # O_CLOEXEC: a helper process (aplay on the Pi) must not inherit the lock and
        # keep the device "running" after the firmware itself has died.
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise DeviceLockError(f"{self.path}: cannot open the device lock ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # held by another process
            pid = _read_pid(fd)
            os.close(fd)
            raise DeviceBusyError(self.device_dir, pid) from None
        except OSError as exc:
            os.close(fd)
            raise DeviceLockError(f"{self.path}: cannot lock ({exc.strerror})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the last descriptor drops the flock

    def __enter__(self) -> "DeviceLock":
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
