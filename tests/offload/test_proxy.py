"""The test proxy itself (tests/offload/proxy.py): it paces, cuts at the byte count it was
told, and counts what it forwarded — so the offload-over-a-bad-link test measures what it
claims to."""
from __future__ import annotations

import socket
import threading
import time

from tools.netem import Proxy


def _sink() -> tuple[socket.socket, list[int]]:
    """A server that reads everything sent to it, per connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    got: list[int] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            n = 0
            with conn:
                while data := conn.recv(65536):
                    n += len(data)
            got.append(n)

    threading.Thread(target=serve, daemon=True).start()
    return listener, got


def _send(port: int, data: bytes) -> None:
    """Send `data` and wait until the proxy closes the connection (done, or dropped)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            s.recv(1)           # the proxy closes once the server has read everything
        except OSError:
            pass


def test_it_paces_to_the_rate_and_counts_what_it_forwards():
    listener, got = _sink()
    with Proxy(listener.getsockname(), rate_bps=1_000_000) as proxy:
        started = time.monotonic()
        _send(proxy.port, b"x" * 300_000)
        elapsed = time.monotonic() - started
    listener.close()
    assert proxy.client_to_server == 300_000 and proxy.drops == 0
    assert 0.25 <= elapsed < 3


def test_it_drops_every_n_bytes_exactly_there():
    listener, got = _sink()
    with Proxy(listener.getsockname(), drop_every_bytes=100_000) as proxy:
        _send(proxy.port, b"x" * 250_000)    # cut at 100 000
        _send(proxy.port, b"y" * 120_000)    # cut at 200 000 in all
        _send(proxy.port, b"z" * 50_000)
    deadline = time.monotonic() + 10
    while len(got) < 3 and time.monotonic() < deadline:   # the sink's thread notes the last close
        time.sleep(0.01)
    listener.close()
    assert proxy.drops == 2
    assert proxy.client_to_server == 250_000
    assert sorted(got) == [50_000, 100_000, 100_000]     # what the server received, per connection
