"""Custody receipts (docs/format.md §9): an evidence intake's signed statement that it
holds a device's history up to a point, so that history may leave the card (OFF-2).

A receipt names the newest segment it holds (`seq`, and the `hash` and `chunks` of
that segment's last checkpoint) and the newest audit entry (`n` and the SHA-256 of
its line). Because both chains are hash-linked, that one statement covers
everything before it, as a signed tree head does in Certificate Transparency. The
device checks a receipt against the intake keys it was provisioned to trust and
then logs it whole in a `receipt` audit entry; a verifier checks both signatures.
"""
from __future__ import annotations

import json

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

RECEIPT_FORMAT = "openbwc-receipt"
RECEIPT_VERSION = 1
RECEIPT_DOMAIN = b"OBWC-v1-receipt\x00"
_HEX = frozenset("0123456789abcdef")


class ReceiptError(ValueError):
    pass


def _canonical(body: dict) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def make_receipt(intake_key: SigningKey, device_key_hex: str, segments: dict | None, audit: dict | None,
                 received_utc_us: int) -> dict:
    """`segments` = {"seq", "hash", "chunks"}; `audit` = {"n", "hash"} (either may be None)."""
    body = {"format": RECEIPT_FORMAT, "version": RECEIPT_VERSION, "device_key": device_key_hex,
            "intake_key": bytes(intake_key.verify_key).hex(), "segments": segments, "audit": audit,
            "received_utc_us": received_utc_us}
    return dict(body, signature=intake_key.sign(RECEIPT_DOMAIN + _canonical(body)).signature.hex())


def _hex(value: object, digits: int) -> bool:
    return isinstance(value, str) and len(value) == digits and set(value) <= _HEX


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_receipt(receipt: object, device_key_hex: str,
                  trusted_intake_keys: list[bytes] | None = None
                  ) -> tuple[tuple[int, str, int] | None, tuple[int, str] | None]:
    """What a receipt vouches for: ((seq, hash, chunks) | None, (n, hash) | None).
    Raises ReceiptError unless it is well formed, for this device, and signed by
    its intake key (and that key is trusted, when a list is given)."""
    if not isinstance(receipt, dict):
        raise ReceiptError("not a JSON object")
    body = {k: v for k, v in receipt.items() if k != "signature"}
    if body.get("format") != RECEIPT_FORMAT or body.get("version") != RECEIPT_VERSION:
        raise ReceiptError("not an OpenBWC receipt of version 1")
    if set(body) != {"format", "version", "device_key", "intake_key", "segments", "audit", "received_utc_us"}:
        raise ReceiptError("unexpected or missing members")
    if body["device_key"] != device_key_hex:
        raise ReceiptError("issued for another device")
    if not _hex(body["intake_key"], 64) or not _hex(receipt.get("signature"), 128):
        raise ReceiptError("intake key or signature malformed")
    if not _count(body["received_utc_us"]):
        raise ReceiptError("received_utc_us malformed")
    segs, audit = body["segments"], body["audit"]
    if segs is not None and not (isinstance(segs, dict) and set(segs) == {"seq", "hash", "chunks"}
                                 and _count(segs["seq"]) and _hex(segs["hash"], 64) and _count(segs["chunks"])):
        raise ReceiptError("segments member malformed")
    if audit is not None and not (isinstance(audit, dict) and set(audit) == {"n", "hash"}
                                  and _count(audit["n"]) and _hex(audit["hash"], 64)):
        raise ReceiptError("audit member malformed")
    intake = bytes.fromhex(body["intake_key"])
    if trusted_intake_keys is not None and intake not in trusted_intake_keys:
        raise ReceiptError("signed by an intake key this device does not trust")
    try:
        VerifyKey(intake).verify(RECEIPT_DOMAIN + _canonical(body), bytes.fromhex(receipt["signature"]))
    except (BadSignatureError, ValueError):
        raise ReceiptError("bad intake signature") from None
    return ((segs["seq"], segs["hash"], segs["chunks"]) if segs else None,
            (audit["n"], audit["hash"]) if audit else None)
