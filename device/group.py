"""Group activation (ACT-3, docs/link.md §8): cameras and a vehicle start each other.

The message format and the signature checks are in device/group_cert.py; this module holds
the member's record (group.json), the sender (counter, retransmissions) and the receiver's
checks in order, with their state (the highest counter accepted per member, in RAM) and the
rate limit on rejection logs.
"""
from __future__ import annotations

import json
import threading
from collections import deque

from nacl.signing import SigningKey

from device import group_cert as gc
from device.config import FIRMWARE_BUILD_UTC_US
from device.link.endpoint import ReservedCounter

GROUP_FILE = "group.json"
COUNTER_RECORD = "group_counter"
RETRANSMIT_AT_US = (0, 50_000, 150_000)   # one datagram lost in three still arrives in 150 ms
DUPLICATE_WINDOW_US = 1_000_000            # copies later than this after acceptance are replays
STALE_US = 5_000_000                       # |sender utc - receiver utc| allowed
REJECT_LOGS_PER_WINDOW = 10
REJECT_WINDOW_US = 60_000_000
SILENT = ("self", "duplicate")              # ignored and not logged (docs/link.md §8.4)


class GroupConfigError(Exception):
    """group.json is missing, malformed, or does not belong to this device's key."""


class MemberRecord:
    """This device's membership, as `bwc group admit` / `bwc vehicle init` wrote it."""

    def __init__(self, group: str, group_pub: bytes, member_id: str, role: str, cert: bytes) -> None:
        self.group, self.group_pub, self.member_id, self.role, self.cert = group, group_pub, member_id, role, cert

    @classmethod
    def from_json(cls, record: object, source: str = GROUP_FILE) -> "MemberRecord":
        def fail(what):
            return GroupConfigError(f"{source}: {what}; admit the device again (bwc group admit)")
        if not isinstance(record, dict):
            raise fail("not a JSON object")
        try:
            group, member_id, role = record["group"], record["member_id"], record["role"]
            group_pub, cert = bytes.fromhex(record["group_pub"]), bytes.fromhex(record["cert"])
        except (KeyError, TypeError, ValueError):
            raise fail("needs group, group_pub, member_id, role and cert (hex)") from None
        if not (gc.valid_id(group) and gc.valid_id(member_id)) or role not in gc.ROLES:
            raise fail("group, member_id or role is not valid")
        if len(group_pub) != 32 or len(cert) != 64:
            raise fail("group_pub or cert has the wrong length")
        return cls(group, group_pub, member_id, role, cert)

    def to_json(self) -> dict:
        return {"group": self.group, "group_pub": self.group_pub.hex(), "member_id": self.member_id,
                "role": self.role, "cert": self.cert.hex()}


def read_member_record(path: str) -> MemberRecord:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(65536)
        record = json.loads(text)
    except FileNotFoundError:
        raise GroupConfigError(f"{path}: no group membership; run bwc group admit first") from None
    except (OSError, ValueError) as exc:
        raise GroupConfigError(f"{path}: cannot read the group membership ({exc})") from None
    return MemberRecord.from_json(record, path)


class RecordCounterStore:
    """A counter store (read() -> int | None, write(int)) on a key-store record."""

    def __init__(self, keystore, name: str = COUNTER_RECORD) -> None:
        self._keystore, self._name = keystore, name

    def read(self):
        data = self._keystore.read_record(self._name)
        if data is None:
            return None
        try:
            return int(data.decode("ascii"))
        except ValueError:
            # Starting again at 1 would make every peer reject this member's starts as
            # `replay`; the record is written atomically, so this is damage, not a torn write.
            raise GroupConfigError(f"the group counter record {self._name!r} is unreadable; "
                                   "restore it (any value above the last one sent)") from None

    def write(self, value: int) -> None:
        self._keystore.write_record(self._name, str(value).encode("ascii"))


