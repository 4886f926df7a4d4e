"""Evidence storage: append-only files that are made durable on request."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import BinaryIO


class StorageError(OSError):
    """A storage operation failed (full card, EIO ...). Never swallowed (FLT-2)."""


class WritableFile(ABC):
    @abstractmethod
    def write(self, data: bytes) -> None: ...

    @abstractmethod
    def sync(self) -> None:
        """Return only once everything written so far survives a power cut."""

    @abstractmethod
    def close(self) -> None: ...


class Storage(ABC):
    @abstractmethod
    def create(self, name: str) -> WritableFile:
        """Create a new file; refuses to replace an existing one (evidence is never overwritten)."""

    @abstractmethod
    def append(self, name: str) -> WritableFile:
        """Open a file for appending, creating it if missing."""

    @abstractmethod
    def open_read(self, name: str) -> BinaryIO: ...

    @abstractmethod
    def names(self) -> list[str]:
        """Every file name in storage, sorted."""

    @abstractmethod
    def free_bytes(self) -> int: ...
