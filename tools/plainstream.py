"""A segment's decrypted media as a read-only file object, decrypted on demand.

PyAV reads its input through `read(size)` calls (32 KiB at a time). This object answers
them from one decrypted chunk (at most 1 MiB) and pulls the next chunk from the segment
file only when that one is used up, so no plaintext intermediate file is written and
memory does not grow with the segment.

It is deliberately not seekable (no `seek`/`tell`): FFmpeg's MP4 demuxer then reads a
fragmented MP4 front to back (moov, then each moof + mdat, in file order) and never asks
to go back; a seekable input would make it jump to the end for the `mfra` box first.

PyAV calls `read` from C. An exception raised there is not reliably passed back (a
KeyboardInterrupt is even swallowed and the read retried forever), so `read` never
raises: it records what went wrong, reports end of file, and `check()` raises it once
PyAV has returned.

Decryption runs one step ahead, on its own thread: it reads and decrypts the next
AHEAD_CHUNKS chunks while PyAV demuxes and muxes this one (libsodium, pread and FFmpeg's
muxing all release the GIL), so an export uses both cores. Memory stays bounded: at
most AHEAD_CHUNKS + 1 chunks of plaintext (about 3 MiB) per open segment.
"""
from __future__ import annotations

import os
import queue
import threading
from typing import Callable

from nacl.public import PrivateKey

from device.evidence.decrypt import decrypt_chunks
from device.evidence.format import CHUNK_KIND_MEDIA
from device.evidence.segment_reader import SegmentReport

AHEAD_CHUNKS = 2
_END = object()


class _Failed:
    """What stopped the decrypting thread, handed over to read()."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class SegmentMediaReader:
    """One verified segment's media, for one front-to-back pass. `interrupt_check` is
    called before every read; whatever it raises stops the reading, and check()
    raises it again."""

    def __init__(self, path: str, report: SegmentReport, secret: PrivateKey,
                 interrupt_check: Callable[[], None] = lambda: None) -> None:
        self.metadata: list[dict] = []   # the segment's metadata records, as they stream past
        self.media_bytes = 0
        self._interrupt_check = interrupt_check
        self._failure: BaseException | None = None
        self._buffer = b""
        self._pos = 0
        self._ended = False
        self._fd = os.open(path, os.O_RDONLY)
        self._ahead: queue.Queue = queue.Queue(AHEAD_CHUNKS)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._decrypt_ahead, name="bwc-decrypt", daemon=True,
                                        args=(decrypt_chunks(report, secret, self._read_at),))
        self._thread.start()

    def _decrypt_ahead(self, chunks) -> None:
        # release() drains the queue after setting _stopping, so a put here never
        # blocks for good: at most one more lands in the emptied queue.
        try:
            for item in chunks:
                self._ahead.put(item)
                if self._stopping.is_set():
                    return
            self._ahead.put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to read(), then check()
            self._ahead.put(_Failed(exc))

    def _read_at(self, offset: int, length: int) -> bytes:
        # Should the file have changed since it was verified, the chunk read here
        # fails to decrypt (secretstream authenticates every chunk and their order).
        return os.pread(self._fd, length, offset)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:
        if self._failure is not None or self._fd < 0 or self._ended:
            return b""
        try:
            self._interrupt_check()
            while self._pos >= len(self._buffer):
                item = self._ahead.get()
                if item is _END:
                    self._ended = True
                    return b""
                if isinstance(item, _Failed):
                    raise item.exc
                kind, payload = item
                if kind == CHUNK_KIND_MEDIA:
                    self._buffer, self._pos = payload, 0
                    self.media_bytes += len(payload)
                else:
                    self.metadata.append(payload)
            end = len(self._buffer) if size is None or size < 0 else self._pos + size
            data = bytes(self._buffer[self._pos:end])   # PyAV wants bytes
            self._pos += len(data)
            return data
        except BaseException as exc:  # noqa: BLE001 - handed back by check(), see above
            self._failure = exc
            return b""

    def drain(self) -> None:
        """Read to the end: metadata after the last media byte, and the FINAL-tag check."""
        while self.read(1 << 20):
            pass

    def check(self) -> None:
        """Raise what stopped `read` early, if anything (a DecryptError, an interrupt)."""
        if self._failure is not None:
            raise self._failure

    def release(self) -> None:
        # Not named close(): PyAV would call a file object's close() itself.
        if self._fd >= 0:
            self._stopping.set()
            while True:   # unblock the decrypting thread (see _decrypt_ahead)
                try:
                    self._ahead.get_nowait()
                except queue.Empty:
                    break
            self._thread.join()
            os.close(self._fd)
            self._fd = -1
        self._buffer = b""

    def __enter__(self) -> "SegmentMediaReader":
        return self

    def __exit__(self, *exc) -> None:
        self.release()
