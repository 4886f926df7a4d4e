"""Property tests of the group_start parser and checks: whatever arrives, the only outcome is
a named rejection or an acceptance, and nothing altered from a valid message is accepted."""
from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device import group_cert as gc
from group_helpers import Ether, Member, start
from simulator.clock import VirtualClock

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
REASONS = {"malformed", "other_group", "self", "not_member", "bad_signature", "duplicate", "replay",
           "clock_unset", "stale"}
VALID = json.loads(start("cam-a", 5, event_id="ab" * 16))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(1 << 70), max_value=1 << 70) | st.floats()
    | st.text(max_size=80) | st.sampled_from(["", "cam-a", "unit-12", "camera", "vehicle", "button",
                                               VALID["key"], VALID["sig"], VALID["cert"], "AB" * 16]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)


def _receiver():
    clock = VirtualClock(start_wall_us=VALID["utc_us"])
    return Member(Ether(clock), "cam-b")


def _outcome(cam, data):
    try:
        cam.link.check(data)
        return "accepted"
    except gc.GroupReject as rej:
        assert rej.reason in REASONS
        assert rej.claimed_from is None or gc.valid_id(rej.claimed_from)
        return rej.reason


@SETTINGS
@given(st.binary(max_size=2100))
def test_random_bytes_are_malformed(data):
    assert _outcome(_receiver(), data) == "malformed"


@SETTINGS
@given(st.sampled_from(sorted(gc.START_KEYS)), json_values)
def test_one_field_replaced_is_never_accepted(name, value):
    cam = _receiver()
    msg = dict(VALID, **{name: value})
    data = json.dumps(msg, allow_nan=True).encode("utf-8", "surrogatepass")
    if msg == VALID:
        return
    assert _outcome(cam, data) != "accepted"
    # The field-level outcome also holds through the radio path: no exception, no start.
    cam.radio.receive(data, "10.0.0.1:1")
    assert cam.starts == []


@SETTINGS
@given(st.sets(st.sampled_from(sorted(gc.START_KEYS)), min_size=1), json_values)
def test_keys_removed_or_added_are_malformed(dropped, extra):
    msg = {k: v for k, v in VALID.items() if k not in dropped}
    assert _outcome(_receiver(), json.dumps(msg).encode()) == "malformed"
    msg = dict(VALID, extra=extra)
    assert _outcome(_receiver(), json.dumps(msg).encode()) == "malformed"


@SETTINGS
@given(st.integers(min_value=0, max_value=600), st.binary(min_size=1, max_size=1))
def test_one_byte_changed_in_a_valid_datagram_is_never_accepted(index, byte):
    data = bytearray(start("cam-a", 5, event_id="ab" * 16))
    index %= len(data)
    if data[index] == byte[0]:
        return
    data[index] = byte[0]
    cam = _receiver()
    assert _outcome(cam, bytes(data)) != "accepted"


@SETTINGS
@given(st.integers(min_value=1, max_value=3000))
def test_deep_nesting_is_malformed(depth):
    assert _outcome(_receiver(), b"[" * depth + b"]" * depth) == "malformed"
    assert _outcome(_receiver(), b'{"a":' * depth + b"1" + b"}" * depth) == "malformed"


def test_the_unaltered_message_is_accepted():
    assert _outcome(_receiver(), json.dumps(VALID).encode()) == "accepted"
