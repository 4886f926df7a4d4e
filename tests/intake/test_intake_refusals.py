"""Bad actors and bad networks (issue 7 item 6, docs/offload.md §6): a stranger's device, a
replayed or stale request, a malformed or oversized request, a truncated or tampered or
spliced upload, a rolled-back history — each refused by name, logged, and nothing that was
already accepted changes."""
from __future__ import annotations

import hashlib
import os
import secrets
import socket
import time

import pytest

from device.offload.protocol import H_PART_BYTES, H_SEGMENT_SIZE, sha256_hex, sign_request
from intake_client import Client, card_files, upload_card
from conftest import enroll, signing_key


def _held(client: Client) -> tuple:
    state = client.state()
    return state["segments"], state["audit"]


@pytest.fixture(scope="module")
def served(tmp_path_factory, forked):
    """An intake holding the whole of history A of the forked device. Shared by the tests
    of this module, which each check that their refusal changed nothing."""
    from intake_client import Server
    from tools.intake.config import enroll_device, init_intake
    a, _ = forked
    root = tmp_path_factory.mktemp("refusals")
    init_intake(str(root / "intake"))
    enroll_device(str(root / "intake"), a.pub_path)
    server = Server(str(root / "intake"), "file://" + str(root / "store"), str(root / "intake.log")).start()
    client = Client(server.url, signing_key(a.directory))
    upload_card(client, a.storage)
    yield server, client
    assert server.stop() == 0


def _segment(storage: str, seq: int) -> bytes:
    with open(dict(card_files(storage)[1])[seq], "rb") as f:
        return f.read()


def _refused(result, status: int, reason: str) -> dict:
    got_status, body = result
    assert (got_status, body.get("error")) == (status, reason), body
    return body


def test_a_strangers_device_is_refused_before_anything_else(served, recorded, device_key):
    server, client = served
    stranger = Client(server.url, device_key)     # signed correctly, but never enrolled
    _refused(stranger.call("GET", "state"), 403, "not_enrolled")
    _refused(stranger.upload(1, _segment(recorded.storage, 1)), 403, "not_enrolled")
    assert any(line["reason"] == "not_enrolled" for line in server.access_log())


def test_a_replayed_request_is_refused_and_changes_nothing(served, forked):
    server, client = served
    before = _held(client)
    nonce = secrets.token_hex(16)
    utc_us = time.time_ns() // 1000
    assert client.call("GET", "state", nonce=nonce, utc_us=utc_us)[0] == 200
    _refused(client.call("GET", "state", nonce=nonce, utc_us=utc_us), 409, "replayed_request")
    assert _held(client) == before


