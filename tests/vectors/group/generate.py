"""Generate the group-activation test vectors (docs/link.md §8).

Usage: python tests/vectors/group/generate.py [OUT_DIR]      (default: this directory)

Writes vectors.json. Ed25519 (RFC 8032) is deterministic, so the same fixed seeds give the
same bytes on every run: tests/group/test_vectors.py checks that regenerating reproduces the
committed file byte for byte, and runs the table through device.group.GroupLink.

    keys:      the fixed Ed25519 seeds (hex) and their public keys
    members:   each member's certificate: the signed string (as text) and the signature
    messages:  group_start datagrams: the signed string, the signature, the datagram bytes
    table:     datagrams in order, as receiver "cam-b" of group "unit-12" sees them; each
               with the receiver's wall clock (utc_us) and the expected result ("accepted"
               or the reason). The receiver's state carries from row to row (the highest
               accepted counter per member), as on a device.

Seeds: group authority bytes([0x11])*32, cam-a 0x21, cam-b 0x22, car-7 (vehicle) 0x31,
an outsider's group authority 0x41 (same group name "unit-12", different key),
group "unit-99" authority 0x51 and its member cam-z 0x52.
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..")))

from nacl.signing import SigningKey  # noqa: E402

from device import group_cert as gc  # noqa: E402

GROUP = "unit-12"
W = 1_767_225_600_000_000 + 3_600_000_000      # 2026-01-01T01:00:00Z, the receiver's wall clock
EVENT = "0123456789abcdef0123456789abcdef"
SEEDS = {"group": 0x11, "cam-a": 0x21, "cam-b": 0x22, "car-7": 0x31, "outsider-group": 0x41,
         "unit-99": 0x51, "cam-z": 0x52}


def key(name):
    return SigningKey(bytes([SEEDS[name]]) * 32)


def cert(authority, group, member_id, role, member_key):
    return gc.sign_cert(key(authority), group, member_id, role, bytes(key(member_key).verify_key))


def start(member, role, counter, utc_us, cause, event_id=None, group=GROUP, authority="group",
          cert_role=None):
    c = cert(authority, group, member, cert_role or role, member)
    return gc.encode_start(key(member), group, member, role, c, counter, utc_us, event_id, cause)


def edit(data, **changes):
    """A datagram with fields replaced after signing (JSON re-encoded the same way)."""
    msg = json.loads(data)
    for name, value in changes.items():
        if value is _DROP:
            del msg[name]
        else:
            msg[name] = value
    return json.dumps(msg, sort_keys=True, separators=(",", ":")).encode("utf-8")


def resign(member, data, **changes):
    """Fields replaced and then signed again by the member's own key (only the cert is off)."""
    msg = json.loads(edit(data, **changes))
    signed = gc.start_message(msg["group"], msg["from"], msg["role"], msg["counter"], msg["utc_us"],
                              msg["event_id"], msg["cause"])
    msg["sig"] = key(member).sign(signed).signature.hex()
    return json.dumps(msg, sort_keys=True, separators=(",", ":")).encode("utf-8")


_DROP = object()


