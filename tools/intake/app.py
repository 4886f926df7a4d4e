"""The intake's HTTP application (docs/offload.md §3, §4, §6) on Starlette.

Order of checks for a device request, cheapest first, so a stranger or a flood costs
little: path and headers, enrolment, body limits (before reading the body), signature,
time window, nonce. Store work runs in the thread pool; nothing is kept between
requests but the ledger's cache of immutable objects.
"""
from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from device.offload.protocol import (
    API_PREFIX, H_NONCE, H_PART_BYTES, H_SEGMENT_SIZE, NONCE_HEX_CHARS, ProtocolError, check_request, request_identity,
    sha256_hex, sign_response,
)
from tools.intake.config import Intake
from tools.intake.ledger import Ledger, Refused
from tools.intake.store import Store, StoreError

_NUM = r"(0|[1-9][0-9]{0,11})"
_ROUTES = [
    ("GET", re.compile(r"state\Z"), "state"),
    ("GET", re.compile(r"receipt\Z"), "receipt"),
    ("PUT", re.compile(rf"audit/{_NUM}/{_NUM}\Z"), "audit"),
    ("PUT", re.compile(rf"segments/{_NUM}/([0-9a-f]{{64}})/parts/{_NUM}\Z"), "part"),
    ("POST", re.compile(rf"segments/{_NUM}/([0-9a-f]{{64}})/commit\Z"), "commit"),
]
_NONCE = re.compile(r"[0-9a-f]{%d}\Z" % NONCE_HEX_CHARS)
_DEVICE_PATH = re.compile(rf"{API_PREFIX}/devices/([0-9a-f]{{64}})/(.*)\Z", re.S)


@dataclass
class Served:
    """Per-request facts for the access log."""
    device: str = ""
    reason: str = ""
    bytes_in: int = 0


def _json(status: int, body: dict, nonce: str | None, intake: Intake, served: Served | None = None) -> Response:
    data = json.dumps(body, sort_keys=True).encode()
    headers = sign_response(intake.signing_key, nonce, status, data) if nonce else {}
    if status >= 400 and served is not None:
        served.reason = body.get("error", "")
    return Response(data, status, headers=headers, media_type="application/json")


def _refusal(exc: ProtocolError, nonce: str | None, intake: Intake, served: Served, **extra) -> Response:
    body = {"error": exc.reason, "detail": exc.detail, **getattr(exc, "extra", {}), **extra}
    response = _json(exc.status, body, nonce, intake, served)
    if exc.reason in ("slow_body", "truncated_body", "too_large"):
        response.headers["Connection"] = "close"   # the rest of that body is not worth reading
    return response


async def _read_body(request: Request, limit: int, timeout_s: float, min_rate_bps: float, served: Served) -> bytes:
    length = request.headers.get("content-length")
    if length is None:
        if request.method in ("PUT", "POST"):
            raise ProtocolError("malformed_request", "Content-Length is required")
        return b""
    if not length.isdigit() or not length.isascii() or len(length) > 12:
        raise ProtocolError("malformed_request", "Content-Length is not a number")
    if int(length) > limit:
        raise ProtocolError("too_large", f"a body of {length} bytes is over this request's limit of {limit}")
    chunks, received = [], 0
    stream = request.stream().__aiter__()
    # A stall limit per read, and a deadline for the whole body (at a floor rate), so a
    # client dripping a byte at a time cannot hold a connection either.
    deadline = asyncio.get_running_loop().time() + timeout_s + int(length) / min_rate_bps
    while True:
        try:
            left_s = deadline - asyncio.get_running_loop().time()
            if left_s <= 0:
                raise asyncio.TimeoutError
            chunk = await asyncio.wait_for(stream.__anext__(), min(timeout_s, left_s))
        except StopAsyncIteration:
            break
        except asyncio.TimeoutError:
            raise ProtocolError("slow_body", f"the body stalled for over {timeout_s:g} s, or came slower "
                                             f"than {min_rate_bps:g} bytes/s") from None
        except ClientDisconnect:
            raise ProtocolError("truncated_body", f"the connection closed after {received} of {length} bytes") \
                from None
        received += len(chunk)
        served.bytes_in = received
        chunks.append(chunk)
    if received != int(length):
        raise ProtocolError("truncated_body", f"{received} of {length} bytes arrived")
    return b"".join(chunks)


