"""The progressive MP4's index (moov) from the joined tracks' samples (tools/mp4_join.py).

Written as FFmpeg's movenc writes it for the PyAV path (tools/remux.py) so the two
outputs demux to the same packets and stream times: a µs movie timescale, each track's
own timescale (video's as the camera wrote it, audio's its sample rate), an edit list
on every track, with an empty edit first when the track starts after 0 (audio that
starts at the activation, after the pre-event video), stss only when some but not all
video samples are sync samples, AAC's roll-distance group. Each track's stsd (avcC,
esds), hdlr, vmhd/smhd and dinf are the first segment's, byte for byte.
"""
from __future__ import annotations

import struct

import numpy as np

MOVIE_TIMESCALE = 1_000_000
SECONDS_1904_TO_1970 = 2_082_844_800
INT32_MAX, UINT32_MAX = 2**31 - 1, 2**32 - 1
ENCODER = "OpenBWC mp4_join"
_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


class Declined(Exception):
    """The input is something the fast path does not fully understand; remux with PyAV."""


def box(kind: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I4s", 8 + len(body), kind) + body


# The brands FFmpeg's mp4 muxer writes for H.264 + AAC with edit lists.
FTYP = box(b"ftyp", b"isom", struct.pack(">I", 512), b"isomiso2avc1mp41")


def full_box(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return box(kind, struct.pack(">I", version << 24 | flags), *parts)


def _sample_entry(stsd: bytes) -> tuple[bytes, bytes]:
    """(format, entry) of an stsd box holding exactly one sample entry."""
    if len(stsd) < 24 or struct.unpack_from(">I", stsd, 12)[0] != 1:
        raise Declined("an stsd without exactly one sample entry")
    size, kind = struct.unpack_from(">I4s", stsd, 16)
    if 16 + size != len(stsd):
        raise Declined("an stsd's sample entry does not fill it")
    return kind, stsd[16:]


def _aac_object_type(entry: bytes) -> int | None:
    """The esds DecoderConfigDescriptor's objectTypeIndication of an mp4a entry."""
    at = entry.find(b"esds")
    if at < 0:
        return None
    pos = at + 8   # past 'esds' and its version/flags

    def descriptor(pos: int) -> tuple[int, int, int]:
        tag, length = entry[pos], 0
        pos += 1
        for _ in range(4):
            byte = entry[pos]
            pos += 1
            length = length << 7 | byte & 0x7F
            if not byte & 0x80:
                break
        return tag, length, pos

    try:
        tag, _, pos = descriptor(pos)
        if tag != 3:
            return None
        flags = entry[pos + 2]
        pos += 3 + (2 if flags & 0x80 else 0) + (1 + entry[pos + 3] if flags & 0x40 else 0) + (2 if flags & 0x20 else 0)
        tag, _, pos = descriptor(pos)
        return entry[pos] if tag == 4 else None
    except IndexError:
        return None


def _has_parameters(entry: bytes) -> bool:
    """An avc1 entry with a size and an avcC holding at least one SPS (ISO/IEC 14496-15)."""
    at = entry.find(b"avcC")
    if at < 4 or len(entry) < 36 or not all(struct.unpack_from(">HH", entry, 32)):
        return False
    size = struct.unpack_from(">I", entry, at - 4)[0]
    body = entry[at + 4:at - 4 + size]
    return len(body) >= 7 and body[0] == 1 and body[5] & 0x1F >= 1


def check_description(description: dict) -> None:
    """Raises Unsupported for a track whose output FFmpeg would describe differently."""
    kind, entry = _sample_entry(description["stsd"])
    timescale = description["timescale"]
    if description["kind"] == "video":
        # No avcC: the camera was lost before the first keyframe (FLT-1); the PyAV
        # path takes the parameters from a later segment. movenc raises timescales
        # below 10000.
        if kind != b"avc1" or not _has_parameters(entry) or timescale < 10000:
            raise Declined(f"video sample entry {kind!r} without codec parameters or at timescale {timescale}")
        description["roll"] = False
    else:
        if kind != b"mp4a" or len(entry) < 36 or struct.unpack_from(">H", entry, 32)[0] != timescale \
                or _aac_object_type(entry) != 0x40:
            raise Declined(f"audio sample entry {kind!r} (timescale {timescale}) is not AAC at its sample rate")
        description["roll"] = True


def _rescale_up(value: int, timescale: int) -> int:
    return -(-value * MOVIE_TIMESCALE // timescale)


def _check_times(dts: np.ndarray, timescale: int, kind: str) -> None:
    """The PyAV path drops a packet whose µs decode time does not increase (and any
    before 0): the fast path must find none to drop."""
    scaled = dts * MOVIE_TIMESCALE
    quotient, remainder = np.divmod(scaled, timescale)
    up = (2 * remainder > timescale) | ((2 * remainder == timescale) & (quotient % 2 == 1))
    dts_us = quotient + up
    if dts_us[0] < 0 or (len(dts_us) > 1 and not (np.diff(dts_us) > 0).all()):
        raise Declined(f"{kind} decode times that do not increase (overlapping segments)")


def _runs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start index, value) of each run of equal values."""
    starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
    return starts, values[starts]


def _stbl(track, dts: np.ndarray, durations: np.ndarray) -> bytes:
    sizes = np.concatenate(track.sizes)
    sync = np.concatenate(track.sync)
    count = len(sizes)
    deltas = np.empty(count, dtype=np.int64)
    deltas[:-1] = np.diff(dts)
    deltas[-1] = durations[-1]
    starts, values = _runs(deltas)
    run_lengths = np.diff(np.append(starts, count))
    stts = full_box(b"stts", 0, 0, struct.pack(">I", len(starts)),
                    np.column_stack((run_lengths, values)).astype(">u4").tobytes())
    parts = [track.description["stsd"], stts]
    n_sync = int(sync.sum())
    if track.kind == "video" and 0 < n_sync < count:
        parts.append(full_box(b"stss", 0, 0, struct.pack(">I", n_sync),
                              (np.flatnonzero(sync) + 1).astype(">u4").tobytes()))
    chunk_counts = np.array([c for _, c in track.chunks], dtype=np.int64)
    offsets = np.array([o for o, _ in track.chunks], dtype=np.int64)
    first, per_chunk = _runs(chunk_counts)
    stsc = np.column_stack((first + 1, per_chunk, np.ones_like(first))).astype(">u4")
    parts.append(full_box(b"stsc", 0, 0, struct.pack(">I", len(first)), stsc.tobytes()))
    if (sizes == sizes[0]).all():
        parts.append(full_box(b"stsz", 0, 0, struct.pack(">II", int(sizes[0]), count)))
    else:
        parts.append(full_box(b"stsz", 0, 0, struct.pack(">II", 0, count), sizes.astype(">u4").tobytes()))
    if offsets.max() > UINT32_MAX:
        parts.append(full_box(b"co64", 0, 0, struct.pack(">I", len(offsets)), offsets.astype(">u8").tobytes()))
    else:
        parts.append(full_box(b"stco", 0, 0, struct.pack(">I", len(offsets)), offsets.astype(">u4").tobytes()))
    if track.description["roll"]:
        # AAC's decoder needs the previous frame: a roll distance of -1, as movenc writes.
        parts.append(full_box(b"sgpd", 1, 0, b"roll", struct.pack(">IIh", 2, 1, -1)))
        parts.append(full_box(b"sbgp", 0, 0, b"roll", struct.pack(">III", 1, count, 1)))
    return box(b"stbl", *parts)


def _elst(delay_us: int, media_us: int) -> bytes:
    version = 1 if max(delay_us, media_us) >= INT32_MAX else 0
    entry = ">QqI" if version else ">IiI"
    entries = [(delay_us, -1, 0x10000)] if delay_us > 0 else []
    entries.append((media_us, 0, 0x10000))
    return box(b"edts", full_box(b"elst", version, 0, struct.pack(">I", len(entries)),
                                 *(struct.pack(entry, *e) for e in entries)))


def _trak(track, track_id: int, created: int) -> tuple[bytes, int]:
    """The trak box and its duration in the movie timescale."""
    description = track.description
    timescale = description["timescale"]
    dts = np.concatenate(track.dts)
    durations = np.concatenate(track.durations)
    _check_times(dts, timescale, track.kind)
    first = int(dts[0])
    media_duration = int(dts[-1] + durations[-1]) - first
    delay_us = first * MOVIE_TIMESCALE // timescale
    movie_duration = _rescale_up(first + media_duration, timescale)
    version = 1 if movie_duration >= INT32_MAX or created > UINT32_MAX else 0
    times = struct.pack(">QQIIQ" if version else ">IIIII", created, created, track_id, 0, movie_duration)
    tkhd = full_box(b"tkhd", version, 3, times, b"\0" * 8, description["tkhd"][-52:])
    version = 1 if media_duration >= INT32_MAX or created > UINT32_MAX else 0
    mdhd = full_box(b"mdhd", version, 0, struct.pack(">QQIQ" if version else ">IIII", created, created, timescale,
                                                     media_duration), description["language"], b"\0\0")
    minf = box(b"minf", description["media_header"], description["dinf"], _stbl(track, dts, durations))
    mdia = box(b"mdia", mdhd, description["hdlr"], minf)
    return box(b"trak", tkhd, _elst(delay_us, _rescale_up(media_duration, timescale)), mdia), movie_duration


def _udta(title: str) -> bytes:
    def item(kind: bytes, text: str) -> bytes:
        return box(kind, box(b"data", struct.pack(">II", 1, 0), text.encode("utf-8")))

    hdlr = full_box(b"hdlr", 0, 0, b"\0" * 4, b"mdirappl", b"\0" * 9)
    return box(b"udta", full_box(b"meta", 0, 0, hdlr, box(b"ilst", item(b"\xa9nam", title),
                                                            item(b"\xa9too", ENCODER))))


def build_moov(tracks: list, creation_utc_us: int, title: str) -> bytes:
    """`tracks` in output order (video, then audio); numbered from 1 as movenc does."""
    created = creation_utc_us // 1_000_000 + SECONDS_1904_TO_1970
    traks, durations = [], []
    for track_id, track in enumerate(tracks, start=1):
        trak, duration = _trak(track, track_id, created)
        traks.append(trak)
        durations.append(duration)
    duration = max(durations)
    version = 1 if duration >= UINT32_MAX or created > UINT32_MAX else 0
    mvhd = full_box(b"mvhd", version, 0,
                    struct.pack(">QQIQ" if version else ">IIII", created, created, MOVIE_TIMESCALE, duration),
                    struct.pack(">IH", 0x10000, 0x100), b"\0" * 10, _MATRIX, b"\0" * 24,
                    struct.pack(">I", len(tracks) + 1))
    return box(b"moov", mvhd, *traks, _udta(title))
