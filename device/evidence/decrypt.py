"""Decrypting a verified segment with a custodian's secret key (docs/format.md §7).

`decrypt_chunks` is the streaming form: one authenticated chunk at a time, read on
demand, so a custodian tool's memory does not grow with the segment. `decrypt_segment`
is the whole-segment convenience built on it, for small segments and tests.
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Callable, Iterator

import nacl.bindings as sodium
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, SealedBox

from device.evidence.format import CHUNK_KIND_MEDIA, CHUNK_KIND_METADATA
from device.evidence.keys import key_id
from device.evidence.segment_reader import SegmentReport

_TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL

# read_at(offset, length) -> exactly `length` bytes of the segment file from `offset`.
ReadAt = Callable[[int, int], bytes]


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


def decrypt_chunks(report: SegmentReport, secret: PrivateKey, read_at: ReadAt) -> Iterator[tuple[bytes, bytes | dict]]:
    """Yield (kind, payload) for each authenticated chunk of a segment that
    verify_segment() accepted, in order: media as a memoryview of the decrypted chunk
    (not copied: a 1 GB export would copy 1 GB more), metadata as a parsed dict.
    Raises NotARecipient before yielding anything, DecryptError at the failing chunk;
    the FINAL-tag rule (§7 step 4) is checked once the last chunk has been yielded."""
    if not report.ok or report.header is None:
        raise ValueError("only a verified segment can be decrypted")
    seq = report.header["seq"]
    key = unwrap_segment_key(report.header, secret)
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    try:
        stream_header = base64.b64decode(report.header["stream_header"], validate=True)
        sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, stream_header, key)
    except (binascii.Error, ValueError, CryptoError):
        raise DecryptError(f"segment {seq}: bad stream header") from None
    final_at: list[int] = []
    for index, (offset, length) in enumerate(report.chunks):
        try:
            plaintext, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(state, read_at(offset, length), None)
        except CryptoError:
            raise DecryptError(f"segment {seq}: chunk {index} fails to decrypt") from None
        if tag == _TAG_FINAL:
            final_at.append(index)
        kind = plaintext[:1]
        if kind == CHUNK_KIND_MEDIA:
            yield kind, memoryview(plaintext)[1:]
        elif kind == CHUNK_KIND_METADATA:
            body = plaintext[1:]
            try:
                record = json.loads(body)
            except ValueError:
                record = None
            if not isinstance(record, dict):
                raise DecryptError(f"segment {seq}: chunk {index} metadata is not a JSON object")
            yield kind, record
        else:
            raise DecryptError(f"segment {seq}: chunk {index} has unknown kind {kind!r}")
    # The FINAL tag marks exactly the last chunk under a final checkpoint (§7).
    expected = [len(report.chunks) - 1] if report.last and report.last.final else []
    if final_at != expected:
        raise DecryptError(f"segment {seq}: the stream's FINAL tag does not match its final checkpoint")


def decrypt_segment(data: bytes, report: SegmentReport, secret: PrivateKey) -> SegmentPlaintext:
    """Decrypt the authenticated chunks of a segment that verify_segment() accepted."""
    view = memoryview(data)
    media: list[bytes] = []
    out = SegmentPlaintext(media=b"")
    for kind, payload in decrypt_chunks(report, secret, lambda offset, length: bytes(view[offset:offset + length])):
        if kind == CHUNK_KIND_MEDIA:
            media.append(payload)
        else:
            out.metadata.append(payload)
        out.chunks += 1
    # decrypt_chunks enforces that FINAL is on the last chunk exactly when the last
    # checkpoint is final.
    out.ended_cleanly = bool(out.chunks) and bool(report.last and report.last.final)
    out.media = b"".join(media)
    return out
