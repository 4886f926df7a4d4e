"""The offload wire protocol (docs/offload.md): how a device and an evidence intake
authenticate each other's HTTP messages. Shared by `bwc offload` (device side) and
`bwc intake serve`; nothing here does I/O.

Every request is signed by the device key over its method, path, time, a fresh
nonce and the SHA-256 of its body; every response is signed by the intake key over
the request's nonce, its status and the SHA-256 of its body. So a captured request
cannot be replayed (the intake remembers nonces inside the time window and refuses
anything older), and a response cannot be forged or moved to another request (OFF-3).
Payloads are already encrypted to the custodians, so nothing here needs secrecy.
"""
from __future__ import annotations

import hashlib
import re

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

API_PREFIX = "/v1"
REQUEST_DOMAIN = b"OBWC-v1-request\x00"
RESPONSE_DOMAIN = b"OBWC-v1-response\x00"

# Header names (HTTP headers are case-insensitive; these are sent as written).
H_DEVICE = "OBWC-Device"
H_TIME = "OBWC-Time"
H_NONCE = "OBWC-Nonce"
H_SIGNATURE = "OBWC-Signature"
H_INTAKE = "OBWC-Intake"
H_RESPONSE_SIGNATURE = "OBWC-Response-Signature"
H_SEGMENT_SIZE = "OBWC-Segment-Size"
H_PART_BYTES = "OBWC-Part-Bytes"

# A request more than this far from the intake's clock is refused (`stale_request`);
# the intake keeps each nonce at least this long on either side, so nothing inside
# the window can be played twice.
CLOCK_WINDOW_US = 300_000_000
NONCE_HEX_CHARS = 32            # 16 random bytes
# Upload parts: one part is what a dropped connection can cost (OFF-1).
PART_BYTES_DEFAULT = 256 * 1024
PART_BYTES_MIN = 16 * 1024
PART_BYTES_MAX = 8 * 1024 * 1024
AUDIT_BATCH_MAX_BYTES = 1024 * 1024   # one audit upload; a shift writes a few KiB
SEGMENT_MAX_BYTES = 4 * 1024 ** 3     # larger than any segment a device writes
JSON_BODY_MAX_BYTES = 64 * 1024

# Every refusal the intake names, with its HTTP status (docs/offload.md §6).
REFUSALS = {
    "malformed_request": 400,   # a header, path or JSON body that is not what the protocol says
    "truncated_body": 400,      # fewer body bytes than Content-Length, or a part shorter than its place
    "bad_signature": 401,       # the request signature does not verify against the device key
    "stale_request": 401,       # OBWC-Time outside the window (the body says the intake's time)
    "not_enrolled": 403,        # the device key is not enrolled at this intake
    "not_found": 404,
    "slow_body": 408,           # the body did not arrive in time (a slow client holding a connection)
    "replayed_request": 409,    # this nonce was already used
    "seq_conflict": 409,        # the intake already holds a different segment with this seq
    "upload_mismatch": 409,     # a part disagrees with the upload's size or part size
    "parts_missing": 409,       # commit before every part arrived (the body lists the missing ones)
    "audit_conflict": 409,      # the intake already holds different audit bytes at this place
    "audit_gap": 409,           # audit bytes that do not continue what the intake holds
    "too_large": 413,           # a body over its limit
    "hash_mismatch": 422,       # the assembled segment's SHA-256 is not the one its upload named
    "segment_invalid": 422,     # the segment does not verify (the body names the verifier's outcome)
    "wrong_device": 422,        # the segment is signed by another device (spliced in)
    "seq_mismatch": 422,        # the segment's signed seq is not the one in the path
    "chain_break": 422,         # its prev does not name a checkpoint of the segment it follows
    "audit_invalid": 422,       # an audit line that is torn, unsigned, or breaks the hash chain
    "unavailable": 503,         # the store cannot be reached, or the intake is shutting down
}

_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_HEX128 = re.compile(r"[0-9a-f]{128}\Z")
_NONCE = re.compile(r"[0-9a-f]{%d}\Z" % NONCE_HEX_CHARS)
_TIME = re.compile(r"(0|[1-9][0-9]{0,18})\Z")


class ProtocolError(Exception):
    """A message that fails the protocol; `reason` is a key of REFUSALS."""

    def __init__(self, reason: str, detail: str = "") -> None:
        assert reason in REFUSALS, reason
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail

    @property
    def status(self) -> int:
        return REFUSALS[self.reason]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def request_message(method: str, path: str, utc_us: int, nonce: str, body_sha256: str) -> bytes:
    """What the device signs: domain || METHOD \\n path \\n time \\n nonce \\n body-sha256."""
    return REQUEST_DOMAIN + f"{method.upper()}\n{path}\n{utc_us}\n{nonce}\n{body_sha256}".encode("ascii")


