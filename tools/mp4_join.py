"""Joins an event's fragmented MP4 segments into one progressive MP4 without a per-packet remux.

The fast path of tools/remux.py. Each segment is read once, front to back: only the
boxes that describe the media are parsed (ftyp, moov, moof); each mdat's payload is
copied to the output in large pieces, never split into packets. The fragments' sample
runs (trun, with tfhd and trex defaults, from tfdt) become the output's sample tables
(tools/mp4_moov.py), written into room reserved at the front of the file, so the
index precedes the media as with FFmpeg's +faststart, without rewriting the file.

The output is the one the PyAV path (remux.py) writes for the same event: the same
tracks, timescales, sample times, sizes and sync flags, the same edit lists. Anything
this parser does not fully understand raises Declined before the output is trusted
(the caller then remuxes the event with PyAV): it never guesses.
"""
from __future__ import annotations

import os
import struct

import numpy as np

from tools import mp4_moov
from tools.mp4_moov import Declined

# Pieces of 128 KiB: measured (interleaved, 14 min of 1080p) 0.7 s of kernel time for
# the export against 0.8 s at 256 KiB and 1.7-2.5 s at 1 MiB.
COPY_BYTES = 128 * 1024
_HEADER = struct.Struct(">I4s")
# trun/tfhd flags (ISO/IEC 14496-12 §8.8.7-8).
TFHD_BASE_OFFSET, TFHD_DESCRIPTION, TFHD_DURATION, TFHD_SIZE, TFHD_FLAGS = 0x1, 0x2, 0x8, 0x10, 0x20
TFHD_DURATION_IS_EMPTY, TFHD_BASE_IS_MOOF = 0x10000, 0x20000
TRUN_DATA_OFFSET, TRUN_FIRST_FLAGS = 0x1, 0x4
TRUN_DURATION, TRUN_SIZE, TRUN_FLAGS, TRUN_CTO = 0x100, 0x200, 0x400, 0x800
# A sample is a sync sample for FFmpeg's demuxer unless it is flagged non-sync or
# depending on others (mov.c, mov_read_trun).
SAMPLE_NON_SYNC, SAMPLE_DEPENDS_YES = 0x10000, 0x1000000
KINDS = {b"vide": "video", b"soun": "audio"}
SKIPPED_TOP_LEVEL = {b"free", b"skip", b"mfra"}


class Track:
    """One kind's samples over the whole event, and its description from the first moov."""

    def __init__(self, kind: str, description: dict) -> None:
        self.kind = kind
        self.description = description   # timescale, stsd, tkhd, hdlr, ... (mp4_moov)
        self.dts: list[np.ndarray] = []
        self.durations: list[np.ndarray] = []
        self.sizes: list[np.ndarray] = []
        self.sync: list[np.ndarray] = []
        self.chunks: list[tuple[int, int]] = []   # (output offset, samples) of each run

    def samples(self) -> int:
        return sum(len(a) for a in self.sizes)


class _Reader:
    """The source read front to back, with a position and exact reads. What it holds
    back is handed out as views, not copies: the media passes through once."""

    def __init__(self, source) -> None:
        self.source, self.pos, self._buf, self._at = source, 0, b"", 0

    def read_upto(self, size: int):
        """Up to `size` bytes (bytes or a memoryview); empty only at the end."""
        if self._at < len(self._buf):
            end = min(len(self._buf), self._at + size)
            data = memoryview(self._buf)[self._at:end]
            self._at = end
        else:
            data = self.source.read(size)
        self.pos += len(data)
        return data

    def read_exact(self, size: int) -> bytes:
        parts, left = [], size
        while left:
            data = self.read_upto(left)
            if not data:
                break
            parts.append(data)
            left -= len(data)
        data = b"".join(parts)
        if len(data) != size:
            raise Declined(f"media ends inside a box ({len(data)} of {size} bytes)")
        return data

    def at_end(self) -> bool:
        if self._at >= len(self._buf):
            self._buf, self._at = self.source.read(COPY_BYTES), 0
        return not self._buf


def _boxes(data: bytes, start: int = 0, end: int | None = None):
    """(kind, body start, body end) of each box in data[start:end]."""
    end = len(data) if end is None else end
    pos = start
    while pos < end:
        if end - pos < 8:
            raise Declined("a box header runs past its parent")
        size, kind = _HEADER.unpack_from(data, pos)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise Declined(f"box {kind!r} runs past its parent")
        yield kind, pos + header, pos + size
        pos += size


def _children(data: bytes, start: int, end: int) -> dict[bytes, list[tuple[int, int]]]:
    found: dict[bytes, list[tuple[int, int]]] = {}
    for kind, body, box_end in _boxes(data, start, end):
        found.setdefault(kind, []).append((body, box_end))
    return found


