"""Decrypting a verified segment with a custodian's secret key (docs/format.md §7)."""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field

import nacl.bindings as sodium
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, SealedBox

from device.evidence.format import CHUNK_KIND_MEDIA, CHUNK_KIND_METADATA
from device.evidence.keys import key_id
from device.evidence.segment_reader import SegmentReport


class NotARecipient(Exception):
    """The key is not one of this segment's custodian keys."""


class DecryptError(Exception):
    """An authenticated chunk failed to decrypt (should be impossible unless the
    device was faulty: signatures already cover the ciphertext)."""


@dataclass(slots=True)
class SegmentPlaintext:
    media: bytes
    metadata: list[dict] = field(default_factory=list)
    chunks: int = 0
    ended_cleanly: bool = False  # the FINAL secretstream tag was seen


def unwrap_segment_key(header: dict, secret: PrivateKey) -> bytes:
    my_id = key_id(bytes(secret.public_key))
    for recipient in header["recipients"]:
        if isinstance(recipient, dict) and recipient.get("key_id") == my_id:
            try:
                return SealedBox(secret).decrypt(base64.b64decode(recipient["sealed_key"], validate=True))
            except (CryptoError, binascii.Error, KeyError, TypeError):
                raise DecryptError(f"segment {header['seq']}: sealed key for {my_id} does not open") from None
    raise NotARecipient(f"segment {header['seq']} is not encrypted to custodian key {my_id}")


def decrypt_segment(data: bytes, report: SegmentReport, secret: PrivateKey) -> SegmentPlaintext:
    """Decrypt the authenticated chunks of a segment that verify_segment() accepted."""
    if not report.ok or report.header is None:
        raise ValueError("only a verified segment can be decrypted")
    key = unwrap_segment_key(report.header, secret)
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    try:
        stream_header = base64.b64decode(report.header["stream_header"], validate=True)
        sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, stream_header, key)
    except (binascii.Error, ValueError, CryptoError):
        raise DecryptError(f"segment {report.header['seq']}: bad stream header") from None
    media: list[bytes] = []
    out = SegmentPlaintext(media=b"")
    tag_positions_final: list[int] = []
    view = memoryview(data)
    for index, (offset, length) in enumerate(report.chunks):
        try:
            plaintext, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(
                state, bytes(view[offset:offset + length]), None)
        except CryptoError:
            raise DecryptError(f"segment {report.header['seq']}: chunk {index} fails to decrypt") from None
        kind, body = plaintext[:1], plaintext[1:]
        if kind == CHUNK_KIND_MEDIA:
            media.append(body)
        elif kind == CHUNK_KIND_METADATA:
            try:
                out.metadata.append(json.loads(body))
            except ValueError:
                raise DecryptError(f"segment {report.header['seq']}: chunk {index} metadata is not JSON") from None
        else:
            raise DecryptError(f"segment {report.header['seq']}: chunk {index} has unknown kind {kind!r}")
        out.chunks += 1
        if tag == sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL:
            out.ended_cleanly = True
            tag_positions_final.append(index)
    # The FINAL tag marks exactly the last chunk under a final checkpoint (§7).
    expected = [len(report.chunks) - 1] if report.last and report.last.final else []
    if tag_positions_final != expected:
        raise DecryptError(f"segment {report.header['seq']}: the stream's FINAL tag does not match its "
                           f"final checkpoint")
    out.media = b"".join(media)
    return out
