"""Radio: a datagram transport for the pod link and group activation (docs/link.md §9).

Best effort, like UDP: a datagram may be lost, duplicated, delayed or reordered. All
security is in the messages (device/link, device/group), none in the transport, so the
same firmware runs over UDP, BLE GATT or the simulator's ether.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable

# (payload, sender address, monotonic receive time in µs on the board's clock)
DatagramCallback = Callable[[bytes, str, int], None]

MAX_DATAGRAM_BYTES = 2048   # both protocols stay far below; anything longer is dropped unread


class Radio(ABC):
    """One endpoint. Addresses are opaque strings the transport understands
    ("127.0.0.1:4770" for UDP, a node name in the simulator)."""

    @property
    @abstractmethod
    def address(self) -> str:
        """This endpoint's own address, as peers would send to it."""

    @abstractmethod
    def send(self, payload: bytes, to: str) -> None:
        """Send one datagram; never raises for a lost or unreachable peer (it is dropped)."""

    @abstractmethod
    def subscribe(self, callback: DatagramCallback) -> None:
        """Call `callback` for every datagram received (on a transport thread, or on the
        clock's thread in the simulator)."""

    @abstractmethod
    def close(self) -> None:
        """Stop receiving; later sends are dropped."""