def _one(children: dict, kind: bytes, where: str) -> tuple[int, int]:
    if len(children.get(kind, ())) != 1:
        raise Declined(f"{where} has {len(children.get(kind, ()))} {kind.decode()} boxes")
    return children[kind][0]


def parse_moov(moov: bytes) -> tuple[dict[int, dict], dict[int, tuple[int, int, int, int]]]:
    """(track id -> description, track id -> trex defaults) of an init segment's moov."""
    top = _children(moov, 0, len(moov))
    tracks: dict[int, dict] = {}
    for start, end in top.get(b"trak", []):
        trak = _children(moov, start, end)
        if b"edts" in trak:
            raise Declined("an init segment's track has an edit list")
        tkhd = moov[slice(*_one(trak, b"tkhd", "trak"))]
        mdia = _children(moov, *_one(trak, b"mdia", "trak"))
        mdhd = moov[slice(*_one(mdia, b"mdhd", "mdia"))]
        hdlr_at = _one(mdia, b"hdlr", "mdia")
        handler = moov[hdlr_at[0] + 8:hdlr_at[0] + 12]
        minf = _children(moov, *_one(mdia, b"minf", "mdia"))
        stbl = _children(moov, *_one(minf, b"stbl", "minf"))
        stsd_at = _one(stbl, b"stsd", "stbl")
        for kind in (b"stts", b"stsz"):
            body, _ = _one(stbl, kind, "stbl")
            if struct.unpack_from(">I", moov, body + 4)[0] != 0:
                raise Declined("an init segment's sample table is not empty")
        track_id = struct.unpack_from(">I", tkhd, 20 if tkhd[0] == 1 else 12)[0]
        if handler not in KINDS or track_id in tracks:
            raise Declined(f"track {track_id} is not one audio or video track ({handler!r})")
        timescale = struct.unpack_from(">I", mdhd, 20 if mdhd[0] == 1 else 12)[0]
        language = mdhd[-4:-2]
        header_box = b"vmhd" if handler == b"vide" else b"smhd"
        tracks[track_id] = {
            "kind": KINDS[handler], "timescale": timescale, "language": language,
            "tkhd": tkhd, "hdlr": _box_bytes(moov, b"hdlr", hdlr_at), "stsd": _box_bytes(moov, b"stsd", stsd_at),
            "media_header": _box_bytes(moov, header_box, _one(minf, header_box, "minf")),
            "dinf": _box_bytes(moov, b"dinf", _one(minf, b"dinf", "minf")),
        }
    trex: dict[int, tuple[int, int, int, int]] = {}
    if b"mvex" in top:
        for body, _ in _children(moov, *_one(top, b"mvex", "moov")).get(b"trex", []):
            track_id, description, duration, size, flags = struct.unpack_from(">5I", moov, body + 4)
            trex[track_id] = (description, duration, size, flags)
    return tracks, trex


def _box_bytes(data: bytes, kind: bytes, at: tuple[int, int]) -> bytes:
    """The box whose body is data[at[0]:at[1]], with a 32-bit header whatever its own was."""
    return struct.pack(">I4s", 8 + at[1] - at[0], kind) + data[at[0]:at[1]]


def _same_description(a: dict, b: dict) -> bool:
    keys = ("kind", "timescale", "stsd", "hdlr", "media_header", "dinf")
    return all(a[k] == b[k] for k in keys)


