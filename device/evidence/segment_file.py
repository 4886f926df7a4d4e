"""Writing one segment file (docs/format.md §3): encrypt, sign, checkpoint, sync.

Runs on the writer thread only. Every checkpoint is one write() of everything added
since the last one, followed by sync(), so after a power cut the file is a prefix of
what it would have been (SEG-4). Chunks are held in memory until then: the writer
decides how many fragments one checkpoint covers (device/writer.py).
"""
from __future__ import annotations

import base64
import hashlib
import struct

import nacl.bindings as sodium
import nacl.utils
from nacl.public import PublicKey, SealedBox
from nacl.signing import SigningKey

from device.evidence.format import (
    CHUNK_KIND_MEDIA, CHUNK_PLAINTEXT_MAX, MAGIC, PAYLOAD_TYPE, SEGMENT_FORMAT_NAME,
    RECORD_HEAD, TYPE_CHUNK, TYPE_HEADER, VERSION, Checkpoint, encode_header, record,
)
from device.evidence.keys import key_id
from hal.storage import WritableFile

TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
_DATA_MAX = CHUNK_PLAINTEXT_MAX - 1


class SegmentFile:
    """One open segment. `fields` are the header members that describe the device,
    event and media; this class adds format, version, recipients and stream header."""

    def __init__(self, out: WritableFile, signing_key: SigningKey, fields: dict,
                 custodians: list[PublicKey], version: int = VERSION) -> None:
        # `version` is for making format-v1 test vectors; the firmware writes VERSION.
        if not custodians:
            raise ValueError("a segment needs at least one custodian key")
        self._out = out
        self._signing_key = signing_key
        self.seq: int = fields["seq"]
        segment_key = nacl.utils.random(sodium.crypto_secretstream_xchacha20poly1305_KEYBYTES)
        self._stream = sodium.crypto_secretstream_xchacha20poly1305_state()
        stream_header = sodium.crypto_secretstream_xchacha20poly1305_init_push(self._stream, segment_key)
        recipients = [
            {"key_id": key_id(bytes(pk)), "sealed_key": base64.b64encode(SealedBox(pk).encrypt(segment_key)).decode()}
            for pk in custodians
        ]
        # From here on only the sealed copies and the stream state hold the key (SEG-2).
        del segment_key
        self.header = dict(fields, format=SEGMENT_FORMAT_NAME, version=version, payload=PAYLOAD_TYPE,
                           recipients=recipients, stream_header=base64.b64encode(stream_header).decode(),
                           chunk_plaintext_max=CHUNK_PLAINTEXT_MAX)
        self._hash = hashlib.sha256()
        self._offset = 0
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self.chunk_count = 0
        self.last_checkpoint: Checkpoint | None = None
        self.closed = False
        self._append(MAGIC + struct.pack(">H", version) + record(TYPE_HEADER, encode_header(self.header, version)))
        # K0 signs the header; it is durable before anything else is recorded.
        self.checkpoint(fields["media_start_us"])

    @property
    def pending_bytes(self) -> int:
        """Bytes added since the last checkpoint: not yet written, not durable."""
        return self._pending_bytes

    def _append(self, data: bytes) -> None:
        self._hash.update(data)
        self._offset += len(data)
        self._pending_bytes += len(data)
        self._pending.append(data)

    def add(self, kind: bytes, data: bytes | list) -> None:
        """Encrypt `data` (bytes, or a list of pieces to be taken as their concatenation)
        as one or more chunks of the given kind, each full but the last (not yet durable)."""
        # The one copy of the plaintext: kind byte + the pieces' slices, joined per chunk.
        chunk, room, emitted = [kind], _DATA_MAX, False
        for piece in ([data] if isinstance(data, (bytes, bytearray, memoryview)) else data):
            view, pos = memoryview(piece), 0
            while pos < len(view):
                take = min(room, len(view) - pos)
                chunk.append(view[pos:pos + take])
                pos, room = pos + take, room - take
                if not room:
                    self._add_chunk(b"".join(chunk), TAG_MESSAGE)
                    chunk, room, emitted = [kind], _DATA_MAX, True
        if len(chunk) > 1 or not emitted:
            self._add_chunk(b"".join(chunk), TAG_MESSAGE)

    def _add_chunk(self, plaintext: bytes, tag: int) -> None:
        body = sodium.crypto_secretstream_xchacha20poly1305_push(self._stream, plaintext, None, tag)
        # The record's head and body are kept apart (same bytes as record()): the one
        # join at the checkpoint is the only copy of the ciphertext.
        self._append(RECORD_HEAD.pack(TYPE_CHUNK, len(body)))
        self._append(body)
        self.chunk_count += 1

    def _signed_checkpoint(self, media_end_us: int, final: bool) -> Checkpoint:
        unsigned = Checkpoint(self.seq, self.chunk_count, self._offset, media_end_us,
                              self._hash.copy().digest(), final)
        signature = self._signing_key.sign(unsigned.message()).signature
        return Checkpoint(unsigned.seq, unsigned.chunk_count, unsigned.offset, unsigned.media_end_us,
                          unsigned.hash, final, signature)

    def checkpoint(self, media_end_us: int) -> Checkpoint:
        """Sign everything so far, write it in one go and make it durable."""
        cp = self._signed_checkpoint(media_end_us, final=False)
        self._append(cp.to_record())
        self._write_pending()
        self.last_checkpoint = cp
        return cp

    def close(self, last_media: bytes, media_end_us: int) -> Checkpoint:
        """Write the FINAL chunk, the final checkpoint and its copy; sync; close."""
        split = max(0, len(last_media) - _DATA_MAX)
        if split:
            self.add(CHUNK_KIND_MEDIA, last_media[:split])
        self._add_chunk(CHUNK_KIND_MEDIA + last_media[split:], TAG_FINAL)
        cp = self._signed_checkpoint(media_end_us, final=True)
        rec = cp.to_record()
        # The copy makes a damaged clean end distinguishable from a power cut (§3.1).
        self._pending.extend((rec, rec))
        self._pending_bytes += 2 * len(rec)
        self._write_pending()
        self._out.close()
        self._stream = None
        self.last_checkpoint = cp
        self.closed = True
        return cp

    def abandon(self) -> None:
        """Close the file without a clean end (used when storage fails)."""
        self._stream = None
        self._pending.clear()
        self._pending_bytes = 0
        try:
            self._out.close()
        finally:
            self.closed = True

    def _write_pending(self) -> None:
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        self._out.write(data)
        self._out.sync()
