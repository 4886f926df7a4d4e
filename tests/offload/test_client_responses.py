"""The offload client reads network input (docs/offload.md §3.2, §6): whatever an intake —
or anything pretending to be one — answers, the client believes only a response signed
by a trusted intake key for this very request, and turns everything else into a
NetworkFailure; never a traceback, never a hang. A real socket server on loopback
answers with hypothesis-drawn statuses, bodies and signatures."""
from __future__ import annotations

import json
import socket
import threading

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from nacl.signing import SigningKey

from device.offload import protocol as P
from tools.offload.client import IntakeClient, NetworkFailure, Refused, UrlError, parse_base_url
from tools.offload.ratelimit import Unlimited

TRUSTED = SigningKey(bytes([1]) * 32)
STRANGER = SigningKey(bytes([2]) * 32)
DEVICE = SigningKey(bytes([3]) * 32)


class OneShotServer:
    """Answers each request with whatever `respond(nonce)` returns (raw bytes)."""

    def __init__(self) -> None:
        self.respond = lambda nonce: b""
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    head = data.split(b"\r\n\r\n")[0].decode("latin-1")
                    nonce = next((line.split(":", 1)[1].strip() for line in head.split("\r\n")
                                  if line.lower().startswith("obwc-nonce:")), "")
                    conn.sendall(self.respond(nonce))
                except OSError:
                    pass

    def close(self) -> None:
        self._listener.close()


@pytest.fixture(scope="module")
def server():
    s = OneShotServer()
    yield s
    s.close()


def _response(status: int, body: bytes, headers: dict[str, str]) -> bytes:
    head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode("latin-1") + b"\r\n" + body


bodies = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda reason, detail: json.dumps({"error": reason, "detail": detail}).encode(),
              st.sampled_from(sorted(P.REFUSALS) + ["nonsense"]), st.text(max_size=20)),
    st.builds(lambda v: json.dumps(v).encode(),
              st.recursive(st.none() | st.integers() | st.text(max_size=5),
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
                           max_leaves=8)))
signers = st.sampled_from(["trusted", "stranger", "wrong_nonce", "unsigned", "garbage"])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(status=st.sampled_from([200, 400, 401, 403, 404, 408, 409, 413, 422, 500, 503]), body=bodies, how=signers)
def test_only_a_response_signed_for_this_request_by_a_trusted_intake_is_believed(server, status, body, how):
    def respond(nonce: str) -> bytes:
        if how == "unsigned":
            return _response(status, body, {})
        if how == "garbage":
            return _response(status, body, {P.H_INTAKE: "zz", P.H_RESPONSE_SIGNATURE: "00" * 64})
        key = STRANGER if how == "stranger" else TRUSTED
        signed_nonce = "0" * 32 if how == "wrong_nonce" else nonce
        return _response(status, body, P.sign_response(key, signed_nonce, status, body))

    server.respond = respond
    client = IntakeClient(f"http://127.0.0.1:{server.port}", DEVICE, [TRUSTED.verify_key], Unlimited(), timeout_s=5)
    try:
        got = client.state()
    except Refused as exc:
        assert how == "trusted" and P.REFUSALS[exc.reason] == status == exc.status
    except NetworkFailure:
        pass
    else:
        assert how == "trusted" and status == 200 and isinstance(got, dict) and json.loads(body) == got
    finally:
        client.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300))
def test_bytes_that_are_no_http_response_are_a_network_failure(server, raw):
    server.respond = lambda nonce: raw
    client = IntakeClient(f"http://127.0.0.1:{server.port}", DEVICE, [TRUSTED.verify_key], Unlimited(), timeout_s=2)
    with pytest.raises(NetworkFailure):
        client.state()


@pytest.mark.parametrize("url", ["ftp://h:1", "http://", "http://h:1/path", "http://h:1?q", "http://u@h:1",
                                 "http://h:99999", "h:1"])
def test_a_bad_intake_url_is_one_clear_error(url):
    with pytest.raises(UrlError, match="--to"):
        parse_base_url(url)
