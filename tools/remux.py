"""Joins an event's decrypted fragmented-MP4 segments into one ordinary MP4 (TOOL-2).

Streaming: each segment is read once, front to back, from a file object that decrypts
on demand (tools/plainstream.py); packets go straight to the output muxer. What stays
in memory is the muxer's sample index (tens of bytes per packet) and its interleaving
queue, not the footage.
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Iterable, Protocol

import av


class MediaSource(Protocol):
    """A segment's decrypted media, read front to back."""

    media_bytes: int  # media bytes handed out so far

    def read(self, size: int) -> bytes: ...


class RemuxError(Exception):
    """A segment's media is not a readable MP4 (a faulty device: it verified and decrypted)."""


def remux_event(sources: Iterable[MediaSource], out_path: str, creation_utc_us: int, title: str) -> dict[str, int]:
    """`sources` are an event's decrypted fragmented MP4s in order; their timestamps
    are already event-relative (docs/format.md §3.4). Writes `out_path` and returns
    packet counts per stream kind; with no packet at all, `out_path` is removed.
    Stream copy only: nothing is re-encoded. On any exception `out_path` is removed."""
    counts = {"video": 0, "audio": 0}
    output = av.open(out_path, "w", format="mp4", options={"movflags": "+faststart"})
    try:
        output.metadata["creation_time"] = datetime.fromtimestamp(
            creation_utc_us / 1e6, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        output.metadata["title"] = title
        out_streams: dict[str, av.stream.Stream] = {}
        last_dts: dict[str, int] = {}
        for index, source in enumerate(sources):
            try:
                # Not seekable, so the demuxer reads in file order (plainstream.py).
                container = av.open(source, "r", format="mp4")
            except (av.error.EOFError, av.error.InvalidDataError):
                if source.media_bytes == 0:
                    continue  # cut short before its first flush: no media at all
                raise RemuxError(f"segment {index} of the event is not a readable MP4") from None
            try:
                for stream in container.streams:
                    if stream.type in ("video", "audio") and stream.type not in out_streams:
                        out_streams[stream.type] = output.add_stream_from_template(stream)
                try:
                    for packet in container.demux():
                        kind = packet.stream.type
                        if packet.size == 0 or kind not in out_streams:
                            continue
                        # Keep decode times strictly increasing across segment joins.
                        dts_us = round((packet.dts if packet.dts is not None else packet.pts)
                                       * packet.time_base * 1_000_000)
                        if dts_us <= last_dts.get(kind, -1):
                            continue
                        last_dts[kind] = dts_us
                        packet.stream = out_streams[kind]
                        output.mux(packet)
                        counts[kind] += 1
                except (av.error.EOFError, av.error.InvalidDataError):
                    pass  # a segment cut short by power loss ends early; keep what it has
            finally:
                container.close()
    except BaseException:
        _close_quietly(output)
        _remove(out_path)
        raise
    if not any(counts.values()):
        _close_quietly(output)  # no stream, no header: FFmpeg may refuse to close it
        _remove(out_path)
        return counts
    output.close()
    return counts


def _close_quietly(output) -> None:
    try:
        output.close()
    except Exception:  # noqa: BLE001 - the file is being thrown away
        pass


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
