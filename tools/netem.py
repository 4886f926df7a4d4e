"""A throttling, connection-dropping TCP proxy on loopback: a bad network for offload tests and `bwc bench`.

Threads, one pair per connection. Each direction is paced to `rate_bps` (shared by all
connections, as one link is); the proxy drops every connection when `drop_every_bytes`
more client→server bytes have gone through (cut exactly there, mid-request), or every
`drop_every_s` seconds. It counts what it forwarded each way, so a test can compare
the payload with what crossed the link.
"""
from __future__ import annotations

import socket
import threading
import time

_READ_BYTES = 8 * 1024


class _Pace:
    """Bytes per second over one direction of the link (a token bucket, one lock)."""

    def __init__(self, rate_bps: int | None) -> None:
        self.rate_bps = rate_bps
        self._lock = threading.Lock()
        self._next_s = time.monotonic()

    def wait(self, n_bytes: int) -> None:
        if self.rate_bps is None:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_s)
            self._next_s = start + n_bytes / self.rate_bps
            delay = self._next_s - now
        if delay > 0:
            time.sleep(delay)       # this *is* the slow link: the wait is what it simulates


class Proxy:
    def __init__(self, upstream: tuple[str, int], rate_bps: int | None = None,
                 drop_every_bytes: int | None = None, drop_every_s: float | None = None) -> None:
        self.upstream = upstream
        self._up_pace, self._down_pace = _Pace(rate_bps), _Pace(rate_bps)
        self.drop_every_bytes, self.drop_every_s = drop_every_bytes, drop_every_s
        self.client_to_server = 0       # bytes forwarded to the server
        self.server_to_client = 0
        self.drops = 0
        self.connections = 0
        self._lock = threading.Lock()
        self._next_drop = drop_every_bytes
        self._live: set[tuple[socket.socket, socket.socket]] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        if drop_every_s:
            self._threads.append(threading.Thread(target=self._timed_drops, daemon=True))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "Proxy":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._listener.close()
        with self._lock:
            live = list(self._live)
        for pair in live:
            self._close(pair)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            for s in (client, server):
                # Forward each piece at once: Nagle's algorithm would hold a response's
                # body behind its headers until the peer's delayed ACK (~40 ms a request).
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = (client, server)
            with self._lock:
                self._live.add(pair)
                self.connections += 1
            threading.Thread(target=self._pump, args=(pair, client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(pair, server, client, False), daemon=True).start()

    def _close(self, pair) -> None:
        with self._lock:
            self._live.discard(pair)
        for s in pair:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _drop(self, pair) -> None:
        with self._lock:
            self.drops += 1
        self._close(pair)

    def _timed_drops(self) -> None:
        while not self._stop.wait(self.drop_every_s):
            with self._lock:
                live = list(self._live)
            for pair in live:
                self._drop(pair)

    def _pump(self, pair, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        pace = self._up_pace if upstream else self._down_pace
        try:
            while True:
                data = src.recv(_READ_BYTES)
                if not data:
                    break
                cut = False
                if upstream:
                    with self._lock:
                        if self._next_drop is not None and self.client_to_server + len(data) >= self._next_drop:
                            data = data[:self._next_drop - self.client_to_server]
                            self._next_drop += self.drop_every_bytes
                            cut = True
                        self.client_to_server += len(data)
                else:
                    with self._lock:
                        self.server_to_client += len(data)
                pace.wait(len(data))
                dst.sendall(data)
                if cut:
                    self._drop(pair)
                    return
        except OSError:
            pass
        self._close(pair)
