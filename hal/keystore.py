"""Key store: the device's secrets and its anti-rollback state.

A secure element can implement this later; until then a directory of
owner-only files does (hal/filekeystore.py). Secrets never leave through logs.
"""
from __future__ import annotations

from abc import ABC, abstractmethod


class KeyStore(ABC):
    @abstractmethod
    def signing_seed(self) -> bytes:
        """The 32-byte Ed25519 seed of the device's signing key."""

    @abstractmethod
    def read_record(self, name: str) -> bytes | None:
        """A small persistent record (e.g. the segment sequence counter), or None."""

    @abstractmethod
    def write_record(self, name: str, data: bytes) -> None:
        """Replace a record atomically and durably."""
