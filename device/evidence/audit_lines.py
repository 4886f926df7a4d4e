"""Audit-log lines (docs/format.md §5): `JSON || " " || signature_hex || "\\n"`, and file names."""
from __future__ import annotations

import hashlib
import json

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

AUDIT_DOMAIN = b"OBWC-v1-audit\x00"
GENESIS = "0" * 64
# The closed list of entry types (docs/format.md §5.2); a verifier rejects any other.
ENTRY_TYPES = ("boot", "activation", "deactivation", "marker", "recovery", "shutdown", "fault", "receipt",
               # firmware 0.3 (docs/format.md §5.2): what the wearer and the people recorded were told,
               # and what the camera noticed about its own parts and clock.
               "announcement", "stop_request", "media_gap", "time_sync", "alert", "watchdog",
               # firmware 0.4 (docs/link.md): a control pod's link, group activation messages.
               "pod_link", "group_message")
LEGACY_AUDIT_FILE = "audit.log"        # firmware 0.1 (format v1): one file per card
_PREFIX, _SUFFIX = "audit-", ".log"
SIGNATURE_HEX_CHARS = 128
_HEX = frozenset(b"0123456789abcdef")


def audit_file_name(number: int) -> str:
    return f"{_PREFIX}{number:010d}{_SUFFIX}"


def audit_file_number(name: str) -> int | None:
    """The file's number (0 for the legacy audit.log), or None if it is no audit file."""
    if name == LEGACY_AUDIT_FILE:
        return 0
    digits = name[len(_PREFIX):-len(_SUFFIX)]
    if name.startswith(_PREFIX) and name.endswith(_SUFFIX) and len(digits) == 10 and digits.isdigit() \
            and digits.isascii():
        return int(digits)
    return None


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def sign_line(key: SigningKey, entry: dict) -> bytes:
    body = json.dumps(entry, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
    return body + b" " + key.sign(AUDIT_DOMAIN + body).signature.hex().encode()


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")   # NaN, Infinity: never in an entry


def parse_line(line: bytes, key: VerifyKey) -> dict | None:
    """The entry if `line` (without its newline) is a whole line signed by `key`."""
    body, sep, sig_hex = line.rpartition(b" ")
    if not sep or len(sig_hex) != SIGNATURE_HEX_CHARS or not set(sig_hex) <= _HEX:
        return None
    try:
        key.verify(AUDIT_DOMAIN + body, bytes.fromhex(sig_hex.decode("ascii")))
        entry = json.loads(body, parse_constant=_reject_constant)
    except (BadSignatureError, ValueError, UnicodeDecodeError, RecursionError):
        return None
    return entry if isinstance(entry, dict) else None


def could_be_torn(tail: bytes) -> bool:
    """True if `tail` can be the start of an entry line cut off by power loss: an
    unfinished JSON object, or a whole one followed by " " and fewer than 128 hex
    digits. A full-length signature that does not verify is not part of a line."""
    text = tail.decode("utf-8", errors="ignore")  # the cut may split a character
    try:
        _, end = json.JSONDecoder().raw_decode(text)
    except (ValueError, RecursionError):
        return text.startswith("{")   # the JSON itself was cut short
    rest = text[end:].encode("utf-8")
    return rest[:1] in (b"", b" ") and len(rest) < 1 + SIGNATURE_HEX_CHARS and set(rest[1:]) <= _HEX


def split_lines(data: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines, and the torn remainder (b"" if the data ends with a newline)."""
    parts = data.split(b"\n")
    return parts[:-1], parts[-1]
