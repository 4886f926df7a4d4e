"""A peer on the path that answers one byte at a time cannot hold `bwc offload` (and with it
the device lock, which keeps the camera from recording) for ever: every exchange has a
deadline of its own, not only each read."""
from __future__ import annotations

import socket
import threading
import time

import pytest
from nacl.signing import SigningKey

from tools.offload.client import IntakeClient, NetworkFailure
from tools.offload.ratelimit import Unlimited


def _dripping_server(stop: threading.Event) -> int:
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            while not stop.is_set():
                try:
                    conn.sendall(b"x")
                except OSError:
                    return
                stop.wait(0.1)     # the drip: one byte every 0.1 s, each read well inside the timeout
        listener.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1]


def test_a_dripping_answer_fails_at_the_exchange_deadline():
    stop = threading.Event()
    port = _dripping_server(stop)
    client = IntakeClient(f"http://127.0.0.1:{port}", SigningKey(bytes(32)), [bytes(32)], Unlimited(),
                          timeout_s=1.0, min_rate_bps=1e9)
    started = time.monotonic()
    try:
        with pytest.raises(NetworkFailure, match="timed out"):
            client.state()
    finally:
        stop.set()
    assert time.monotonic() - started < 3.0
