"""Group activation tests: fixed keys, an in-memory ether on the virtual clock, log capture."""
from __future__ import annotations

import pathlib

from nacl.signing import SigningKey

from device import group_cert as gc
from device.group import GroupLink, MemberRecord
from hal.radio import Radio
from simulator.clock import VirtualClock

VECTORS = pathlib.Path(__file__).resolve().parents[1] / "vectors" / "group" / "vectors.json"
GROUP = "unit-12"
GROUP_KEY = SigningKey(bytes([0x11]) * 32)
WALL_US = 1_767_225_600_000_000 + 3_600_000_000
HOP_US = 1_000   # the ether's one-way delay


def member_key(member_id: str) -> SigningKey:
    return SigningKey(bytes([sum(member_id.encode()) % 251 + 1]) * 32)


def record(member_id: str, role: str = "camera", authority: SigningKey = GROUP_KEY, group: str = GROUP):
    pub = bytes(member_key(member_id).verify_key)
    return MemberRecord(group, bytes(authority.verify_key), member_id, role,
                        gc.sign_cert(authority, group, member_id, role, pub))


def start(member_id: str, counter: int, utc_us: int = WALL_US, cause: str = "button", role: str = "camera",
          event_id=None) -> bytes:
    rec = record(member_id, role)
    return gc.encode_start(member_key(member_id), GROUP, member_id, role, rec.cert, counter, utc_us,
                           event_id, cause)


class MemoryStore:
    def __init__(self, value=None):
        self.value = value
        self.writes = []

    def read(self):
        return self.value

    def write(self, value):
        self.value = value
        self.writes.append(value)


class Ether:
    """Datagrams between EtherRadios, delivered HOP_US later on the virtual clock."""

    def __init__(self, clock: VirtualClock):
        self.clock = clock
        self.radios = {}
        self.sent = []          # (monotonic_us, to, payload)
        self.drop = 0           # drop this many of the next datagrams

    def radio(self, address: str) -> "EtherRadio":
        r = EtherRadio(self, address)
        self.radios[address] = r
        return r

    def deliver(self, payload: bytes, sender: str, to: str) -> None:
        self.sent.append((self.clock.monotonic_us(), to, payload))
        if self.drop:
            self.drop -= 1
            return
        target = self.radios.get(to)
        if target is not None:
            self.clock.call_later(HOP_US, lambda: target.receive(payload, sender))


class EtherRadio(Radio):
    def __init__(self, ether: Ether, address: str):
        self._ether, self._address, self._callbacks = ether, address, []

    @property
    def address(self):
        return self._address

    def send(self, payload, to):
        self._ether.deliver(bytes(payload), self._address, to)

    def subscribe(self, callback):
        self._callbacks.append(callback)

    def close(self):
        self._callbacks = []

    def receive(self, payload, sender):
        for cb in self._callbacks:
            cb(payload, sender, self._ether.clock.monotonic_us())


class Member:
    """A GroupLink on the ether with its starts and logs recorded."""

    def __init__(self, ether, member_id, role="camera", peers=(), store=None):
        self.starts, self.logs = [], []
        self.store = store or MemoryStore()
        self.radio = ether.radio(member_id)
        self.link = GroupLink(record(member_id, role), member_key(member_id), self.store, self.radio,
                              ether.clock, list(peers), lambda s, f: self.starts.append((s, f)),
                              lambda st, f: self.logs.append((st, f)))

    def rejected(self):
        return [f for st, f in self.logs if st == "rejected"]
