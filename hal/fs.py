"""The file-system seam: every system call the storage and key-store backends make.

DirectoryStorage and FileKeyStore call the file system through one small object so
a simulator can stand in for the kernel: simulator/simfs.py models a volatile write
cache (what a power cut loses) and injects ENOSPC/EIO. `OS_FS` is the real thing;
it is the default everywhere, so the Pi build and the firmware do not change.

The calls mirror `os` (file descriptors, OSError with errno), so backends are
written exactly as they would be against the kernel.
"""
from __future__ import annotations

import os
import shutil
from typing import BinaryIO, Protocol


class FileSystem(Protocol):
    def open(self, path: str, flags: int, mode: int = 0o600) -> int:
        """os.open: a file descriptor."""

    def write(self, fd: int, data: bytes | memoryview) -> int:
        """os.write: may write fewer bytes than given (a short write); returns how many."""

    def fsync(self, fd: int) -> None: ...

    def fchmod(self, fd: int, mode: int) -> None: ...

    def close(self, fd: int) -> None: ...

    def replace(self, src: str, dst: str) -> None:
        """os.replace: atomic rename over an existing file."""

    def unlink(self, path: str) -> None: ...

    def mkdir(self, path: str, mode: int = 0o700) -> None: ...

    def fsync_dir(self, path: str) -> None:
        """Make the directory's entries (creations, renames, unlinks) durable."""

    def listdir(self, path: str) -> list[str]: ...

    def stat(self, path: str) -> os.stat_result: ...

    def free_bytes(self, path: str) -> int: ...

    def open_read(self, path: str) -> BinaryIO: ...


class OsFileSystem:
    """The kernel's file system, through `os`."""

    def open(self, path: str, flags: int, mode: int = 0o600) -> int:
        return os.open(path, flags, mode)

    def write(self, fd: int, data: bytes | memoryview) -> int:
        return os.write(fd, data)

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def fchmod(self, fd: int, mode: int) -> None:
        os.fchmod(fd, mode)

    def close(self, fd: int) -> None:
        os.close(fd)

    def replace(self, src: str, dst: str) -> None:
        os.replace(src, dst)

    def unlink(self, path: str) -> None:
        os.unlink(path)

    def mkdir(self, path: str, mode: int = 0o700) -> None:
        os.mkdir(path, mode)

    def fsync_dir(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def listdir(self, path: str) -> list[str]:
        return os.listdir(path)

    def stat(self, path: str) -> os.stat_result:
        return os.stat(path)

    def free_bytes(self, path: str) -> int:
        return shutil.disk_usage(path).free

    def open_read(self, path: str) -> BinaryIO:
        return open(path, "rb")


OS_FS: FileSystem = OsFileSystem()


def write_all(fs: FileSystem, fd: int, data: bytes | memoryview) -> None:
    """Write every byte or raise: a short write is retried, and the retry reports the error."""
    view = memoryview(data)
    while view:
        view = view[fs.write(fd, view):]


def make_dirs_durable(fs: FileSystem, path: str, mode: int = 0o700) -> None:
    """os.makedirs(path, exist_ok=True), with each new directory's entry made durable.

    A directory created and never synced into its parent can vanish on a power cut
    with everything later fsynced inside it.
    """
    path = os.path.abspath(path)
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for directory in reversed(missing):
        try:
            fs.mkdir(directory, mode)
        except FileExistsError:
            if not os.path.isdir(directory):
                raise
            continue  # made by someone else meanwhile; their job to sync it
        fs.fsync_dir(os.path.dirname(directory))