def build():
    a5 = start("cam-a", "camera", 5, W - 120_000, "button", EVENT)
    v1 = start("car-7", "vehicle", 1, W + 40_000, "lightbar")
    rows = [
        ("a camera's start", a5, W, "accepted"),
        ("the same datagram again (a retransmission)", a5, W + 50_000, "duplicate"),
        ("a vehicle's start", v1, W, "accepted"),
        ("an older counter from cam-a", start("cam-a", "camera", 4, W, "button"), W, "replay"),
        ("5 s + 1 µs old", start("cam-a", "camera", 6, W - 5_000_001, "button"), W, "stale"),
        ("6 s in the future", start("cam-a", "camera", 6, W + 6_000_000, "button"), W, "stale"),
        ("exactly 5 s old", start("cam-a", "camera", 6, W - 5_000_000, "trigger:holster"), W, "accepted"),
        ("receiver's clock before the firmware build", start("cam-a", "camera", 7, W, "pod:pod-1"),
         1_700_000_000_000_000, "clock_unset"),
        ("the same start once the receiver's clock is set", start("cam-a", "camera", 7, W, "pod:pod-1"),
         W, "accepted"),
        ("another group", start("cam-z", "camera", 1, W, "button", group="unit-99", authority="unit-99"),
         W, "other_group"),
        ("the receiver's own start", start("cam-b", "camera", 1, W, "button"), W, "self"),
        ("certified by another authority under the same group name",
         start("cam-a", "camera", 8, W, "button", authority="outsider-group"), W, "not_member"),
        ("a camera claiming the vehicle role", start("cam-a", "vehicle", 8, W, "lightbar", cert_role="camera"),
         W, "not_member"),
        ("a role that is neither camera nor vehicle",
         resign("cam-a", start("cam-a", "camera", 8, W, "button"), role="admin"), W, "not_member"),
        ("cause altered after signing", edit(start("cam-a", "camera", 8, W, "button"), cause="lightbar"),
         W, "bad_signature"),
        ("counter altered after signing", edit(start("cam-a", "camera", 8, W, "button"), counter=9),
         W, "bad_signature"),
        ("another member's key and certificate, cam-a's id",
         edit(start("car-7", "vehicle", 2, W, "lightbar"), **{"from": "cam-a"}), W, "not_member"),
        ("v = 2", edit(a5, v=2), W, "malformed"),
        ("an extra key", edit(a5, extra=1), W, "malformed"),
        ("a missing key", edit(a5, event_id=_DROP), W, "malformed"),
        ("counter 0", edit(a5, counter=0), W, "malformed"),
        ("counter true", edit(a5, counter=True), W, "malformed"),
        ("counter 2^63", edit(a5, counter=1 << 63), W, "malformed"),
        ("utc_us as a string", edit(a5, utc_us=str(W)), W, "malformed"),
        ("key in upper case", edit(a5, key=json.loads(a5)["key"].upper()), W, "malformed"),
        ("event_id of odd length", edit(a5, event_id="abc"), W, "malformed"),
        ("a newline in the cause", edit(a5, cause="button\nlightbar"), W, "malformed"),
        ("a space in from", edit(a5, **{"from": "cam a"}), W, "malformed"),
        ("type group_stop", edit(a5, type="group_stop"), W, "malformed"),
        ("not JSON", b"\x00\x01start", W, "malformed"),
        ("a JSON array", b"[1,2,3]", W, "malformed"),
        ("a duplicated key", a5[:-1] + b',"v":1}', W, "malformed"),
        ("2049 bytes", a5 + b" " * (2049 - len(a5)), W, "malformed"),
        ("empty", b"", W, "malformed"),
        ("a new counter from cam-a, after all of the above", start("cam-a", "camera", 8, W, "button"),
         W, "accepted"),
    ]
    members = {}
    for member_id, role in (("cam-a", "camera"), ("cam-b", "camera"), ("car-7", "vehicle")):
        pub = bytes(key(member_id).verify_key)
        members[member_id] = {"role": role, "key": pub.hex(),
                              "signed": gc.cert_message(GROUP, member_id, role, pub).decode("ascii"),
                              "cert": cert("group", GROUP, member_id, role, member_id).hex()}
    messages = {}
    for name, data in (("cam-a counter 5", a5), ("car-7 counter 1", v1)):
        msg = json.loads(data)
        messages[name] = {"signed": gc.start_message(msg["group"], msg["from"], msg["role"], msg["counter"],
                                                     msg["utc_us"], msg["event_id"], msg["cause"]).decode("ascii"),
                          "sig": msg["sig"], "datagram": data.decode("ascii")}
    return {
        "comment": "docs/link.md §8 group activation vectors; regenerate with generate.py",
        "group": GROUP,
        "keys": {name: {"seed": (bytes([b]) * 32).hex(), "pub": bytes(key(name).verify_key).hex()}
                 for name, b in SEEDS.items()},
        "receiver": {"member_id": "cam-b", "group": GROUP, "group_pub": bytes(key("group").verify_key).hex(),
                     "role": "camera", "cert": members["cam-b"]["cert"]},
        "members": members,
        "messages": messages,
        "table": [{"name": n, "datagram_hex": d.hex(), "receiver_utc_us": w, "expect": e} for n, d, w, e in rows],
    }


def main(out_dir=os.path.dirname(os.path.abspath(__file__))):
    path = os.path.join(out_dir, "vectors.json")
    with open(path, "w", encoding="ascii") as f:
        f.write(json.dumps(build(), indent=1, ensure_ascii=True) + "\n")
    return path


if __name__ == "__main__":
    print(main(*sys.argv[1:]))
