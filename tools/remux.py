"""Joins an event's decrypted fragmented-MP4 segments into one ordinary MP4 (TOOL-2)."""
from __future__ import annotations

import io
import os
from datetime import datetime, timezone

import av

def remux_event(segments: list[bytes], out_path: str, creation_utc_us: int, title: str) -> dict[str, int]:
    """`segments` are an event's decrypted fragmented MP4s in order; their timestamps
    are already event-relative (docs/format.md §3.4). Writes `out_path` and returns
    packet counts per stream kind. Stream copy only: nothing is re-encoded."""
    counts = {"video": 0, "audio": 0}
    output = av.open(out_path, "w", format="mp4", options={"movflags": "+faststart"})
    try:
        output.metadata["creation_time"] = datetime.fromtimestamp(
            creation_utc_us / 1e6, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        output.metadata["title"] = title
        out_streams: dict[str, av.stream.Stream] = {}
        last_dts: dict[str, int] = {}
        for data in segments:
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