class GroupLink:
    """One group member's radio side of group activation.

    GroupLink(member, signing_key, counter_store, radio, clock, peers, on_start, log)

    - member: MemberRecord (read_member_record(DEVICE_DIR/group.json)).
    - signing_key: nacl.signing.SigningKey, the device's own key; the certificate must be for it.
    - counter_store: read() -> int | None, write(int) durable on return (RecordCounterStore);
      counters are reserved ahead of use (device/link/endpoint.ReservedCounter).
    - radio: hal.radio.Radio; the link subscribes to it at once.
    - clock: monotonic_us(), wall_time_us(), and call_later(delay_us, cb) (or call_at).
    - peers: radio addresses to send starts to.
    - on_start(source, fields): an accepted start; source is "peer:<from>" (a camera) or
      "vehicle:<from>"; fields {group, from, role, counter, utc_us, event_id, cause, address}.
    - log(status, fields): status "accepted" (fields as on_start plus source) or "rejected"
      ({reason, address, from if it was a valid id, detail, suppressed if > 0}).

    announce(cause, event_id=None) sends one signed start to every peer at 0, 50 and 150 ms
    (same counter, same bytes) and returns its counter. on_start and log run on the radio's
    receive thread (a clock callback in the simulator); one datagram is handled at a time.
    """

    def __init__(self, member, signing_key, counter_store, radio, clock, peers, on_start, log) -> None:
        if not isinstance(signing_key, SigningKey):
            raise TypeError("signing_key must be a nacl.signing.SigningKey")
        own_pub = bytes(signing_key.verify_key)
        if not gc.cert_verifies(member.group_pub, member.group, member.member_id, member.role, own_pub,
                                member.cert):
            raise GroupConfigError(f"the group certificate of {member.member_id!r} is not for this "
                                   "device's key; admit the device again")
        self.member = member
        self._key = signing_key
        self._counter = ReservedCounter(counter_store)
        self._radio = radio
        self._clock = clock
        self.peers = list(peers)
        self._on_start = on_start
        self._log = log
        self._lock = threading.Lock()
        self.highest = {}               # member id -> highest accepted counter (RAM only)
        self._accepted_us = {}          # member id -> when its highest was accepted (monotonic)
        self._logged_us = deque()       # monotonic times of the rejection logs in the window
        self.suppressed = 0             # rejections not logged since the last one that was
        radio.subscribe(self._datagram)

    # -- sending ------------------------------------------------------------------
    def announce(self, cause: str, event_id: str | None = None) -> int:
        m = self.member
        counter = self._counter.take()
        data = gc.encode_start(self._key, m.group, m.member_id, m.role, m.cert, counter,
                               self._clock.wall_time_us(), event_id, cause)
        for delay_us in RETRANSMIT_AT_US:
            if delay_us == 0:
                self._send(data)
            else:
                self._later(delay_us, lambda: self._send(data))
        return counter

    def _send(self, data: bytes) -> None:
        for peer in self.peers:
            self._radio.send(data, peer)

    def _later(self, delay_us, callback) -> None:
        if hasattr(self._clock, "call_later"):
            self._clock.call_later(delay_us, callback)
        else:
            self._clock.call_at(self._clock.monotonic_us() + delay_us, callback)

    # -- receiving ----------------------------------------------------------------
    def _datagram(self, data: bytes, address: str, now_us: int) -> None:
        with self._lock:
            try:
                msg = self.check(data)
            except gc.GroupReject as rej:
                if rej.reason not in SILENT:
                    self._rejected(rej, address, now_us)
                return
            fields = {k: msg[k] for k in ("group", "from", "role", "counter", "utc_us", "event_id", "cause")}
            fields["address"] = address
            source = f"{'peer' if msg['role'] == 'camera' else 'vehicle'}:{msg['from']}"
            self._on_start(source, fields)
            self._log("accepted", dict(fields, source=source))

    def check(self, data: bytes) -> dict:
        """docs/link.md §8.4 checks 1-9 in order; an accepted message raises the member's
        highest counter. Raises GroupReject naming the first check that fails."""
        msg = gc.parse_start(data)
        if msg["group"] != self.member.group:
            raise gc.GroupReject("other_group", "", msg["from"])
        if msg["from"] == self.member.member_id:
            raise gc.GroupReject("self", "", msg["from"])
        gc.verify_member(msg, self.member.group_pub)
        gc.verify_signature(msg)
        highest = self.highest.get(msg["from"], 0)
        if msg["counter"] == highest:
            # A retransmission arrives within the sender's 150 ms of copies (and some
            # latency); the same bytes later are somebody replaying them, which is logged.
            if self._clock.monotonic_us() - self._accepted_us.get(msg["from"], 0) <= DUPLICATE_WINDOW_US:
                raise gc.GroupReject("duplicate", "", msg["from"])
            raise gc.GroupReject("replay", "a copy of the start already accepted", msg["from"])
        if msg["counter"] < highest:
            raise gc.GroupReject("replay", f"highest accepted {highest}", msg["from"])
        wall_us = self._clock.wall_time_us()
        if wall_us < FIRMWARE_BUILD_UTC_US:
            raise gc.GroupReject("clock_unset", "", msg["from"])
        if abs(msg["utc_us"] - wall_us) > STALE_US:
            raise gc.GroupReject("stale", f"skew {msg['utc_us'] - wall_us} us", msg["from"])
        self.highest[msg["from"]] = msg["counter"]
        self._accepted_us[msg["from"]] = self._clock.monotonic_us()
        return msg

    def _rejected(self, rej: gc.GroupReject, address: str, now_us: int) -> None:
        # At most 10 logs in any 60 s: a flood must not fill the card.
        while self._logged_us and now_us - self._logged_us[0] >= REJECT_WINDOW_US:
            self._logged_us.popleft()
        if len(self._logged_us) >= REJECT_LOGS_PER_WINDOW:
            self.suppressed += 1
            return
        self._logged_us.append(now_us)
        fields = {"reason": rej.reason, "address": str(address)[:64]}
        if rej.claimed_from is not None:
            fields["from"] = rej.claimed_from
        if rej.detail:
            fields["detail"] = rej.detail
        if self.suppressed:
            fields["suppressed"] = self.suppressed
            self.suppressed = 0
        self._log("rejected", fields)
