"""Joins an event's decrypted fragmented-MP4 segments into one ordinary MP4 (TOOL-2)."""
from __future__ import annotations

import io
import os
from datetime import datetime, timezone
from fractions import Fraction

import av

MICROSECONDS = Fraction(1, 1_000_000)


def _shift(value: int | None, offset_us: int, time_base: Fraction) -> int | None:
    if value is None:
        return None
    return value + round(Fraction(offset_us, 1_000_000) / time_base)


def remux_event(segments: list[tuple[int, bytes]], out_path: str, creation_utc_us: int,
                title: str) -> dict[str, int]:
    """`segments` are (media_start_us, fragmented MP4 bytes) in order. Writes `out_path`
    and returns packet counts per stream kind. Stream copy only: the evidence's
    H.264 and AAC bytes are not re-encoded."""
    counts = {"video": 0, "audio": 0}
    output = av.open(out_path, "w", format="mp4", options={"movflags": "+faststart"})
    try:
        output.metadata["creation_time"] = datetime.fromtimestamp(
            creation_utc_us / 1e6, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        output.metadata["title"] = title
        out_streams: dict[str, av.stream.Stream] = {}
        last_dts: dict[str, int] = {}
        for media_start_us, data in segments:
            if not data:
                continue
            source = av.open(io.BytesIO(data), "r", format="mp4")
            try:
                for stream in source.streams:
                    if stream.type in ("video", "audio") and stream.type not in out_streams:
                        out_streams[stream.type] = output.add_stream_from_template(stream)
                try:
                    for packet in source.demux():
                        kind = packet.stream.type
                        if packet.size == 0 or kind not in out_streams:
                            continue
                        tb = packet.time_base
                        packet.pts = _shift(packet.pts, media_start_us, tb)
                        packet.dts = _shift(packet.dts, media_start_us, tb)
                        # Keep decode times strictly increasing across segment joins.
                        dts_us = round((packet.dts if packet.dts is not None else packet.pts) * tb * 1_000_000)
                        if dts_us <= last_dts.get(kind, -1):
                            continue
                        last_dts[kind] = dts_us
                        packet.stream = out_streams[kind]
                        output.mux(packet)
                        counts[kind] += 1
                except (av.error.EOFError, av.error.InvalidDataError):
                    pass  # a segment cut short by power loss ends early; keep what it has
            finally:
                source.close()
    except BaseException:
        output.close()
        if os.path.exists(out_path):
            os.unlink(out_path)
        raise
    output.close()
    return counts
