"""Key store on a directory of owner-only files (SEC-2)."""
from __future__ import annotations

import os

from hal.keystore import KeyStore

SIGNING_KEY_FILE = "device.key"
_SEED_FILE_MAX_BYTES = 4096


class KeyStoreError(Exception):
    pass


def write_private_file(path: str, data: bytes) -> None:
    """Atomically write `data` to `path` with mode 0600, durable on return."""
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class FileKeyStore(KeyStore):
    def __init__(self, directory: str) -> None:
        self.directory = directory

    def signing_seed(self) -> bytes:
        path = os.path.join(self.directory, SIGNING_KEY_FILE)
        try:
            mode = os.stat(path).st_mode & 0o777
            with open(path, "rb") as f:
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
            with open(os.path.join(self.directory, "state", name), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def write_record(self, name: str, data: bytes) -> None:
        state_dir = os.path.join(self.directory, "state")
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        write_private_file(os.path.join(state_dir, name), data)
