"""A vehicle's light-bar controller as a group member (docs/link.md §8.6).

VEHICLE_DIR is laid out like a device directory so the same key store reads it:
device.key (seed, 0600), device.pub, vehicle.json {vehicle_id}, group.json (its membership)
and state/group_counter (the reserved send counter).
"""
from __future__ import annotations

import json
import os

from nacl.signing import SigningKey

from device import group_cert as gc
from device.evidence import keys
from device.group import GroupLink, RecordCounterStore, read_member_record, RETRANSMIT_AT_US
from hal.filekeystore import SIGNING_KEY_FILE, FileKeyStore, write_private_file
from hal.udp_radio import UdpRadio, parse_address
from tools.group import Authority, GroupError, fresh_dir, write_member_record


def init_vehicle(group_dir: str, vehicle_id: str, out_dir: str) -> str:
    authority = Authority(group_dir)       # a wrong group dir fails before anything is made
    if not gc.valid_id(vehicle_id):
        raise GroupError(f"member id {vehicle_id!r} is not 1..64 characters of A-Z a-z 0-9 . _ - "
                         "starting with a letter or digit")
    fresh_dir(out_dir, "vehicle controller")
    key = SigningKey.generate()
    record = authority.admit(vehicle_id, "vehicle", bytes(key.verify_key))
    write_private_file(os.path.join(out_dir, SIGNING_KEY_FILE), bytes(key).hex().encode())
    keys.write_public(os.path.join(out_dir, "device.pub"), keys.DEVICE_PUBLIC, bytes(key.verify_key))
    with open(os.path.join(out_dir, "vehicle.json"), "x", encoding="utf-8") as f:
        json.dump({"vehicle_id": vehicle_id, "group": record.group}, f, indent=2)
    return write_member_record(out_dir, record)


def parse_peers(text: str) -> list[str]:
    peers = [p.strip() for p in text.split(",") if p.strip()]
    if not peers:
        raise GroupError("--peers needs at least one HOST:PORT")
    for peer in peers:
        try:
            parse_address(peer)
        except ValueError as exc:
            raise GroupError(f"--peers: {exc}") from None
    return peers


class _SenderClock:
    """Wall and monotonic time, and the retransmission timers run by start_vehicle's wait."""

    def __init__(self) -> None:
        from hal.realclock import RealClock
        self.real = RealClock()

    def monotonic_us(self):
        return self.real.monotonic_us()

    def wall_time_us(self):
        return self.real.wall_time_us()

    def call_later(self, delay_us, callback):
        return self.real.call_at(self.real.monotonic_us() + delay_us, callback)


def start_vehicle(vehicle_dir: str, peers: list[str], cause: str = "lightbar") -> int:
    """Send one group start (with its retransmissions) and return its counter."""
    if not os.path.isdir(vehicle_dir):
        raise GroupError(f"{vehicle_dir}: not a vehicle directory (make one with bwc vehicle init)")
    if not gc.valid_cause(cause):
        raise GroupError(f"--cause {cause!r}: a lowercase word, optionally ':' and a name (e.g. lightbar)")
    member = read_member_record(os.path.join(vehicle_dir, "group.json"))
    if member.role != "vehicle":
        raise GroupError(f"{vehicle_dir}: its membership is for a {member.role}, not a vehicle")
    store = FileKeyStore(vehicle_dir)
    key = SigningKey(store.signing_seed())
    clock = _SenderClock()
    radio = UdpRadio("0.0.0.0:0")
    try:
        link = GroupLink(member, key, RecordCounterStore(store), radio, clock, peers,
                         on_start=lambda source, fields: None, log=lambda status, fields: None)
        try:
            counter = link.announce(cause)
        except ValueError as exc:
            raise GroupError(str(exc)) from None
        clock.real.wait_until(clock.monotonic_us() + RETRANSMIT_AT_US[-1] + 10_000)
    finally:
        radio.close()
    return counter
