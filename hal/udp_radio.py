"""A Radio over a real UDP socket (docs/link.md §9): one socket, one receive thread.

Addresses are "HOST:PORT" (IPv4). Best effort like the interface says: a send to an
unreachable peer is dropped, a datagram over MAX_DATAGRAM_BYTES is dropped unread.
"""
from __future__ import annotations

import socket
import threading
import time

from hal.radio import MAX_DATAGRAM_BYTES, DatagramCallback, Radio


def parse_address(text: str) -> tuple[str, int]:
    """"HOST:PORT" -> (host, port); ValueError with a one-line reason otherwise."""
    host, sep, port = str(text).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{text!r} is not HOST:PORT")
    return host, int(port)


class UdpRadio(Radio):
    def __init__(self, bind: str = "127.0.0.1:0", monotonic_us=None) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # Group peers may be a subnet's broadcast address (every camera on the car's Wi-Fi).
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        self._sock.bind(parse_address(bind))
        # Receive times on the board's clock; the OS monotonic clock by default.
        self._monotonic_us = monotonic_us or (lambda: time.monotonic_ns() // 1000)
        self._callbacks: list[DatagramCallback] = []
        self._closed = False
        self.errors: list[str] = []   # the newest handler failures, for tests and diagnostics
        self._thread = threading.Thread(target=self._receive_loop, name=f"udp-radio {self.address}",
                                        daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        host, port = self._sock.getsockname()
        return f"{host}:{port}"

    def send(self, payload: bytes, to: str) -> None:
        if self._closed or len(payload) > MAX_DATAGRAM_BYTES:
            return
        try:
            self._sock.sendto(payload, parse_address(to))
        except (OSError, ValueError):
            pass   # lost, like any datagram (unreachable, no route, a bad address)

    def subscribe(self, callback: DatagramCallback) -> None:
        self._callbacks.append(callback)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # shutdown() wakes a blocked recvfrom on Linux; close() alone may not.
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=2)

    def _receive_loop(self) -> None:
        while not self._closed:
            try:
                # One byte more than allowed tells an oversize datagram from a full one.
                data, source = self._sock.recvfrom(MAX_DATAGRAM_BYTES + 1)
            except OSError:
                return   # closed
            if self._closed or source is None:   # shutdown() returns (b"", None)
                return
            host, port = source[0], source[1]
            if len(data) > MAX_DATAGRAM_BYTES:
                continue
            now_us = self._monotonic_us()
            for callback in list(self._callbacks):
                try:
                    callback(data, f"{host}:{port}", now_us)
                except Exception as exc:   # one failing handler must not deafen the radio
                    self.errors.append(repr(exc)[:200])
                    del self.errors[:-16]