class Joiner:
    """Feed it each segment's media in order (add_segment), then finish()."""

    def __init__(self, out_path: str, moov_room_bytes: int) -> None:
        self.out_path = out_path
        self.tracks: dict[str, Track] = {}
        # Not "wb": O_TRUNC on the (empty) staged file makes ext4 start writing the
        # whole file back when it is closed (auto_da_alloc), 0.3 s for 1 GB; the
        # export makes no durability promise at that close (as the PyAV path's).
        fd = os.open(out_path, os.O_WRONLY | os.O_CREAT, 0o600)
        if os.fstat(fd).st_size:
            os.ftruncate(fd, 0)
        self._out = os.fdopen(fd, "wb")
        self._out.write(mp4_moov.FTYP)
        self._moov_at = self._out.tell()
        self._room = moov_room_bytes
        self._out.write(b"\0" * moov_room_bytes)
        self._mdat_at = self._out.tell()
        self._out.write(b"\0" * 16)          # the mdat's header, written by finish()

    def add_segment(self, source) -> None:
        try:
            self._add_segment(source)
        except Declined:
            # Media that ends early may be a failed read (plainstream.py reports what
            # stopped it only through check()): that, not a decline, is the outcome.
            check = getattr(source, "check", None)
            if check is not None:
                check()
            raise

    def _add_segment(self, source) -> None:
        reader = _Reader(source)
        if reader.at_end():
            return   # cut short before its first flush: no media at all (as remux.py)
        ids: dict[int, Track] = {}
        trex: dict = {}
        pending: list[tuple[Track, int, int, int]] = []   # (track, input start, bytes, samples)
        seen_moov = False
        while not reader.at_end():
            box_at = reader.pos
            size, kind = _HEADER.unpack(reader.read_exact(8))
            header = 8
            if size == 1:
                size, header = struct.unpack(">Q", reader.read_exact(8))[0], 16
            if size < header:
                raise Declined(f"box {kind!r} of size {size}")
            if kind == b"mdat":
                self._copy_mdat(reader, box_at + header, size - header, pending)
                pending = []
                continue
            if pending:
                raise Declined("a moof is not followed by its mdat")
            if kind == b"ftyp" and box_at == 0:
                reader.read_exact(size - header)
            elif kind == b"moov" and not seen_moov:
                seen_moov = True
                ids, trex = self._tracks_of(reader.read_exact(size - header))
            elif kind == b"moof" and seen_moov:
                pending = self._parse_moof(reader.read_exact(size - header), box_at, header, ids, trex)
            elif kind in SKIPPED_TOP_LEVEL:
                reader.read_exact(size - header)
            else:
                raise Declined(f"unexpected top-level box {kind!r}")
        if pending:
            raise Declined("a segment ends with a moof and no mdat")

    def _tracks_of(self, moov: bytes) -> tuple[dict[int, Track], dict]:
        described, trex = parse_moov(moov)
        ids: dict[int, Track] = {}
        kinds = [d["kind"] for d in described.values()]
        if len(set(kinds)) != len(kinds):
            raise Declined("two tracks of the same kind")
        first = not self.tracks
        for track_id, description in described.items():
            kind = description["kind"]
            if first:
                mp4_moov.check_description(description)
                self.tracks[kind] = Track(kind, description)
            elif kind not in self.tracks:
                raise Declined(f"a later segment has a {kind} track the first does not declare")
            elif not _same_description(self.tracks[kind].description, description):
                raise Declined(f"a later segment's {kind} track is described differently")
            ids[track_id] = self.tracks[kind]
        if first and "video" not in self.tracks:
            raise Declined("the first segment has no video track")
        return ids, trex

    def _parse_moof(self, moof: bytes, moof_at: int, header: int, ids: dict, trex: dict) -> list:
        runs = []
        for kind, start, end in _boxes(moof):
            if kind == b"mfhd":
                continue
            if kind != b"traf":
                raise Declined(f"unexpected box {kind!r} in a moof")
            runs.extend(self._parse_traf(moof, start, end, moof_at, ids, trex))
        return runs

    def _parse_traf(self, moof: bytes, start: int, end: int, moof_at: int, ids: dict, trex: dict) -> list:
        children = _children(moof, start, end)
        if set(children) - {b"tfhd", b"tfdt", b"trun"}:
            raise Declined(f"unexpected boxes in a traf: {sorted(set(children) - {b'tfhd', b'tfdt', b'trun'})}")
        body, tfhd_end = _one(children, b"tfhd", "traf")
        flags = int.from_bytes(moof[body + 1:body + 4], "big")
        track_id = struct.unpack_from(">I", moof, body + 4)[0]
        if track_id not in ids or track_id not in trex:
            raise Declined(f"a fragment of track {track_id}, which the moov does not declare")
        track = ids[track_id]
        description_index, duration, size, sample_flags = trex[track_id]
        pos = body + 8
        if flags & TFHD_BASE_OFFSET:
            base = struct.unpack_from(">Q", moof, pos)[0]
            pos += 8
        elif flags & TFHD_BASE_IS_MOOF:
            base = moof_at
        else:
            raise Declined("a traf without default-base-is-moof or a base data offset")
        for bit in (TFHD_DESCRIPTION, TFHD_DURATION, TFHD_SIZE, TFHD_FLAGS):
            if flags & bit:
                value = struct.unpack_from(">I", moof, pos)[0]
                pos += 4
                if bit == TFHD_DESCRIPTION:
                    description_index = value
                elif bit == TFHD_DURATION:
                    duration = value
                elif bit == TFHD_SIZE:
                    size = value
                else:
                    sample_flags = value
        if pos != tfhd_end or flags & TFHD_DURATION_IS_EMPTY or description_index != 1:
            raise Declined("a tfhd this parser does not understand")
        tfdt_body, _ = _one(children, b"tfdt", "traf")
        dts = struct.unpack_from(">Q" if moof[tfdt_body] == 1 else ">I", moof, tfdt_body + 4)[0]
        runs, data_at = [], base
        for trun_body, trun_end in children.get(b"trun", []):
            run, dts, data_at = self._parse_trun(moof, trun_body, trun_end, base, data_at, dts,
                                                 (duration, size, sample_flags), track)
            if run is not None:
                runs.append(run)
        return runs

    def _parse_trun(self, moof: bytes, body: int, end: int, base: int, data_at: int, dts: int,
                    defaults: tuple[int, int, int], track: Track):
        version = moof[body]
        flags = int.from_bytes(moof[body + 1:body + 4], "big")
        count = struct.unpack_from(">I", moof, body + 4)[0]
        pos = body + 8
        if flags & ~(TRUN_DATA_OFFSET | TRUN_FIRST_FLAGS | TRUN_DURATION | TRUN_SIZE | TRUN_FLAGS | TRUN_CTO):
            raise Declined(f"trun flags {flags:#x}")
        if flags & TRUN_DATA_OFFSET:
            data_at = base + struct.unpack_from(">i", moof, pos)[0]
            pos += 4
        first_flags = None
        if flags & TRUN_FIRST_FLAGS:
            first_flags = struct.unpack_from(">I", moof, pos)[0]
            pos += 4
        fields = [bit for bit in (TRUN_DURATION, TRUN_SIZE, TRUN_FLAGS, TRUN_CTO) if flags & bit]
        if pos + 4 * len(fields) * count != end:
            raise Declined("a trun's length does not match its sample count")
        if count == 0:
            return None, dts, data_at
        table = np.frombuffer(moof, dtype=">u4", count=len(fields) * count, offset=pos).reshape(count, len(fields))
        column = {bit: table[:, i] for i, bit in enumerate(fields)}
        durations = column[TRUN_DURATION].astype(np.int64) if TRUN_DURATION in column \
            else np.full(count, defaults[0], dtype=np.int64)
        sizes = column[TRUN_SIZE].astype(np.int64) if TRUN_SIZE in column else np.full(count, defaults[1], np.int64)
        sample_flags = column[TRUN_FLAGS].astype(np.int64) if TRUN_FLAGS in column \
            else np.full(count, defaults[2], dtype=np.int64)
        if first_flags is not None:
            sample_flags[0] = first_flags
        if TRUN_CTO in column and column[TRUN_CTO].any():
            # Composition offsets (B-frames) change the edit lists' arithmetic; the camera
            # writes none, and the PyAV path handles any that do occur.
            raise Declined(f"non-zero composition offsets (trun version {version})")
        if not sizes.all():
            raise Declined("a sample of size 0")
        starts = np.empty(count, dtype=np.int64)
        starts[0] = dts
        np.cumsum(durations[:-1], out=starts[1:])
        starts[1:] += dts
        track.dts.append(starts)
        track.durations.append(durations)
        track.sizes.append(sizes)
        track.sync.append((sample_flags & (SAMPLE_NON_SYNC | SAMPLE_DEPENDS_YES)) == 0)
        total = int(sizes.sum())
        return (track, data_at, total, count), dts + int(durations.sum()), data_at + total

    def _copy_mdat(self, reader: _Reader, payload_at: int, payload_bytes: int, runs: list) -> None:
        out_at = self._out.tell()
        for track, start, total, count in runs:
            if start < payload_at or start + total > payload_at + payload_bytes:
                raise Declined("a fragment's samples lie outside the mdat that follows it")
            track.chunks.append((out_at + start - payload_at, count))
        left = payload_bytes
        while left:
            data = reader.read_upto(min(left, COPY_BYTES))
            if not data:
                raise Declined("media ends inside an mdat")
            self._out.write(data)
            left -= len(data)

    def finish(self, creation_utc_us: int, title: str) -> dict[str, int]:
        """Writes the index into its room and closes the file; the packet counts per
        kind, or None if the index does not fit its room (the file is left to abandon())."""
        end = self._out.tell()
        for track in self.tracks.values():
            if not track.chunks:
                raise Declined(f"the {track.kind} track has no samples")
        moov = mp4_moov.build_moov([self.tracks[k] for k in ("video", "audio") if k in self.tracks],
                                   creation_utc_us, title)
        if len(moov) + 8 > self._room and len(moov) != self._room:
            return None
        self._out.seek(self._moov_at)
        self._out.write(moov)
        if len(moov) != self._room:
            self._out.write(struct.pack(">I4s", self._room - len(moov), b"free"))
        self._out.seek(self._mdat_at)
        mdat_bytes = end - self._mdat_at - 8
        if mdat_bytes <= 0xFFFFFFFF:   # as FFmpeg: a 32-bit mdat after an 8-byte free box
            self._out.write(struct.pack(">I4sI4s", 8, b"free", mdat_bytes, b"mdat"))
        else:
            self._out.write(struct.pack(">I4sQ", 1, b"mdat", end - self._mdat_at))
        self._out.close()
        return {kind: track.samples() for kind, track in self.tracks.items()}

    def abandon(self) -> None:
        self._out.close()
        try:
            os.unlink(self.out_path)
        except FileNotFoundError:
            pass