def build_app(intake: Intake, store: Store, ledger: Ledger | None = None) -> Starlette:
    ledger = ledger or Ledger(store, intake.signing_key)
    draining = {"now": False}

    async def healthz(request: Request) -> Response:
        return Response(b'{"status": "ok"}', media_type="application/json")

    async def readyz(request: Request) -> Response:
        if draining["now"]:
            return Response(b'{"detail": "shutting down", "status": "unavailable"}', 503,
                            media_type="application/json")
        try:
            await run_in_threadpool(store.ping)
        except StoreError as exc:
            body = json.dumps({"status": "unavailable", "detail": str(exc)}).encode()
            return Response(body, 503, media_type="application/json")
        return Response(b'{"status": "ready"}', media_type="application/json")

    async def clock(request: Request) -> Response:
        return Response(json.dumps({"utc_us": time.time_ns() // 1000}).encode(), media_type="application/json")

    async def device_request(request: Request) -> Response:
        served: Served = request.scope.setdefault("state", {}).setdefault("obwc", Served())
        # Every answer is signed as soon as there is a well-formed nonce to bind it to, even
        # a refusal of the rest of the request, so the device can tell it from a forgery.
        nonce = _usable_nonce(request.headers)
        try:
            # The signature covers the path exactly as sent: read the raw bytes, and refuse
            # percent-escapes (which would let two spellings name one resource).
            path = request.scope.get("raw_path", b"").decode("ascii", "replace") or request.url.path
            if "%" in path or "?" in path:
                raise ProtocolError("malformed_request", "the path may not hold '%' escapes or a query")
            match = _DEVICE_PATH.match(path)
            route = _route(request.method, match.group(2)) if match else None
            if route is None:
                raise ProtocolError("not_found", f"no {request.method} {path} here")
            action, params = route
            device, utc_us, nonce = request_identity(request.headers)
            served.device = device[:16]
            if device != match.group(1):
                raise ProtocolError("malformed_request", "the path names another device than OBWC-Device")
            if not intake.is_enrolled(device):
                raise ProtocolError("not_enrolled", "this device is not enrolled at this intake")
            limit = intake.limits.part_max_bytes if action == "part" else \
                intake.limits.audit_max_bytes if action == "audit" else 0
            body = await _read_body(request, limit, intake.limits.body_timeout_s, intake.limits.body_min_rate_bps,
                                    served)
            now_us = time.time_ns() // 1000
            try:
                check_request(request.headers, request.method, path, sha256_hex(body), now_us)
            except ProtocolError as exc:
                if exc.reason == "stale_request":
                    return _refusal(exc, nonce, intake, served, intake_utc_us=now_us)
                raise
            if draining["now"] and action in ("part", "commit"):
                raise ProtocolError("unavailable", "the intake is shutting down; try again")
            result = await run_in_threadpool(_perform, ledger, device, utc_us, nonce, action, params, body,
                                             request.headers, intake)
            return _json(200, result, nonce, intake, served)
        except ProtocolError as exc:
            return _refusal(exc, nonce, intake, served)
        except StoreError as exc:
            return _refusal(ProtocolError("unavailable", f"the store did not answer ({exc})"), nonce, intake, served)

    async def unknown(request: Request, exc) -> Response:
        # Every refusal is JSON (docs/offload.md §6), also for paths and methods nobody serves.
        body = json.dumps({"error": "not_found", "detail": f"no {request.method} {request.url.path} here"})
        return Response(body.encode(), 404, media_type="application/json")

    app = Starlette(exception_handlers={404: unknown, 405: unknown}, routes=[
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route(f"{API_PREFIX}/time", clock, methods=["GET"]),
        Route(f"{API_PREFIX}/devices/{{rest:path}}", device_request, methods=["GET", "PUT", "POST"]),
    ])
    app.state.draining = draining
    app.state.ledger = ledger
    return app


def _usable_nonce(headers) -> str | None:
    value = headers.get(H_NONCE)
    return value if isinstance(value, str) and _NONCE.match(value) else None


def _route(method: str, tail: str) -> tuple[str, tuple] | None:
    for route_method, pattern, action in _ROUTES:
        found = pattern.match(tail)
        if found and method == route_method:
            return action, found.groups()
    return None


def _int_header(headers, name: str) -> int:
    value = headers.get(name)
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 12:
        raise ProtocolError("malformed_request", f"{name} must be a decimal number")
    return int(value)


def _perform(ledger: Ledger, device: str, utc_us: int, nonce: str, action: str, params: tuple, body: bytes,
             headers, intake: Intake) -> dict:
    if action in ("state", "receipt", "commit") and body:
        raise Refused("malformed_request", f"{action} takes no body")
    ledger.spend_nonce(device, utc_us, nonce)
    if action == "state":
        return ledger.state(device)
    if action == "receipt":
        return {"receipt": ledger.receipt(device)}
    if action == "audit":
        return ledger.put_audit(device, int(params[0]), int(params[1]), body)
    seq, sha = int(params[0]), params[1]
    if seq < 1:
        raise Refused("malformed_request", "segment numbers start at 1")
    if action == "part":
        size, part_bytes = _int_header(headers, H_SEGMENT_SIZE), _int_header(headers, H_PART_BYTES)
        return ledger.put_part(device, seq, sha, int(params[2]), body, size, part_bytes,
                               intake.limits.part_max_bytes)
    return ledger.commit(device, seq, sha)
