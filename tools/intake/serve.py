"""`bwc intake serve` (docs/offload.md §7): the application under uvicorn, a JSON access
log, and a graceful shutdown that lets requests in flight finish."""
from __future__ import annotations

import json
import os
import socket
import sys
import time

import uvicorn

from tools.intake.app import Served, build_app
from tools.intake.config import load_intake
from tools.intake.store import FileStore, StoreError, open_store

DEFAULT_STORE_DIR = "store"   # inside INTAKE_DIR: the embedded default


class AccessLog:
    """ASGI middleware: one JSON line per HTTP request on `stream`."""

    def __init__(self, app, stream=sys.stderr) -> None:
        self.app, self.stream = app, stream

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        served = Served()
        scope.setdefault("state", {})["obwc"] = served
        started = time.perf_counter()
        status, bytes_out = [0], [0]

        async def counting_send(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body":
                bytes_out[0] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            client = scope.get("client") or ("", 0)
            line = {"utc": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z", "method": scope["method"],
                    "path": scope["path"], "status": status[0], "reason": served.reason, "device": served.device,
                    "bytes_in": served.bytes_in, "bytes_out": bytes_out[0],
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "peer": f"{client[0]}:{client[1]}"}
            try:
                self.stream.write(json.dumps(line) + "\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass   # a closed log must not take requests down with it


class _DrainingServer(uvicorn.Server):
    """Turns readiness off the moment a shutdown is asked for, so a load balancer stops
    sending new uploads while the ones in flight finish."""

    def __init__(self, config, draining: dict) -> None:
        super().__init__(config)
        self._draining = draining

    def handle_exit(self, sig, frame) -> None:
        self._draining["now"] = True
        super().handle_exit(sig, frame)
        # uvicorn raises the signal again once it has shut down (so the process dies of
        # it); a finished graceful shutdown is a clean exit, status 0, for systemd too.
        if hasattr(self, "_captured_signals"):
            self._captured_signals.clear()


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--listen {text!r}: give HOST:PORT, e.g. 127.0.0.1:8443")
    return host.strip("[]"), int(port)


def serve(intake_dir: str, listen: str, store_url: str | None, s3_endpoint: str | None) -> int:
    intake = load_intake(intake_dir)
    host, port = parse_listen(listen)
    if store_url is None:
        root = os.path.join(intake.directory, DEFAULT_STORE_DIR)
        os.makedirs(root, exist_ok=True)
        store_url = "file://" + root
    store = open_store(store_url, s3_endpoint)
    if isinstance(store, FileStore):
        os.makedirs(store.root, exist_ok=True)   # a new file store is ready from the start
    try:
        store.ping()
    except StoreError as exc:   # serve anyway: readyz says why, and it may come back
        print(f"bwc intake serve: warning: the store does not answer yet ({exc})", file=sys.stderr)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this (Linux): an answer's headers and body are two
    # writes, and with Nagle's algorithm the body waits for the client's delayed ACK,
    # ~40 ms per request on a kept-alive connection.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port} ({exc.strerror})") from None
    sock.listen(128)
    app = build_app(intake, store)
    config = uvicorn.Config(AccessLog(app), log_config=None, access_log=False, lifespan="off",
                            timeout_graceful_shutdown=intake.limits.shutdown_grace_s, timeout_keep_alive=15,
                            limit_concurrency=intake.limits.max_connections,
                            log_level="warning")
    server = _DrainingServer(config, app.state.draining)
    bound_host, bound_port = sock.getsockname()[:2]
    print(f"listening on http://{bound_host}:{bound_port} (store {store.url}, intake key "
          f"{intake.public_key_hex[:16]}…)", flush=True)
    server.run(sockets=[sock])
    return 0
