"""The device's HTTP/1.1 client for an evidence intake (docs/offload.md §2–§4).

One keep-alive connection at a time (http.client, no third-party stack: the device
side needs nothing more). Every request is signed with the device key
(device/offload/protocol.py); every response must carry a valid signature by an
intake key the device trusts, else it is treated exactly like a dropped connection:
nothing is believed from it. A refusal the intake signed is a `Refused` with its
named reason; a drop, a timeout, a 503 or an unbelievable response is a
`NetworkFailure`, after which the caller starts again from `state` (§8).
"""
from __future__ import annotations

import http.client
import json
import secrets
import socket
import time
from typing import Callable
from urllib.parse import urlsplit

from nacl.signing import SigningKey

from device.offload import protocol as P

RESPONSE_MAX_BYTES = 64 * 1024 * 1024    # a state listing of a very long history; never more
EXCHANGE_MIN_RATE_BPS = 4096                # slower than this over a whole exchange is a failed link
SEND_SLICE_BYTES = 16 * 1024             # rate limiting and progress work at this grain
# Refusals that say "try again from state" rather than "this item is refused".
RETRYABLE = {"unavailable", "stale_request", "replayed_request", "parts_missing"}


class NetworkFailure(Exception):
    """The exchange failed or cannot be believed; `sent_bytes` of its body went out."""

    def __init__(self, message: str, sent_bytes: int = 0) -> None:
        super().__init__(message)
        self.sent_bytes = sent_bytes


class Refused(Exception):
    """The intake refused the request, in a response it signed (docs/offload.md §6)."""

    def __init__(self, reason: str, detail: str, status: int, body: dict) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail, self.status, self.body = reason, detail, status, body


class UrlError(ValueError):
    pass


