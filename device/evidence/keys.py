"""Key files: typed one-line text files so one kind of key cannot pass for another."""
from __future__ import annotations

import hashlib
import os
import re

import nacl.bindings
import nacl.exceptions
import nacl.utils
from nacl.public import PrivateKey, PublicKey
from nacl.signing import SigningKey, VerifyKey

CUSTODIAN_PUBLIC = "openbwc-custodian-public-v1"
CUSTODIAN_SECRET = "openbwc-custodian-secret-v1"
DEVICE_PUBLIC = "openbwc-device-public-v1"
# An evidence intake's Ed25519 receipt-signing key (docs/format.md §9).
INTAKE_PUBLIC = "openbwc-intake-public-v1"
# Its secret half, held by every replica of that intake (docs/offload.md §1).
INTAKE_SECRET = "openbwc-intake-secret-v1"
# A releasing custodian's Ed25519 key: signs release records of redacted copies (docs/release.md).
RELEASE_PUBLIC = "openbwc-release-public-v1"
RELEASE_SECRET = "openbwc-release-secret-v1"
_KINDS = (CUSTODIAN_PUBLIC, CUSTODIAN_SECRET, DEVICE_PUBLIC, INTAKE_PUBLIC, INTAKE_SECRET, RELEASE_PUBLIC, RELEASE_SECRET)

# A key file is one short line; anything longer is not one, and is not read whole.
KEY_FILE_MAX_CHARS = 4096
_HEX = re.compile(r"[0-9a-fA-F]*")


class KeyFileError(ValueError):
    """A key file is missing, malformed, or of the wrong kind."""


def key_id(public_key: bytes) -> str:
    """Short, stable name of a custodian public key."""
    return hashlib.sha256(public_key).digest()[:8].hex()


def format_key(kind: str, raw: bytes) -> str:
    return f"{kind}:{raw.hex()}\n"


def is_low_order_x25519(public_key: bytes) -> bool:
    """True if `public_key` is in X25519's small subgroup (all zeros among them).

    Any shared secret with such a point is all zeros whatever the other secret is,
    so nothing sealed to it is secret, and libsodium refuses to seal to it (the
    camera would then record nothing). Detected the libsodium way: a scalar
    multiplication with it yields all zeros, which crypto_scalarmult reports as
    an error. The scalar is random so no fixed input is trusted to be typical.
    """
    try:
        nacl.bindings.crypto_scalarmult(nacl.utils.random(32), public_key)
    except nacl.exceptions.RuntimeError:
        return True
    return False


def parse_key(text: object, kind: str, source: str) -> bytes:
    if not isinstance(text, str):
        raise KeyFileError(f"{source}: expected a key string '{kind}:<hex>', got {type(text).__name__}")
    line = text.strip()
    prefix, sep, hex_digits = line.partition(":")
    if not sep or prefix not in _KINDS:
        raise KeyFileError(f"{source}: not an OpenBWC key file (expected '{kind}:<hex>')")
    if prefix != kind:
        raise KeyFileError(f"{source}: this is an {prefix} key, but an {kind} key is needed here")
    # Hex digits only: bytes.fromhex alone would also accept spaces and line breaks.
    if not _HEX.fullmatch(hex_digits) or len(hex_digits) % 2:
        raise KeyFileError(f"{source}: key is not valid hex")
    raw = bytes.fromhex(hex_digits)
    if len(raw) != 32:
        raise KeyFileError(f"{source}: key has {len(raw)} bytes, expected 32")
    if kind == CUSTODIAN_PUBLIC and is_low_order_x25519(raw):
        raise KeyFileError(f"{source}: this custodian key is a low-order X25519 point, which makes "
                           "encryption to it worthless; refused")
    return raw


def read_key(path: str, kind: str) -> bytes:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            text = f.read(KEY_FILE_MAX_CHARS + 1)
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise KeyFileError(f"{path}: is a directory, expected a key file") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read ({exc.strerror})") from None
    if len(text) > KEY_FILE_MAX_CHARS:
        raise KeyFileError(f"{path}: over {KEY_FILE_MAX_CHARS} characters; not an OpenBWC key file")
    return parse_key(text, kind, path)


def write_public(path: str, kind: str, raw: bytes) -> None:
    with open(path, "x", encoding="ascii") as f:
        f.write(format_key(kind, raw))


def write_secret(path: str, kind: str, raw: bytes) -> None:
    """Create a secret key file, owner-only from the first byte (SEC-2)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(format_key(kind, raw))


def read_custodian_secret(path: str) -> PrivateKey:
    return PrivateKey(read_key(path, CUSTODIAN_SECRET))


def read_custodian_public(path: str) -> PublicKey:
    return PublicKey(read_key(path, CUSTODIAN_PUBLIC))


def read_device_public(path: str) -> VerifyKey:
    return VerifyKey(read_key(path, DEVICE_PUBLIC))


def read_release_secret(path: str) -> SigningKey:
    return SigningKey(read_key(path, RELEASE_SECRET))


def read_release_public(path: str) -> VerifyKey:
    return VerifyKey(read_key(path, RELEASE_PUBLIC))


def new_custodian_keypair() -> PrivateKey:
    return PrivateKey.generate()


def new_device_signing_key() -> SigningKey:
    return SigningKey.generate()
