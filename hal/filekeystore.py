"""Key store on a directory of owner-only files (SEC-2)."""
from __future__ import annotations

import os

from hal.fs import OS_FS, FileSystem, make_dirs_durable, write_all
from hal.keystore import KeyStore

SIGNING_KEY_FILE = "device.key"
_SEED_FILE_MAX_BYTES = 4096


class KeyStoreError(Exception):
    pass


def write_private_file(path: str, data: bytes, fs: FileSystem = OS_FS) -> None:
    """Atomically write `data` to `path` with mode 0600, durable on return."""
    tmp = f"{path}.tmp"
    fd = fs.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        fs.fchmod(fd, 0o600)   # O_TRUNC keeps the mode of a stale tmp file
        write_all(fs, fd, data)
        fs.fsync(fd)
    finally:
        fs.close(fd)
    fs.replace(tmp, path)
    # The rename is durable only once the directory is.
    fs.fsync_dir(os.path.dirname(os.path.abspath(path)))


class FileKeyStore(KeyStore):
    def __init__(self, directory: str, fs: FileSystem = OS_FS) -> None:
        self.directory = directory
        self._fs = fs

    def signing_seed(self) -> bytes:
        path = os.path.join(self.directory, SIGNING_KEY_FILE)
        try:
            mode = self._fs.stat(path).st_mode & 0o777
            with self._fs.open_read(path) as f:
                text = f.read(_SEED_FILE_MAX_BYTES + 1)  # a huge file is not read whole
        except FileNotFoundError:
            raise KeyStoreError(f"no device signing key at {path}: provision the device first") from None
        except OSError as exc:  # a directory, no permission ...
            raise KeyStoreError(f"{path}: cannot read the device signing key ({exc.strerror})") from None
        try:
            seed = bytes.fromhex(text.decode("ascii").strip())
        except ValueError:  # also not ASCII
            raise KeyStoreError(f"{path} is not a device signing key") from None
        if mode & 0o077:
            raise KeyStoreError(f"{path} is readable by others (mode {mode:o}); expected 600")
        if len(seed) != 32:
            raise KeyStoreError(f"{path} is not a device signing key")
        return seed

    def read_record(self, name: str) -> bytes | None:
        try:
            with self._fs.open_read(os.path.join(self.directory, "state", name)) as f:
                return f.read()
        except FileNotFoundError:
            return None

    def write_record(self, name: str, data: bytes) -> None:
        state_dir = os.path.join(self.directory, "state")
        make_dirs_durable(self._fs, state_dir, 0o700)
        write_private_file(os.path.join(state_dir, name), data, self._fs)
