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
import threading
from bisect import bisect_left
from itertools import accumulate

import nacl.bindings as sodium
import nacl.utils
from nacl.public import PublicKey, SealedBox
from nacl.signing import SigningKey

from device.evidence.format import (
    CHECKPOINT_RECORD_BYTES, CHUNK_KIND_MEDIA, CHUNK_PLAINTEXT_MAX, MAGIC, PAYLOAD_TYPE, SEGMENT_FORMAT_NAME,
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
        self._background: _BackgroundWrite | None = None
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

    @property
    def offset_bytes(self) -> int:
        """The file's length once everything added so far is written."""
        return self._offset

    @property
    def unwritten_bytes(self) -> int:
        """pending_bytes, plus those of a checkpoint still being written in the background
        (what the card's free space does not yet show)."""
        background = self._background
        return self._pending_bytes + (background.size_bytes if background is not None else 0)

    def _append(self, data: bytes) -> None:
        # Hashed when its checkpoint is sealed (_seal_and_write), possibly on the helper
        # thread: the hash covers the same bytes in the same order either way.
        self._offset += len(data)
        self._pending_bytes += len(data)
        self._pending.append(data)

    def add(self, kind: bytes, data: bytes | list) -> None:
        """Encrypt `data` (bytes, or a list of pieces to be taken as their concatenation)
        as one or more chunks of the given kind, each full but the last (not yet durable)."""
        parts = [data] if isinstance(data, (bytes, bytearray, memoryview)) else data
        for pieces in _split(parts, _DATA_MAX):
            # The one copy of the plaintext: kind byte + the pieces, joined in C.
            self._add_chunk(b"".join((kind, *pieces)), TAG_MESSAGE)

    def _add_chunk(self, plaintext: bytes, tag: int) -> None:
        body = sodium.crypto_secretstream_xchacha20poly1305_push(self._stream, plaintext, None, tag)
        # The record's head and body are kept apart (same bytes as record()): the one
        # join at the checkpoint is the only copy of the ciphertext.
        self._append(RECORD_HEAD.pack(TYPE_CHUNK, len(body)))
        self._append(body)
        self.chunk_count += 1

    def _take_pending(self) -> list[bytes]:
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        return pending

    def checkpoint(self, media_end_us: int) -> Checkpoint:
        """Sign everything so far, write it in one go and make it durable."""
        self.finish()
        job = (self._take_pending(), self.chunk_count, self._offset, media_end_us)
        self._offset += CHECKPOINT_RECORD_BYTES
        self.last_checkpoint = self._seal_and_write(*job, final=False)
        return self.last_checkpoint

    def checkpoint_in_background(self, media_end_us: int) -> None:
        """As checkpoint(), but hashing, signing, the write and the sync run on a helper
        thread while the caller encrypts the next chunks; finish() waits for them. At most
        one runs: the next checkpoint, close() and abandon() finish it first, so the file
        stays a prefix written in order."""
        self.finish()
        job = (self._take_pending(), self.chunk_count, self._offset, media_end_us)
        self._offset += CHECKPOINT_RECORD_BYTES
        self._background = _BackgroundWrite(lambda: self._seal_and_write(*job, final=False),
                                            sum(map(len, job[0])) + CHECKPOINT_RECORD_BYTES)

    def _seal_and_write(self, pending: list[bytes], chunk_count: int, offset: int, media_end_us: int,
                        final: bool) -> Checkpoint:
        for piece in pending:
            self._hash.update(piece)
        unsigned = Checkpoint(self.seq, chunk_count, offset, media_end_us, self._hash.copy().digest(), final)
        cp = Checkpoint(unsigned.seq, chunk_count, offset, media_end_us, unsigned.hash, final,
                        self._signing_key.sign(unsigned.message()).signature)
        rec = cp.to_record()
        if final:
            # The copy makes a damaged clean end distinguishable from a power cut (§3.1).
            pending += (rec, rec)
        else:
            self._hash.update(rec)
            pending.append(rec)
        self._out.write(b"".join(pending))
        self._out.sync()
        return cp

    def finish(self) -> Checkpoint | None:
        """Wait for a checkpoint written in the background: once its write and sync have
        returned it is last_checkpoint; their error (OSError, or a power cut) is raised
        here. None if none was running."""
        background, self._background = self._background, None
        if background is None:
            return None
        background.join()
        if background.error is not None:
            raise background.error
        self.last_checkpoint = background.cp
        return background.cp

    def close(self, last_media: bytes, media_end_us: int) -> Checkpoint:
        """Write the FINAL chunk, the final checkpoint and its copy; sync; close."""
        self.finish()
        split = max(0, len(last_media) - _DATA_MAX)
        if split:
            self.add(CHUNK_KIND_MEDIA, last_media[:split])
        self._add_chunk(CHUNK_KIND_MEDIA + last_media[split:], TAG_FINAL)
        cp = self._seal_and_write(self._take_pending(), self.chunk_count, self._offset, media_end_us, final=True)
        self._out.close()
        self._stream = None
        self.last_checkpoint = cp
        self.closed = True
        return cp

    def abandon(self) -> None:
        """Close the file without a clean end (used when storage fails)."""
        self._stream = None
        self._take_pending()
        background, self._background = self._background, None
        if background is not None:
            background.join()   # a storage fault: what it wrote counts only if it returned
            if background.error is None:
                self.last_checkpoint = background.cp
            elif not isinstance(background.error, Exception):
                raise background.error   # a power cut, not a fault: nothing more runs
        try:
            self._out.close()
        finally:
            self.closed = True


def _split(parts: list, limit: int):
    """The concatenation of `parts` cut into runs of `limit` bytes (the last shorter; one
    empty run for no bytes), each as a list of pieces: whole parts, and slices of the
    parts a cut falls in. Found with accumulate/bisect, not a Python loop per part."""
    ends = list(accumulate(map(len, parts)))
    total = ends[-1] if ends else 0
    if total == 0:
        yield []
        return
    start, i, off = 0, 0, 0       # byte offset; the part holding it, and where in it
    while start < total:
        stop = min(start + limit, total)
        j = bisect_left(ends, stop, i)         # the part holding byte stop - 1
        tail = len(parts[j]) - (ends[j] - stop)   # bytes of part j before `stop`
        if i == j:
            yield [memoryview(parts[i])[off:tail]]
        else:
            yield [memoryview(parts[i])[off:], *parts[i + 1:j], memoryview(parts[j])[:tail]]
        start = stop
        i, off = (j + 1, 0) if tail == len(parts[j]) else (j, tail)


class _BackgroundWrite(threading.Thread):
    """One checkpoint sealed, written and synced off the writer thread (hashing, signing
    and the system calls release the GIL, so the writer encrypts the next chunk meanwhile)."""

    def __init__(self, job, size_bytes: int) -> None:
        super().__init__(name="bwc-writer-io", daemon=True)
        self._job, self.size_bytes = job, size_bytes
        self.cp: Checkpoint | None = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.cp = self._job()
        except BaseException as exc:  # noqa: BLE001 - raised again on the writer thread (finish)
            self.error = exc
        self._job = None
