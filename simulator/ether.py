"""The simulated radio (docs/simulator.md): named nodes exchange datagrams over one virtual
clock with a fixed latency; `link.drop` / `link.restore` take one node off the air and back
(a pod out of range, a jammed channel), so both ends of a link see it go quiet.
"""
from __future__ import annotations

import threading

from hal.clock import Clock
from hal.radio import MAX_DATAGRAM_BYTES, DatagramCallback, Radio

DEFAULT_LATENCY_US = 3_000   # a Wi-Fi or BLE hop, one way


class SimEther:
    def __init__(self, clock: Clock, latency_us: int = DEFAULT_LATENCY_US) -> None:
        self._clock, self.latency_us = clock, latency_us
        self._nodes: dict[str, SimRadio] = {}
        self._dropped: set[str] = set()
        self._lock = threading.Lock()
        self.delivered = 0
        self.lost = 0

    def endpoint(self, name: str, clock: Clock | None = None) -> SimRadio:
        """The node `name`'s radio (a reboot replaces it). `clock`: the one its deliveries run
        on (a camera's power domain, so a dead camera hears nothing)."""
        radio = SimRadio(self, name, clock or self._clock)
        with self._lock:
            self._nodes[name] = radio
        return radio

    def drop(self, name: str) -> None:
        with self._lock:
            self._dropped.add(name)

    def restore(self, name: str) -> None:
        with self._lock:
            self._dropped.discard(name)

    def is_dropped(self, name: str) -> bool:
        with self._lock:
            return name in self._dropped

    def _carry(self, payload: bytes, sender: str, to: str) -> None:
        with self._lock:
            target = self._nodes.get(to)
            off_air = sender in self._dropped or to in self._dropped
        if target is None or off_air or target.closed or len(payload) > MAX_DATAGRAM_BYTES:
            self.lost += 1
            return
        data = bytes(payload)

        def arrive() -> None:
            # Checked again on arrival: a drop while the datagram is in flight loses it.
            if self.is_dropped(sender) or self.is_dropped(to) or target.closed:
                self.lost += 1
                return
            self.delivered += 1
            target.deliver(data, sender)

        target.clock.call_at(target.clock.monotonic_us() + self.latency_us, arrive)


class SimRadio(Radio):
    def __init__(self, ether: SimEther, name: str, clock: Clock) -> None:
        self._ether, self._name, self.clock = ether, name, clock
        self._callbacks: list[DatagramCallback] = []
        self.closed = False
        self.sent = 0

    @property
    def address(self) -> str:
        return self._name

    def send(self, payload: bytes, to: str) -> None:
        if self.closed or to is None:
            return
        self.sent += 1
        self._ether._carry(payload, self._name, to)

    def subscribe(self, callback: DatagramCallback) -> None:
        self._callbacks.append(callback)

    def deliver(self, payload: bytes, sender: str) -> None:
        for callback in list(self._callbacks):
            callback(payload, sender, self.clock.monotonic_us())

    def close(self) -> None:
        self.closed = True
