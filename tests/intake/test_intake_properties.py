"""Every parser of network input at the intake, under hypothesis (the app in-process on a
file store, through Starlette's test client): whatever the path, headers and body, no
server error, no hang, and nothing stored unless a request is signed by an enrolled device
and well formed."""
from __future__ import annotations

import os
import secrets
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from nacl.signing import SigningKey
from starlette.testclient import TestClient

from device.evidence.audit_lines import sign_line
from device.offload.protocol import H_PART_BYTES, H_SEGMENT_SIZE, REFUSALS, sha256_hex, sign_request
from tools.intake.app import build_app
from tools.intake.config import enroll_device, init_intake, load_intake
from tools.intake.store import FileStore
from device.evidence.keys import DEVICE_PUBLIC, write_public

KEY = SigningKey(bytes(range(1, 33)))
DEVICE = bytes(KEY.verify_key).hex()


@pytest.fixture(scope="module")
def app_client(tmp_path_factory):
    root = tmp_path_factory.mktemp("props")
    init_intake(str(root / "intake"))
    pub = str(root / "device.pub")
    write_public(pub, DEVICE_PUBLIC, bytes(KEY.verify_key))
    enroll_device(str(root / "intake"), pub)
    store = FileStore(str(root / "store"))
    client = TestClient(build_app(load_intake(str(root / "intake")), store))
    client.store = store
    return client


def _stored(store: FileStore) -> list[str]:
    return [k for k in store.list("devices/")]


def _signed(method: str, path: str, body: bytes) -> dict:
    return sign_request(KEY, method, path, sha256_hex(body), time.time_ns() // 1000, secrets.token_hex(16))


PATH_TEXT = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters="?#"), max_size=80)
SEGMENTS = st.one_of(PATH_TEXT, st.sampled_from(["state", "receipt", "audit/1/0", "audit/0/00",
                                                            f"segments/1/{'a' * 64}/parts/0",
                                                            f"segments/0/{'a' * 64}/commit", "segments/1//commit"]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(["GET", "PUT", "POST", "DELETE"]), tail=SEGMENTS,
       headers=st.dictionaries(st.sampled_from(["OBWC-Device", "OBWC-Time", "OBWC-Nonce", "OBWC-Signature",
                                                H_SEGMENT_SIZE, H_PART_BYTES]),
                               st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=130)),
       body=st.binary(max_size=2000))
def test_unsigned_garbage_is_refused_by_name(app_client, method, tail, headers, body):
    before = _stored(app_client.store)
    response = app_client.request(method, f"/v1/devices/{DEVICE}/{tail}", headers=headers, content=body)
    assert response.status_code in set(REFUSALS.values()) | {405}
    if response.status_code != 405:
        assert response.json()["error"] in REFUSALS
    assert _stored(app_client.store) == before


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.binary(max_size=3000),
                      st.lists(st.dictionaries(st.sampled_from(["n", "prev", "type", "x"]),
                                               st.one_of(st.integers(-2, 5), st.text(max_size=70), st.none()),
                                               max_size=4), min_size=1, max_size=4)
                      .map(lambda entries: b"".join(sign_line(KEY, e) + b"\n" for e in entries))),
       file=st.integers(0, 3), offset=st.sampled_from([0, 1, 10**11]))
def test_signed_audit_bodies_are_checked_line_by_line(app_client, body, file, offset):
    """Signed by the enrolled device, but not entries that chain: never a server error, and
    only a whole, signed, chained set of lines is ever stored."""
    path = f"/v1/devices/{DEVICE}/audit/{file}/{offset}"
    response = app_client.put(path, headers=_signed("PUT", path, body), content=body)
    assert response.status_code in (200, 400, 409, 413, 422)
    if response.status_code == 200:   # only entries of a known type, each signed and chained
        from device.evidence.audit_verify import read_audit_file
        from nacl.signing import VerifyKey
        run = read_audit_file("x", body, VerifyKey(bytes(KEY.verify_key)))
        assert run.problem is None and run.entries and not run.tail


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(-1, 2**40), part_bytes=st.integers(-1, 2**25), index=st.integers(0, 10**6),
       body=st.binary(max_size=40_000))
def test_signed_parts_with_any_geometry_are_refused_or_stored_whole(app_client, size, part_bytes, index, body):
    sha = "b" * 64
    path = f"/v1/devices/{DEVICE}/segments/7/{sha}/parts/{index}"
    headers = {**_signed("PUT", path, body), H_SEGMENT_SIZE: str(size), H_PART_BYTES: str(part_bytes)}
    response = app_client.put(path, headers=headers, content=body)
    assert response.status_code in (200, 400, 409, 413)
    if response.status_code == 200:
        assert 16384 <= part_bytes <= 8 * 1024 * 1024 and 1 <= size
        assert len(body) == min(size, (index + 1) * part_bytes) - index * part_bytes
    commit = f"/v1/devices/{DEVICE}/segments/7/{sha}/commit"
    response = app_client.post(commit, headers=_signed("POST", commit, b""))
    assert response.status_code in (409, 422)        # never accepted: "b"*64 is no file's hash
