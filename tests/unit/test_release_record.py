"""The release record's signature (docs/release.md §4), pinned by tests/vectors/release/."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from tools.release.record import RecordError, check_signature, parse_record, read_record, record_bytes, sign_record

VECTOR = Path(__file__).resolve().parents[1] / "vectors" / "release" / "record-v1.json"
KEY = SigningKey(bytes(range(32)))


def test_the_vector_verifies_and_signing_it_again_gives_the_same_bytes():
    record = read_record(str(VECTOR))
    check_signature(record, KEY.verify_key, "vector")
    body = {k: v for k, v in record.items() if k not in ("signature", "format", "version", "kind", "release_key")}
    assert record_bytes(sign_record(KEY, body)) == VECTOR.read_bytes()


def _paths(value, path=()):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, path + (i,))
    else:
        yield path


LEAVES = [p for p in _paths(json.loads(VECTOR.read_text())) if p[0] not in ("signature",)]


@pytest.mark.parametrize("path", LEAVES, ids=lambda p: "/".join(map(str, p)))
def test_a_change_to_any_member_breaks_the_signature(path):
    record = json.loads(VECTOR.read_text())
    holder = record
    for step in path[:-1]:
        holder = holder[step]
    old = holder[path[-1]]
    holder[path[-1]] = (not old) if isinstance(old, bool) else (old + 1 if isinstance(old, (int, float))
                                                                 else ("x" if old is None else str(old) + "x"))
    with pytest.raises(RecordError):
        check_signature(parse_record(json.dumps(record).encode(), "changed"), KEY.verify_key, "changed")


def test_another_release_key_is_named_as_such():
    record = read_record(str(VECTOR))
    with pytest.raises(RecordError, match="another release key"):
        check_signature(record, SigningKey(bytes(32)).verify_key, "vector")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.builds(lambda n: VECTOR.read_bytes()[:n], st.integers(0, len(VECTOR.read_bytes()))))
def test_garbage_and_truncations_are_refused_in_one_line(raw):
    try:
        record = parse_record(raw, "r.json")
        check_signature(record, KEY.verify_key, "r.json")
    except RecordError as exc:
        assert "\n" not in str(exc)
    else:
        assert raw.strip() == VECTOR.read_bytes().strip()   # whitespace around JSON is not a change


def test_a_repeated_member_is_refused():
    """Two JSON readers may keep different copies of a repeated member: refused outright."""
    text = VECTOR.read_text().replace('"reason": ', '"reason": "something else",\n  "reason": ', 1)
    with pytest.raises(RecordError, match="not a JSON release record"):
        parse_record(text.encode(), "r.json")


@pytest.mark.parametrize("masks", [
    [[15, 0.5, [[-10, 10, 40, 40, "blur", "region"]]]],
    [[15, 0.5, [[10, 10, 0, 40, "blur", "region"]]]],
    [[15, 0.5, [[10, 10, 40, 40, "smudge", "region"]]]],
    [[16, 0.5, []], [15, 0.4, []]],
    [[15, float("nan"), []]],
    {"15": []},
])
def test_masks_that_could_be_read_two_ways_are_refused(masks):
    record = json.loads(VECTOR.read_text())
    record["masks"] = masks
    with pytest.raises(RecordError, match="masks|not a JSON release record"):
        parse_record(json.dumps(record).encode(), "r.json")


@pytest.mark.parametrize("member, value", [("release", []), ("release", {"mp4": 3}), ("original", "x"),
                                           ("original", {"mp4": "a.mp4", "event_id": "e", "segments": {}})])
def test_members_read_as_objects_must_be_objects(member, value):
    record = json.loads(VECTOR.read_text())
    record[member] = value
    with pytest.raises(RecordError, match=member):
        parse_record(json.dumps(record).encode(), "r.json")
