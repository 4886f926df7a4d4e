import json

import pytest
from hypothesis import given, strategies as st

from device.link import frame as fr
from pod import pairing as pf

SECRET = bytes(range(32))


def good():
    return json.loads(pf.record_text("pod-1", SECRET, "cam-1", "192.168.4.1:4770"))


def test_good_record_parses():
    p = pf.parse(json.dumps(good()))
    assert p.pairing.pod_id == "pod-1" and p.pairing.secret == SECRET
    assert p.pairing.link_id == fr.link_id_of(SECRET)
    assert (p.camera_id, p.host, p.port, p.camera_address) == ("cam-1", "192.168.4.1", 4770, "192.168.4.1:4770")


@pytest.mark.parametrize("change, message", [
    ({"secret": None}, "secret must be 64 hex digits"),
    ({"secret": "zz" * 32}, "secret must be 64 hex digits"),
    ({"link_id": "0011"}, "link_id must be 8 hex digits"),
    ({"link_id": "00112233"}, "link_id does not match the secret"),
    ({"pod_id": "Pod"}, "pod_id"),
    ({"camera_id": ""}, "camera_id"),
    ({"camera_address": "cam"}, "host:port"),
    ({"camera_address": "cam:0"}, "port must be 1..65535"),
    ({"camera_address": "cam:\u0661\u0662"}, "port must be 1..65535"),   # Arabic-Indic digits
    ({"camera_address": ":80"}, "no valid host"),
])
def test_each_mistake_is_one_clear_line(change, message):
    record = good()
    record.update(change)
    with pytest.raises(pf.PairingError) as info:
        pf.parse(json.dumps(record))
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("name", pf.FIELDS)
def test_missing_field_named(name):
    record = good()
    del record[name]
    with pytest.raises(pf.PairingError, match="missing field %s" % name):
        pf.parse(json.dumps(record))


@pytest.mark.parametrize("text, message", [(None, "no pairing file"), ("{", "not valid JSON"),
                                           ("[]", "JSON object"), ("", "not valid JSON")])
def test_garbled_file(text, message):
    with pytest.raises(pf.PairingError, match=message):
        pf.parse(text)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=80),
                           lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3),
                           max_leaves=6)


@given(st.dictionaries(st.sampled_from(pf.FIELDS), json_values) | st.text(max_size=200))
def test_anything_else_is_a_pairing_error_never_a_traceback(value):
    text = value if isinstance(value, str) else json.dumps(value)
    try:
        p = pf.parse(text)
    except pf.PairingError as exc:
        assert str(exc).startswith("link.json: ") and "\n" not in str(exc)
        return
    # Accepted only if every field is well formed (random input essentially never is).
    assert fr.link_id_of(p.pairing.secret) == p.pairing.link_id


@given(st.sampled_from(pf.FIELDS), json_values)
def test_one_field_replaced_by_junk(name, junk):
    record = good()
    record[name] = junk
    try:
        p = pf.parse(json.dumps(record))
    except pf.PairingError:
        return
    assert p.pairing.link_id == fr.link_id_of(p.pairing.secret)
    assert 1 <= p.port <= 65535
