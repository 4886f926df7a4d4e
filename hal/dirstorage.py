"""Storage on a directory (an SD card's filesystem on the Pi, a folder in the simulator)."""
from __future__ import annotations

import os
import shutil
from typing import BinaryIO

from hal.storage import Storage, StorageError, WritableFile


class _FdFile(WritableFile):
    def __init__(self, fd: int, path: str) -> None:
        self._fd = fd
        self._path = path

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as exc:  # ENOSPC, EIO: reported, never swallowed (FLT-2)
            raise StorageError(exc.errno, f"write to {self._path} failed: {exc.strerror}") from exc

    def sync(self) -> None:
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise StorageError(exc.errno, f"fsync of {self._path} failed: {exc.strerror}") from exc

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


class DirectoryStorage(Storage):
    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        os.makedirs(self.root, mode=0o700, exist_ok=True)

    def _path(self, name: str) -> str:
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"invalid storage name {name!r}")
        return os.path.join(self.root, name)

    def _sync_dir(self) -> None:
        # A new file's directory entry must be durable too, or a power cut can
        # lose the whole file even though its data was fsynced.
        fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _open(self, name: str, flags: int) -> WritableFile:
        path = self._path(name)
        try:
            fd = os.open(path, flags, 0o600)
        except FileExistsError:
            raise
        except OSError as exc:
            raise StorageError(exc.errno, f"cannot open {path}: {exc.strerror}") from exc
        self._sync_dir()
        return _FdFile(fd, path)

    def create(self, name: str) -> WritableFile:
        return self._open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL)

    def append(self, name: str) -> WritableFile:
        return self._open(name, os.O_WRONLY | os.O_CREAT | os.O_APPEND)

    def open_read(self, name: str) -> BinaryIO:
        return open(self._path(name), "rb")

    def names(self) -> list[str]:
        return sorted(n for n in os.listdir(self.root) if not n.startswith("."))

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free
