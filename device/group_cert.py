"""Group activation messages (docs/link.md §8): membership certificates and `group_start`.

Pure functions over bytes and dicts, no state and no time: device/group.py (GroupLink) runs
the receiver's checks in order, tools/group.py and tools/vehicle.py make the keys. The
signed strings join fields with "\\n"; the charsets below keep "\\n" out of every field, so
one signed string can never be read as another.
"""
from __future__ import annotations

import json
import re

import nacl.exceptions
from nacl.signing import SigningKey, VerifyKey

CERT_DOMAIN = "OBWC-group-member-v1"
START_DOMAIN = "OBWC-group-start-v1"
VERSION = 1
TYPE_START = "group_start"
ROLES = ("camera", "vehicle")
MAX_DATAGRAM_BYTES = 2048          # hal/radio.MAX_DATAGRAM_BYTES: one datagram, no fragments
MAX_COUNTER = (1 << 63) - 1
MAX_UTC_US = (1 << 63) - 1
START_KEYS = frozenset(("v", "type", "group", "from", "role", "key", "cert", "counter", "utc_us",
                        "event_id", "cause", "sig"))

# Group names and member ids: what an audit line and a terminal show on one line.
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# Causes name the local source: "button", "trigger:holster", "pod:pod-1", "lightbar".
CAUSE_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,31}(:[A-Za-z0-9][A-Za-z0-9._-]{0,63})?")
EVENT_ID_PATTERN = re.compile(r"(?:[0-9a-f]{2}){1,32}")
_HEX = {32: re.compile(r"[0-9a-f]{64}"), 64: re.compile(r"[0-9a-f]{128}")}


class GroupReject(Exception):
    """A received datagram is not acted on. `reason` is one of docs/link.md §8.4's names."""

    def __init__(self, reason: str, detail: str = "", claimed_from: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.claimed_from = claimed_from


def valid_id(text: object) -> bool:
    return isinstance(text, str) and ID_PATTERN.fullmatch(text) is not None


def valid_cause(text: object) -> bool:
    return isinstance(text, str) and CAUSE_PATTERN.fullmatch(text) is not None


def valid_event_id(value: object) -> bool:
    return value is None or (isinstance(value, str) and EVENT_ID_PATTERN.fullmatch(value) is not None)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)   # JSON true is not 1


def cert_message(group: str, member_id: str, role: str, member_pub: bytes) -> bytes:
    return "\n".join((CERT_DOMAIN, group, member_id, role, member_pub.hex())).encode("ascii")


def sign_cert(group_key: SigningKey, group: str, member_id: str, role: str, member_pub: bytes) -> bytes:
    for name, value in (("group", group), ("member id", member_id)):
        if not valid_id(value):
            raise ValueError(f"{name} {value!r} is not 1..64 characters of A-Z a-z 0-9 . _ - "
                             "starting with a letter or digit")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    return group_key.sign(cert_message(group, member_id, role, member_pub)).signature


def cert_verifies(group_pub: bytes, group: str, member_id: str, role: str, member_pub: bytes,
                  cert: bytes) -> bool:
    if role not in ROLES:
        return False
    try:
        VerifyKey(group_pub).verify(cert_message(group, member_id, role, member_pub), cert)
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
        return False
    return True


def start_message(group: str, sender: str, role: str, counter: int, utc_us: int,
                  event_id: str | None, cause: str) -> bytes:
    return "\n".join((START_DOMAIN, group, sender, role, str(counter), str(utc_us),
                      event_id or "", cause)).encode("ascii")


def encode_start(signing_key: SigningKey, group: str, sender: str, role: str, cert: bytes,
                 counter: int, utc_us: int, event_id: str | None, cause: str) -> bytes:
    """One `group_start` datagram: compact JSON, keys sorted, so the bytes are reproducible."""
    if not valid_cause(cause):
        raise ValueError(f"cause {cause!r} is not a valid group-start cause")
    if not valid_event_id(event_id):
        raise ValueError("event_id must be lowercase hex (2..64 digits) or None")
    if not 1 <= counter <= MAX_COUNTER or not 0 <= utc_us <= MAX_UTC_US:
        raise ValueError("counter or utc_us out of range")
    sig = signing_key.sign(start_message(group, sender, role, counter, utc_us, event_id, cause)).signature
    body = {"v": VERSION, "type": TYPE_START, "group": group, "from": sender, "role": role,
            "key": bytes(signing_key.verify_key).hex(), "cert": cert.hex(), "counter": counter,
            "utc_us": utc_us, "event_id": event_id, "cause": cause, "sig": sig.hex()}
    data = json.dumps(body, sort_keys=True, separators=(",", ":")).encode("ascii")
    assert len(data) <= MAX_DATAGRAM_BYTES   # the charsets bound every field
    return data


def _no_duplicate_keys(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        # Two readers of one message must never see different values for one key.
        raise ValueError("duplicate key")
    return dict(pairs)


def _no_constants(name):
    raise ValueError(f"{name} is not JSON")


def parse_start(data: bytes) -> dict:
    """Check 1 (`malformed`) of docs/link.md §8.4. Returns the message's fields; raises
    GroupReject("malformed") for anything else, never another exception."""
    if not isinstance(data, (bytes, bytearray, memoryview)) or not 1 <= len(data) <= MAX_DATAGRAM_BYTES:
        raise GroupReject("malformed", "size")
    try:
        text = bytes(data).decode("utf-8")
        msg = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise GroupReject("malformed", "not JSON") from None
    if not isinstance(msg, dict) or set(msg) != START_KEYS:
        raise GroupReject("malformed", "keys")
    claimed = msg["from"] if valid_id(msg["from"]) else None

    def bad(detail):
        return GroupReject("malformed", detail, claimed)

    if not _is_int(msg["v"]) or msg["v"] != VERSION:
        raise bad("version")
    if msg["type"] != TYPE_START:
        raise bad("type")
    if not valid_id(msg["group"]) or claimed is None:
        raise bad("group or from")
    # A string role outside ROLES is `not_member` (check 4), anything else is malformed.
    if not isinstance(msg["role"], str) or not ID_PATTERN.fullmatch(msg["role"]):
        raise bad("role")
    for name, size in (("key", 32), ("cert", 64), ("sig", 64)):
        if not isinstance(msg[name], str) or not _HEX[size].fullmatch(msg[name]):
            raise bad(name)
    if not _is_int(msg["counter"]) or not 1 <= msg["counter"] <= MAX_COUNTER:
        raise bad("counter")
    if not _is_int(msg["utc_us"]) or not 0 <= msg["utc_us"] <= MAX_UTC_US:
        raise bad("utc_us")
    if not valid_event_id(msg["event_id"]):
        raise bad("event_id")
    if not valid_cause(msg["cause"]):
        raise bad("cause")
    return msg


def verify_member(msg: dict, group_pub: bytes) -> None:
    """Check 4 (`not_member`): the certificate binds key, id, role and group."""
    if not cert_verifies(group_pub, msg["group"], msg["from"], msg["role"], bytes.fromhex(msg["key"]),
                         bytes.fromhex(msg["cert"])):
        raise GroupReject("not_member", "certificate", msg["from"])


def verify_signature(msg: dict) -> None:
    """Check 5 (`bad_signature`): the member's own key signed these exact fields."""
    signed = start_message(msg["group"], msg["from"], msg["role"], msg["counter"], msg["utc_us"],
                           msg["event_id"], msg["cause"])
    try:
        VerifyKey(bytes.fromhex(msg["key"])).verify(signed, bytes.fromhex(msg["sig"]))
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
        raise GroupReject("bad_signature", "", msg["from"]) from None
