"""docs/link.md §8 vectors: fixed keys give exact bytes; the accept/reject table holds."""
from __future__ import annotations

import importlib.util
import json

from nacl.signing import SigningKey, VerifyKey

from group_helpers import VECTORS, MemoryStore
from device import group_cert as gc
from device.group import GroupLink, MemberRecord
from simulator.clock import VirtualClock


def _generator():
    spec = importlib.util.spec_from_file_location("group_vectors_generate", VECTORS.parent / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_regenerating_reproduces_the_committed_vectors_byte_for_byte(tmp_path):
    path = _generator().main(str(tmp_path))
    assert open(path, "rb").read() == VECTORS.read_bytes()


def test_keys_certificates_and_signatures_are_exact(vectors):
    for name, k in vectors["keys"].items():
        assert bytes(SigningKey(bytes.fromhex(k["seed"])).verify_key).hex() == k["pub"], name
    group_pub = VerifyKey(bytes.fromhex(vectors["keys"]["group"]["pub"]))
    for member_id, m in vectors["members"].items():
        assert m["signed"] == f"OBWC-group-member-v1\nunit-12\n{member_id}\n{m['role']}\n{m['key']}"
        group_pub.verify(m["signed"].encode(), bytes.fromhex(m["cert"]))
        seed = bytes.fromhex(vectors["keys"]["group"]["seed"])
        assert SigningKey(seed).sign(m["signed"].encode()).signature.hex() == m["cert"]
    for name, m in vectors["messages"].items():
        msg = json.loads(m["datagram"])
        assert set(msg) == gc.START_KEYS
        assert m["signed"] == "\n".join(["OBWC-group-start-v1", msg["group"], msg["from"], msg["role"],
                                         str(msg["counter"]), str(msg["utc_us"]), msg["event_id"] or "",
                                         msg["cause"]])
        seed = bytes.fromhex(vectors["keys"][msg["from"]]["seed"])
        assert SigningKey(seed).sign(m["signed"].encode()).signature.hex() == m["sig"] == msg["sig"]
        # The datagram is compact JSON with sorted keys: re-encoding gives the same bytes.
        assert json.dumps(msg, sort_keys=True, separators=(",", ":")) == m["datagram"]


def test_the_table_through_a_group_link(vectors):
    clock = VirtualClock()
    seen = []

    class Radio:
        def subscribe(self, cb):
            pass

    link = GroupLink(MemberRecord.from_json(vectors["receiver"]),
                     SigningKey(bytes.fromhex(vectors["keys"]["cam-b"]["seed"])), MemoryStore(), Radio(),
                     clock, [], None, None)
    reasons = set()
    for row in vectors["table"]:
        clock.set_wall_time_us(row["receiver_utc_us"])
        try:
            link.check(bytes.fromhex(row["datagram_hex"]))
            got = "accepted"
        except gc.GroupReject as rej:
            got = rej.reason
        seen.append((row["name"], got))
        assert got == row["expect"], row["name"]
        reasons.add(got)
    assert reasons == {"accepted", "malformed", "other_group", "self", "not_member", "bad_signature",
                       "duplicate", "replay", "clock_unset", "stale"}


def test_the_device_key_s_signed_strings_cannot_be_taken_for_one_another():
    # A camera signs group starts with its evidence key: no signed string of one kind may
    # begin with another kind's domain.
    from device.evidence.audit_lines import AUDIT_DOMAIN
    from device.evidence.format import CHECKPOINT_DOMAIN
    from device.evidence.receipt import RECEIPT_DOMAIN
    from device.offload.protocol import REQUEST_DOMAIN, RESPONSE_DOMAIN
    group = [(gc.START_DOMAIN + "\n").encode(), (gc.CERT_DOMAIN + "\n").encode()]
    others = [AUDIT_DOMAIN, CHECKPOINT_DOMAIN, RECEIPT_DOMAIN, REQUEST_DOMAIN, RESPONSE_DOMAIN]
    for g in group:
        for o in others + [x for x in group if x != g]:
            assert not g.startswith(o) and not o.startswith(g)