def response_message(nonce: str, status: int, body_sha256: str) -> bytes:
    """What the intake signs: domain || request-nonce \\n status \\n body-sha256."""
    return RESPONSE_DOMAIN + f"{nonce}\n{status}\n{body_sha256}".encode("ascii")


def sign_request(key: SigningKey, method: str, path: str, body_sha256: str, utc_us: int,
                 nonce: str) -> dict[str, str]:
    """The authentication headers of one request. `path` is the URL path as sent
    (ASCII, no query string); `nonce` 32 lowercase hex digits, fresh per request."""
    if not path.isascii() or "?" in path or not _NONCE.match(nonce):
        raise ValueError("path must be ASCII without a query; nonce 32 lowercase hex digits")
    signature = key.sign(request_message(method, path, utc_us, nonce, body_sha256)).signature
    return {H_DEVICE: bytes(key.verify_key).hex(), H_TIME: str(utc_us), H_NONCE: nonce,
            H_SIGNATURE: signature.hex()}


def _header(headers, name: str) -> str:
    value = headers.get(name) if hasattr(headers, "get") else None
    if value is None:
        value = headers.get(name.lower())
    if not isinstance(value, str):
        raise ProtocolError("malformed_request", f"{name} header missing")
    return value


def request_identity(headers) -> tuple[str, int, str]:
    """(device key hex, utc_us, nonce) from a request's headers, all four shape-checked
    (the signature too, so a malformed one is refused before the body is read)."""
    device, utc, nonce = _header(headers, H_DEVICE), _header(headers, H_TIME), _header(headers, H_NONCE)
    if not _HEX128.match(_header(headers, H_SIGNATURE)):
        raise ProtocolError("malformed_request", f"{H_SIGNATURE} must be 128 lowercase hex digits")
    if not _HEX64.match(device):
        raise ProtocolError("malformed_request", f"{H_DEVICE} must be 64 lowercase hex digits")
    if not _TIME.match(utc):
        raise ProtocolError("malformed_request", f"{H_TIME} must be a decimal count of microseconds")
    if not _NONCE.match(nonce):
        raise ProtocolError("malformed_request", f"{H_NONCE} must be {NONCE_HEX_CHARS} lowercase hex digits")
    return device, int(utc), nonce


def check_request(headers, method: str, path: str, body_sha256: str, now_us: int) -> tuple[str, str]:
    """(device key hex, nonce) if the request is signed by the key it names and its time
    is inside the window. Enrolment and the nonce's freshness are the caller's checks
    (they need the store); check enrolment *before* spending effort on the signature."""
    device, utc_us, nonce = request_identity(headers)
    signature = _header(headers, H_SIGNATURE)
    if not _HEX128.match(signature):
        raise ProtocolError("malformed_request", f"{H_SIGNATURE} must be 128 lowercase hex digits")
    try:
        VerifyKey(bytes.fromhex(device)).verify(request_message(method, path, utc_us, nonce, body_sha256),
                                                bytes.fromhex(signature))
    except (BadSignatureError, ValueError):
        raise ProtocolError("bad_signature", "the request signature does not verify") from None
    if abs(utc_us - now_us) > CLOCK_WINDOW_US:
        raise ProtocolError("stale_request", f"request time {utc_us} is more than "
                                             f"{CLOCK_WINDOW_US // 1_000_000} s from the intake's {now_us}")
    return device, nonce


def sign_response(key: SigningKey, nonce: str, status: int, body: bytes) -> dict[str, str]:
    signature = key.sign(response_message(nonce, status, sha256_hex(body))).signature
    return {H_INTAKE: bytes(key.verify_key).hex(), H_RESPONSE_SIGNATURE: signature.hex()}


class ResponseError(Exception):
    """A response the device must not believe (unsigned, forged, or from an untrusted intake)."""


def check_response(headers, nonce: str, status: int, body: bytes, trusted_intake_keys) -> bytes:
    """The intake key that signed this response to the request with `nonce`; raises
    ResponseError unless that key is one of `trusted_intake_keys` and the signature holds."""
    try:
        intake, signature = _header(headers, H_INTAKE), _header(headers, H_RESPONSE_SIGNATURE)
    except ProtocolError:
        raise ResponseError("the response is not signed by an intake") from None
    if not _HEX64.match(intake) or not _HEX128.match(signature):
        raise ResponseError("the response's intake signature is malformed")
    raw = bytes.fromhex(intake)
    if raw not in {bytes(k) for k in trusted_intake_keys}:
        raise ResponseError(f"the response is signed by intake key {intake[:16]}…, which this device does not trust")
    try:
        VerifyKey(raw).verify(response_message(nonce, status, sha256_hex(body)), bytes.fromhex(signature))
    except BadSignatureError:
        raise ResponseError("the response's intake signature does not verify") from None
    return raw