def test_a_stale_request_names_the_intakes_time(served):
    server, client = served
    body = _refused(client.call("GET", "state", utc_us=time.time_ns() // 1000 - 600_000_000), 401, "stale_request")
    assert abs(body["intake_utc_us"] - time.time_ns() // 1000) < 60_000_000


def test_a_bad_signature_is_refused(served):
    server, client = served
    path = f"/v1/devices/{client.device}/state"
    headers = sign_request(client.key, "GET", path, sha256_hex(b""), time.time_ns() // 1000, secrets.token_hex(16))
    headers["OBWC-Signature"] = "0" * 128
    status, body = _raw(server, "GET", path, headers, b"")
    assert (status, body["error"]) == (401, "bad_signature")


def test_malformed_requests_are_refused_by_name(served):
    server, client = served
    assert _raw(server, "GET", f"/v1/devices/{client.device}/state", {}, b"")[1]["error"] == "malformed_request"
    assert _refused(client.call("GET", "nothing-here"), 404, "not_found")
    other = "ab" * 32
    status, body, _ = client.raw("GET", f"/v1/devices/{other}/state")
    assert (status, body["error"]) == (400, "malformed_request")
    _refused(client.call("PUT", f"segments/1/{'0' * 64}/parts/0", b"x" * 16384,
                         {H_SEGMENT_SIZE: "lots", H_PART_BYTES: "16384"}), 400, "malformed_request")
    _refused(client.call("POST", f"segments/1/{'0' * 64}/commit", b"{}"), 413, "too_large")   # takes no body


def test_an_oversized_body_is_refused_before_it_is_read(served):
    server, client = served
    path = f"/v1/devices/{client.device}/audit/1/0"
    size = 512 * 1024 * 1024
    headers = sign_request(client.key, "PUT", path, sha256_hex(b""), time.time_ns() // 1000, secrets.token_hex(16))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        head = f"PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n" + \
            "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        s.sendall(head.encode() + b"x" * 1000)
        reply = _reply(s)
    assert reply.startswith("HTTP/1.1 413") and "too_large" in reply


def test_a_truncated_part_stores_nothing(served, forked):
    server, client = served
    _, b = forked
    data = _segment(b.storage, 1)
    sha = hashlib.sha256(data).hexdigest()
    path = f"/v1/devices/{client.device}/segments/9/{sha}/parts/0"
    part = data[:16384]
    headers = sign_request(client.key, "PUT", path, sha256_hex(part), time.time_ns() // 1000, secrets.token_hex(16))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        head = f"PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(part)}\r\n" \
               f"{H_SEGMENT_SIZE}: {len(data)}\r\n{H_PART_BYTES}: 16384\r\n" + \
               "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        s.sendall(head.encode() + part[:5000])
        s.shutdown(socket.SHUT_WR)       # the connection drops mid-body
        _reply(s)
    assert client.state()["uploads"] == []
    _wait_for(lambda: any(line["reason"] == "truncated_body" for line in server.access_log()))


def test_a_slow_body_is_cut_off_while_others_are_served(tmp_path, intake_server, forked):
    from intake_client import bwc
    a, _ = forked
    directory = str(tmp_path / "slow-intake")
    assert bwc("intake", "init", "--out", directory).returncode == 0
    _rewrite_setting(directory, "body_timeout_s", "1.0")
    enroll(directory, a.pub_path)
    server = intake_server(directory=directory)
    client = Client(server.url, signing_key(a.directory))
    path = f"/v1/devices/{client.device}/audit/1/0"
    headers = sign_request(client.key, "PUT", path, sha256_hex(b""), time.time_ns() // 1000, secrets.token_hex(16))
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as s:
        head = f"PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n" + \
            "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        s.sendall(head.encode() + b"x" * 10)
        assert client.call("GET", "state")[0] == 200       # served meanwhile
        started = time.monotonic()
        reply = _reply(s)
        assert time.monotonic() - started < 10
    assert reply.startswith("HTTP/1.1 408") and "slow_body" in reply


def _rewrite_setting(directory: str, name: str, value: str) -> None:
    path = os.path.join(directory, "intake.toml")
    lines = [line for line in open(path).read().splitlines() if not line.startswith(name)]
    open(path, "w").write("\n".join(lines + [f"{name} = {value}"]) + "\n")


def test_a_tampered_segment_is_refused_and_changes_nothing(served, forked):
    server, client = served
    _, b = forked
    before = _held(client)
    data = bytearray(_segment(b.storage, 1))
    data[len(data) // 2] ^= 0x40
    body = _refused(client.upload(20, bytes(data)), 422, "segment_invalid")
    assert body["outcome"] in ("signature_failure", "structure_failure")
    assert _held(client) == before


def test_a_spliced_segment_from_another_device_is_refused(served, recorded):
    server, client = served
    before = _held(client)
    _refused(client.upload(20, _segment(recorded.storage, 2)), 422, "wrong_device")
    assert _held(client) == before


def test_a_segment_under_another_seq_is_refused(served, forked):
    server, client = served
    a, _ = forked
    before = _held(client)
    _refused(client.upload(30, _segment(a.storage, 2)), 422, "seq_mismatch")
    assert _held(client) == before


def test_a_rolled_back_or_forked_history_is_refused(served, forked):
    """The device's key, another history: its segment 1 is a seq conflict, its segment 2 a
    chain break (it follows a segment 1 the intake does not hold)."""
    server, client = served
    _, b = forked
    before = _held(client)
    _refused(client.upload(1, _segment(b.storage, 1)), 409, "seq_conflict")
    seqs_b = [s for s, _ in card_files(b.storage)[1]]
    newest_a = max(s["seq"] for s in before[0])
    beyond = [s for s in seqs_b if s > newest_a]
    if beyond:   # b's next segment would follow b's own history, not a's
        _refused(client.upload(beyond[0], _segment(b.storage, beyond[0])), 422, "chain_break")
    assert _held(client) == before


def test_audit_bytes_that_break_the_chain_are_refused(served, forked):
    server, client = served
    a, b = forked
    before = _held(client)
    number, path = card_files(b.storage)[0][0]
    data = open(path, "rb").read()
    _refused(client.put_audit(number, 0, data), 409, "audit_conflict")       # other bytes, same place
    held = {f["file"]: f["bytes"] for f in before[1]["files"]}
    newest = max(held)
    _refused(client.put_audit(newest, held[newest] + 10, data), 409, "audit_gap")
    _refused(client.put_audit(newest + 1, 0, data), 422, "audit_invalid")    # b's entries do not follow a's
    flipped = bytearray(data)
    flipped[5] ^= 1
    _refused(client.put_audit(newest + 1, 0, bytes(flipped)), 422, "audit_invalid")
    _refused(client.put_audit(newest + 1, 0, data[:-3]), 422, "audit_invalid")   # a torn line
    assert _held(client) == before


def test_incomplete_and_inconsistent_uploads_are_refused(served, forked):
    server, client = served
    _, b = forked
    data = _segment(b.storage, 2)
    sha = hashlib.sha256(data).hexdigest()
    headers = {H_SEGMENT_SIZE: str(len(data)), H_PART_BYTES: "16384"}
    assert client.call("PUT", f"segments/40/{sha}/parts/0", data[:16384], headers)[0] == 200
    body = _refused(client.call("POST", f"segments/40/{sha}/commit"), 409, "parts_missing")
    assert body["missing"] == list(range(1, -(-len(data) // 16384)))
    _refused(client.call("PUT", f"segments/40/{sha}/parts/{len(data) // 16384 + 1}", b"x",
                         headers), 409, "upload_mismatch")                     # past the end
    _refused(client.call("PUT", f"segments/40/{sha}/parts/1", data[16384:20000], headers), 400, "truncated_body")
    wrong = hashlib.sha256(b"not this file").hexdigest()
    _refused(_upload_as(client, 41, data, wrong), 422, "hash_mismatch")
    assert [u["seq"] for u in client.state()["uploads"]] == [40]   # the mismatched upload was dropped


def _upload_as(client: Client, seq: int, data: bytes, sha: str):
    headers = {H_SEGMENT_SIZE: str(len(data)), H_PART_BYTES: "16384"}
    for index in range(-(-len(data) // 16384)):
        assert client.call("PUT", f"segments/{seq}/{sha}/parts/{index}",
                           data[index * 16384:(index + 1) * 16384], headers)[0] == 200
    return client.call("POST", f"segments/{seq}/{sha}/commit")


def _raw(server, method: str, path: str, headers: dict, body: bytes):
    import http.client
    import json
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers={**headers, "Content-Length": str(len(body))})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def _wait_for(condition, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.05)   # the server writes its access log line after the connection drops


def _reply(s: socket.socket) -> str:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data.decode(errors="replace")
