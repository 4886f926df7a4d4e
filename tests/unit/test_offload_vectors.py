"""The offload protocol's test vectors (docs/offload.md §10) match the code, and the
checks refuse what they must: a flipped byte anywhere in a signed request or response,
a replay moved to another path or time, a response from an untrusted intake."""
from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings, strategies as st
from nacl.signing import SigningKey

from device.offload import protocol as p

VECTORS = os.path.join(os.path.dirname(__file__), "..", "vectors", "offload")


def _load() -> dict:
    with open(os.path.join(VECTORS, "messages.json")) as f:
        return json.load(f)


def test_vectors_are_what_the_code_makes():
    import importlib.util
    spec = importlib.util.spec_from_file_location("offload_vectors", os.path.join(VECTORS, "generate.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.build() == _load()


def test_vector_request_verifies_and_names_its_device():
    v = _load()
    r = v["request"]
    device, nonce = p.check_request(r["headers"], r["method"], r["path"], r["body_sha256"], r["utc_us"])
    assert (device, nonce) == (v["device_key"], r["nonce"])
    assert bytes.fromhex(r["signed_bytes_hex"]) == p.request_message(
        r["method"], r["path"], r["utc_us"], r["nonce"], r["body_sha256"])


def test_vector_response_verifies_only_for_its_request_and_a_trusted_key():
    v = _load()
    r = v["response"]
    body = bytes.fromhex(r["body_hex"])
    intake = bytes.fromhex(v["intake_key"])
    assert p.check_response(r["headers"], r["nonce"], r["status"], body, [intake]) == intake
    with pytest.raises(p.ResponseError, match="does not trust"):
        p.check_response(r["headers"], r["nonce"], r["status"], body, [bytes(32)])
    with pytest.raises(p.ResponseError):    # moved to another request
        p.check_response(r["headers"], "f" * 32, r["status"], body, [intake])
    with pytest.raises(p.ResponseError):    # status changed
        p.check_response(r["headers"], r["nonce"], 409, body, [intake])
    with pytest.raises(p.ResponseError):    # body changed
        p.check_response(r["headers"], r["nonce"], r["status"], body + b" ", [intake])
    with pytest.raises(p.ResponseError, match="not signed"):
        p.check_response({}, r["nonce"], r["status"], body, [intake])


def test_vector_receipt_checks():
    from device.evidence.receipt import check_receipt
    v = _load()
    segs, audit = check_receipt(v["receipt"]["object"], v["device_key"], [bytes.fromhex(v["intake_key"])])
    assert segs == (3, "ab" * 32, 7) and audit == (41, "cd" * 32)


@pytest.mark.parametrize("change", ["method", "path", "utc_us", "body"])
def test_a_signed_request_cannot_be_moved(change):
    v = _load()
    r = dict(v["request"])
    method, path, utc_us, body_sha = r["method"], r["path"], r["utc_us"], r["body_sha256"]
    headers = dict(r["headers"])
    if change == "method":
        method = "POST"
    elif change == "path":
        path = path.replace("/parts/0", "/parts/1")
    elif change == "utc_us":
        headers[p.H_TIME] = str(utc_us + 1)
        utc_us += 1
    else:
        body_sha = p.sha256_hex(b"other")
    with pytest.raises(p.ProtocolError) as err:
        p.check_request(headers, method, path, body_sha, utc_us)
    assert err.value.reason == "bad_signature"


def test_stale_request_is_refused_with_its_reason():
    r = _load()["request"]
    with pytest.raises(p.ProtocolError) as err:
        p.check_request(r["headers"], r["method"], r["path"], r["body_sha256"], r["utc_us"] + 301_000_000)
    assert err.value.reason == "stale_request" and err.value.status == 401


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from([p.H_DEVICE, p.H_TIME, p.H_NONCE, p.H_SIGNATURE, "x"]),
                       st.text(max_size=140), max_size=5))
def test_malformed_headers_are_refused_by_name(headers):
    """No traceback and nothing accepted, whatever the headers hold."""
    with pytest.raises(p.ProtocolError) as err:
        p.check_request(headers, "GET", "/v1/devices/x/state", p.sha256_hex(b""), 0)
    assert err.value.reason in ("malformed_request", "bad_signature", "stale_request")


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=63), st.integers(1, 255))
def test_any_flipped_signature_byte_is_refused(position, flip):
    key = SigningKey(bytes(32))
    nonce = "ab" * 16
    headers = p.sign_request(key, "GET", "/v1/devices/d/state", p.sha256_hex(b""), 10, nonce)
    sig = bytearray(bytes.fromhex(headers[p.H_SIGNATURE]))
    sig[position] ^= flip
    headers[p.H_SIGNATURE] = sig.hex()
    with pytest.raises(p.ProtocolError) as err:
        p.check_request(headers, "GET", "/v1/devices/d/state", p.sha256_hex(b""), 10)
    assert err.value.reason == "bad_signature"


def test_vector_refusal_and_empty_receipt():
    from device.evidence.receipt import check_receipt
    v = _load()
    r = v["refusal"]
    intake = bytes.fromhex(v["intake_key"])
    assert p.check_response(r["headers"], r["nonce"], r["status"], bytes.fromhex(r["body_hex"]), [intake]) == intake
    assert json.loads(bytes.fromhex(r["body_hex"]))["error"] in p.REFUSALS
    assert check_receipt(v["receipt_covering_nothing"]["object"], v["device_key"], [intake]) == (None, None)
