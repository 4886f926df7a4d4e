"""Which samples a fragmented MP4 byte stream has delivered so far, per track.

The writer must know exactly what media a checkpoint makes durable: FFmpeg's muxer
holds packets back (its interleaving queue, the open fragment) and cuts fragments on
its own rules (keyframes, each track's frag_duration), so "handed to the muxer" is
not "on the card". The muxer's output is read here box by box, as it is produced:
only `moof` boxes (a few hundred bytes each) are buffered; `mdat` payloads and
everything else are skipped without being copied.
"""
from __future__ import annotations

import struct

_HEADER = struct.Struct(">I4s")
# A moof far larger than this is not one our muxer wrote (a second of 60 fps video
# with two tracks is ~1 KiB): refuse it instead of buffering without bound.
MOOF_MAX_BYTES = 1 << 20


class FragmentScanError(ValueError):
    """The bytes are not a well-formed sequence of MP4 boxes."""


class FragmentScanner:
    """Feed fragmented-MP4 bytes in order, in pieces of any size; `feed` returns the
    number of samples each completed `moof` added, by track ID. Top-level boxes other
    than `moof` are skipped."""

    def __init__(self) -> None:
        self._pending = bytearray()   # the start of a box not yet complete (header or moof)
        self._skip = 0                # bytes still to skip in a box we do not read

    def feed(self, data: bytes) -> dict[int, int]:
        counts: dict[int, int] = {}
        view = memoryview(data)
        pos = 0
        while pos < len(view):
            if self._skip:
                step = min(self._skip, len(view) - pos)
                self._skip -= step
                pos += step
                continue
            # Gather a header (8 or 16 bytes), then, for a moof, the whole box.
            need = self._box_bytes_needed()
            take = min(need - len(self._pending), len(view) - pos)
            self._pending += view[pos:pos + take]
            pos += take
            if len(self._pending) < self._box_bytes_needed():   # e.g. a 64-bit size follows
                continue
            size, kind, header = self._parse_header()
            if kind == b"moof" and len(self._pending) < size:
                continue   # header known; now the rest of the moof
            if kind == b"moof":
                for track, n in _moof_samples(bytes(self._pending[header:size])).items():
                    counts[track] = counts.get(track, 0) + n
                self._pending.clear()
            else:
                self._skip = size - len(self._pending)
                self._pending.clear()
        return counts

    def _box_bytes_needed(self) -> int:
        if len(self._pending) < 8:
            return 8
        size = _HEADER.unpack_from(self._pending)[0]
        if size == 1 and len(self._pending) < 16:
            return 16
        box_size, kind, _ = self._parse_header()
        return box_size if kind == b"moof" else len(self._pending)

    def _parse_header(self) -> tuple[int, bytes, int]:
        size, kind = _HEADER.unpack_from(self._pending)
        header = 8
        if size == 1:
            size = struct.unpack_from(">Q", self._pending, 8)[0]
            header = 16
        if size == 0:
            raise FragmentScanError(f"box {kind!r} runs to the end of the file: not a fragment stream")
        if size < header:
            raise FragmentScanError(f"box {kind!r} declares {size} bytes, less than its own header")
        if kind == b"moof" and size > MOOF_MAX_BYTES:
            raise FragmentScanError(f"moof of {size} bytes is larger than {MOOF_MAX_BYTES}")
        return size, kind, header


def _children(body: bytes):
    """(type, payload) of each box in `body`, which must be exactly a run of boxes."""
    pos = 0
    while pos < len(body):
        if len(body) - pos < 8:
            raise FragmentScanError("a box header is cut off inside its parent")
        size, kind = _HEADER.unpack_from(body, pos)
        header = 8
        if size == 1:
            if len(body) - pos < 16:
                raise FragmentScanError("a 64-bit box size is cut off inside its parent")
            size = struct.unpack_from(">Q", body, pos + 8)[0]
            header = 16
        if size < header or pos + size > len(body):
            raise FragmentScanError(f"box {kind!r} of {size} bytes does not fit its parent")
        yield kind, body[pos + header:pos + size]
        pos += size


def _moof_samples(moof: bytes) -> dict[int, int]:
    counts: dict[int, int] = {}
    for kind, traf in _children(moof):
        if kind != b"traf":
            continue
        track, samples = None, 0
        for child, payload in _children(traf):
            if child == b"tfhd":
                if len(payload) < 8:
                    raise FragmentScanError("tfhd too short for a track ID")
                track = struct.unpack_from(">I", payload, 4)[0]
            elif child == b"trun":
                if len(payload) < 8:
                    raise FragmentScanError("trun too short for a sample count")
                samples += struct.unpack_from(">I", payload, 4)[0]
        if track is None:
            raise FragmentScanError("traf without tfhd")
        counts[track] = counts.get(track, 0) + samples
    return counts
