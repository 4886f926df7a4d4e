"""Storage on a directory (an SD card's filesystem on the Pi, a folder in the simulator)."""
from __future__ import annotations

import os
from typing import BinaryIO

from hal.fs import OS_FS, FileSystem, make_dirs_durable, write_all
from hal.storage import Storage, StorageError, WritableFile


class _FdFile(WritableFile):
    def __init__(self, fs: FileSystem, fd: int, path: str) -> None:
        self._fs = fs
        self._fd = fd
        self._path = path

    def write(self, data: bytes) -> None:
        try:
            write_all(self._fs, self._fd, data)
        except OSError as exc:  # ENOSPC, EIO: reported, never swallowed (FLT-2)
            raise StorageError(exc.errno, f"write to {self._path} failed: {exc.strerror}") from exc

    def sync(self) -> None:
        try:
            self._fs.fsync(self._fd)
        except OSError as exc:
            raise StorageError(exc.errno, f"fsync of {self._path} failed: {exc.strerror}") from exc

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            self._fs.close(fd)


class DirectoryStorage(Storage):
    def __init__(self, root: str, fs: FileSystem = OS_FS) -> None:
        self.root = os.path.abspath(root)
        self._fs = fs
        make_dirs_durable(fs, self.root, 0o700)

    def _path(self, name: str) -> str:
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"invalid storage name {name!r}")
        return os.path.join(self.root, name)

    def _sync_dir(self, path: str) -> None:
        # A new file's directory entry must be durable too, or a power cut can
        # lose the whole file even though its data was fsynced.
        try:
            self._fs.fsync_dir(self.root)
        except OSError as exc:
            raise StorageError(exc.errno, f"fsync of {self.root} after creating {path} failed: "
                                          f"{exc.strerror}") from exc

    def _open(self, name: str, flags: int) -> WritableFile:
        path = self._path(name)
        try:
            fd = self._fs.open(path, flags, 0o600)
        except FileExistsError:
            raise
        except OSError as exc:
            raise StorageError(exc.errno, f"cannot open {path}: {exc.strerror}") from exc
        try:
            self._sync_dir(path)
        except BaseException:
            self._fs.close(fd)
            raise
        return _FdFile(self._fs, fd, path)

    def create(self, name: str) -> WritableFile:
        return self._open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL)

    def append(self, name: str) -> WritableFile:
        return self._open(name, os.O_WRONLY | os.O_CREAT | os.O_APPEND)

    def open_read(self, name: str) -> BinaryIO:
        return self._fs.open_read(self._path(name))

    def names(self) -> list[str]:
        return sorted(n for n in self._fs.listdir(self.root) if not n.startswith("."))

    def free_bytes(self) -> int:
        return self._fs.free_bytes(self.root)