def parse_base_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of `http://host:port` or `https://host:port` (no path, §2)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlError(f"--to {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlError(f"--to {url!r}: expected http://HOST:PORT or https://HOST:PORT")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise UrlError(f"--to {url!r}: the intake's base URL has no path, query or user")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


class IntakeClient:
    def __init__(self, base_url: str, signing_key: SigningKey, trusted_intake_keys, limiter,
                 timeout_s: float = 30.0, wall_time_us: Callable[[], int] = lambda: time.time_ns() // 1000,
                 min_rate_bps: float = EXCHANGE_MIN_RATE_BPS) -> None:
        self.min_rate_bps = min_rate_bps
        self.scheme, self.host, self.port = parse_base_url(base_url)
        self._key, self._trusted = signing_key, [bytes(k) for k in trusted_intake_keys]
        self.device_hex = bytes(signing_key.verify_key).hex()
        self._limiter, self.timeout_s, self._wall_us = limiter, timeout_s, wall_time_us
        self.clock_offset_us = 0
        self._conn: http.client.HTTPConnection | None = None
        self.bytes_sent = 0          # body bytes written to the socket, all attempts
        self.latest_receipt: dict | None = None

    # -- connection ---------------------------------------------------------------
    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
            conn = cls(self.host, self.port, timeout=self.timeout_s)
            conn.connect()
            # Headers, body slices and the answer are small writes: without TCP_NODELAY,
            # Nagle's algorithm meets the intake's delayed ACK and every request waits ~40 ms.
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._conn = conn
        return self._conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _exchange(self, method: str, path: str, body: bytes, headers: dict[str, str],
                  on_sent: Callable[[int], None] | None) -> tuple[int, dict, bytes]:
        sent = 0
        # One deadline for the whole exchange, not only per read: a peer on the path that
        # drips a byte at a time must not hold the device (and its lock) for ever.
        deadline_s = time.monotonic() + self.timeout_s + (len(body) + 64 * 1024) / self.min_rate_bps

        def bound() -> None:
            nonlocal deadline_s
            left_s = deadline_s - time.monotonic()
            if left_s <= 0:
                raise TimeoutError("the exchange took longer than its deadline")
            if conn.sock is not None:
                conn.sock.settimeout(min(self.timeout_s, left_s))

        try:
            conn = self._connection()
            bound()
            conn.putrequest(method, path, skip_accept_encoding=True)
            for name, value in dict(headers, **{"Content-Length": str(len(body))}).items():
                conn.putheader(name, value)
            conn.endheaders()
            view = memoryview(body)
            for start in range(0, len(body), SEND_SLICE_BYTES):
                piece = view[start:start + SEND_SLICE_BYTES]
                paced_from_s = time.monotonic()
                self._limiter.consume(len(piece))
                deadline_s += time.monotonic() - paced_from_s   # waiting on our own --rate-limit is no stall
                bound()
                conn.send(piece)
                sent += len(piece)
                self.bytes_sent += len(piece)
                if on_sent is not None:
                    on_sent(len(piece))
            bound()
            response = conn.getresponse()
            chunks, size = [], 0
            while size <= RESPONSE_MAX_BYTES:
                bound()
                chunk = response.read1(64 * 1024)   # what has arrived: the deadline is checked between reads
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            response.close()     # read to its end: the kept-alive connection may carry the next request
            data = b"".join(chunks)
            if len(data) > RESPONSE_MAX_BYTES:
                raise NetworkFailure("the intake's response is far larger than any the protocol sends", sent)
            if response.will_close:
                self.close()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise NetworkFailure(f"{method} {path}: {_describe(exc)}", sent) from None
        except NetworkFailure:
            self.close()
            raise

    # -- requests -------------------------------------------------------------------
    def sync_time(self) -> int:
        """Read the intake's clock (unauthenticated, §3.1) and use the difference for OBWC-Time."""
        before = self._wall_us()
        status, _, data = self._exchange("GET", f"{P.API_PREFIX}/time", b"", {}, None)
        after = self._wall_us()
        body = _json_object(data)
        utc = body.get("utc_us") if body is not None else None
        if status != 200 or not isinstance(utc, int) or isinstance(utc, bool):
            raise NetworkFailure(f"GET /v1/time answered {status} without a time")
        self.clock_offset_us = utc - (before + after) // 2
        return self.clock_offset_us

    def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
                on_sent: Callable[[int], None] | None = None) -> dict:
        """The JSON body of a signed 200 response; raises Refused or NetworkFailure."""
        nonce = secrets.token_hex(P.NONCE_HEX_CHARS // 2)    # fresh for every attempt
        auth = P.sign_request(self._key, method, path, P.sha256_hex(body), self._wall_us() + self.clock_offset_us,
                              nonce)
        status, got, data = self._exchange(method, path, body, dict(headers or {}, **auth), on_sent)
        try:
            P.check_response(got, nonce, status, data, self._trusted)
        except P.ResponseError as exc:
            raise NetworkFailure(f"{method} {path}: {exc}", len(body)) from None
        parsed = _json_object(data)
        if parsed is None:
            raise NetworkFailure(f"{method} {path}: the intake answered {status} with a body that is not JSON",
                                 len(body))
        if status == 200:
            if isinstance(parsed.get("receipt"), dict):
                self.latest_receipt = parsed["receipt"]
            return parsed
        reason, detail = parsed.get("error"), parsed.get("detail")
        if not isinstance(reason, str) or P.REFUSALS.get(reason) != status:
            raise NetworkFailure(f"{method} {path}: the intake answered {status} ({str(reason)[:40]})", len(body))
        if reason in RETRYABLE:
            raise NetworkFailure(f"{method} {path}: {reason}", len(body))
        raise Refused(reason, detail if isinstance(detail, str) else "", status, parsed)

    def _device_path(self, tail: str) -> str:
        return f"{P.API_PREFIX}/devices/{self.device_hex}/{tail}"

    def state(self) -> dict:
        return self.request("GET", self._device_path("state"))

    def put_audit(self, file: int, offset: int, data: bytes, on_sent=None) -> dict:
        return self.request("PUT", self._device_path(f"audit/{file}/{offset}"), data, on_sent=on_sent)

    def put_part(self, seq: int, sha256: str, index: int, data: bytes, size: int, part_bytes: int,
                 on_sent=None) -> dict:
        headers = {P.H_SEGMENT_SIZE: str(size), P.H_PART_BYTES: str(part_bytes)}
        return self.request("PUT", self._device_path(f"segments/{seq}/{sha256}/parts/{index}"), data, headers,
                            on_sent)

    def commit(self, seq: int, sha256: str) -> dict:
        return self.request("POST", self._device_path(f"segments/{seq}/{sha256}/commit"))

    def receipt(self) -> dict | None:
        body = self.request("GET", self._device_path("receipt"))
        return body.get("receipt") if isinstance(body.get("receipt"), dict) else None


def _json_object(data: bytes) -> dict | None:
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout):
        return "timed out"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the connection closed before a response"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__ + (f" ({exc})" if str(exc) else "")
