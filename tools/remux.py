"""Joins an event's decrypted fragmented-MP4 segments into one ordinary MP4 (TOOL-2).

Two paths: with room reserved for the index, tools/mp4_join.py first (it copies the
media through and builds the index from the fragments' headers, no per-packet work);
it raises Declined for any input it does not fully understand, and the caller then
remuxes the event again with PyAV (fast=False), which is described below.

Streaming: each segment is read once, front to back, from a file object that decrypts
on demand (tools/plainstream.py); packets go straight to the output muxer. What stays
in memory is the muxer's sample index (tens of bytes per packet) and its interleaving
queue, not the footage.
"""
from __future__ import annotations

import logging
import os
from datetime import datetime, timezone
from typing import Iterable, Protocol

import av

from tools.mp4_join import Declined, Joiner

log = logging.getLogger(__name__)


class MediaSource(Protocol):
    """A segment's decrypted media, read front to back."""

    media_bytes: int  # media bytes handed out so far

    def read(self, size: int) -> bytes: ...


class RemuxError(Exception):
    """A segment's media is not a readable MP4 (a faulty device: it verified and decrypted)."""


class MoovReserveTooSmall(Exception):
    """The space reserved for the sample index at the front was too small; `out_path`
    has been removed. Remux again without a reservation (expected_packets=None)."""


# The output's sample index (moov) goes before the media, so the MP4 plays while it
# downloads. FFmpeg's +faststart writes it at the end and then moves it by rewriting the
# whole file (1.8 s of CPU for 1 GB); reserving room for it at the front instead costs
# a `free` box of the unused part. A moov takes about 14 bytes a packet (stsz, stts,
# ctts, stco, stsc): 48 leaves room for packet rates three times the declared ones.
MOOV_BASE_BYTES = 64 * 1024
MOOV_BYTES_PER_PACKET = 48
INPUT_BUFFER_BYTES = 256 * 1024   # PyAV's reads of the decrypted media: fewer Python calls
# Each segment's codec parameters are in its moov (avcC, esds): FFmpeg's stream probing
# past them reads and decodes media for nothing (0.3 s of CPU over 14 segments; the
# remuxed file is byte-identical).
PROBE = {"probesize": "32", "analyzeduration": "0"}


def expected_packets(media_s: float, video: dict | None, audio: dict | None) -> int:
    """Packets an event of `media_s` seconds holds at its header's declared rates."""
    fps = video.get("fps", 0) if isinstance(video, dict) else 0
    rate_hz = audio.get("sample_rate_hz", 0) if isinstance(audio, dict) else 0
    per_s = (fps if isinstance(fps, (int, float)) else 0) + (rate_hz / 1024 if isinstance(rate_hz, int) else 0)
    return max(0, round(media_s * per_s))


def remux_event(sources: Iterable[MediaSource], out_path: str, creation_utc_us: int, title: str,
                expected_packets: int | None = None, fast: bool = True) -> dict[str, int]:
    """`sources` are an event's decrypted fragmented MP4s in order; their timestamps
    are already event-relative (docs/format.md §3.4). Writes `out_path` and returns
    packet counts per stream kind; with no packet at all, `out_path` is removed.
    Stream copy only: nothing is re-encoded. On any exception `out_path` is removed.
    With `expected_packets`, the sample index is written into room reserved at the
    front (MoovReserveTooSmall if it does not fit); without, by FFmpeg's +faststart.
    `fast` (with `expected_packets`): by mp4_join, which may raise Declined (`out_path`
    removed): then remux again with fast=False."""
    if fast and expected_packets is not None:
        return _join(sources, out_path, creation_utc_us, title, expected_packets)
    counts = {"video": 0, "audio": 0}
    # A track that starts after the other (audio at the activation, or video at its
    # first keyframe after a camera loss) starts with an empty edit in the movie
    # timescale: in µs, not FFmpeg's default ms, so it lands on its exact capture time.
    options = {"movie_timescale": "1000000"}
    if expected_packets is None:
        options["movflags"] = "+faststart"
    else:
        options["moov_size"] = str(MOOV_BASE_BYTES + MOOV_BYTES_PER_PACKET * expected_packets)
    output = av.open(out_path, "w", format="mp4", options=options)
    # An event that started while the camera was lost (FLT-1) begins with segments
    # whose video track is empty, with no codec parameters (SPS/PPS come with the
    # first keyframe). An output track can only be added before the first packet is
    # written, so until a segment with real video parameters arrives its audio is held
    # back (audio only, a few kB a second), with the containers it came from kept open.
    # If the camera never came back, the export has an audio track only.
    templates: dict[str, av.stream.Stream] = {}
    out_streams: dict[str, av.stream.Stream] = {}
    held_containers: list = []
    pending: list = []
    last_dts: dict[str, int] = {}

    def add_streams() -> None:
        for kind in ("video", "audio"):
            if kind in templates:
                out_streams[kind] = output.add_stream_from_template(templates[kind])
        for packet in pending:
            mux(packet)
        pending.clear()

    def mux(packet) -> None:
        kind = packet.stream.type
        if kind not in out_streams:
            return
        packet.stream = out_streams[kind]
        output.mux(packet)
        counts[kind] += 1

    try:
        output.metadata["creation_time"] = datetime.fromtimestamp(
            creation_utc_us / 1e6, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        output.metadata["title"] = title
        for index, source in enumerate(sources):
            try:
                # Not seekable, so the demuxer reads in file order (plainstream.py).
                container = av.open(source, "r", format="mp4", buffer_size=INPUT_BUFFER_BYTES, options=PROBE)
            except (av.error.EOFError, av.error.InvalidDataError):
                if source.media_bytes == 0:
                    continue  # cut short before its first flush: no media at all
                raise RemuxError(f"segment {index} of the event is not a readable MP4") from None
            holding = False
            try:
                if not out_streams:
                    for stream in container.streams:
                        if stream.type in ("video", "audio") and stream.type not in templates \
                                and _has_parameters(stream):
                            templates[stream.type] = stream
                    if "video" in templates:
                        add_streams()
                    else:
                        holding = True
                        held_containers.append(container)
                # Per input stream: its kind and time base, read once (a packet's
                # time_base is a new Fraction on every access: 60k packets a 14-min event).
                kinds = {s.index: (s.type, s.time_base.numerator * 1_000_000, s.time_base.denominator)
                         for s in container.streams if s.type in ("video", "audio") and s.time_base}
                try:
                    for packet in container.demux():
                        kind, scale, denominator = kinds.get(packet.stream_index, (None, 0, 1))
                        if packet.size == 0 or kind is None:
                            continue
                        # Keep decode times strictly increasing across segment joins.
                        dts_us = _round_half_even((packet.dts if packet.dts is not None else packet.pts)
                                                  * scale, denominator)
                        if dts_us <= last_dts.get(kind, -1):
                            continue
                        last_dts[kind] = dts_us
                        if holding:
                            pending.append(packet)
                        else:
                            mux(packet)
                except (av.error.EOFError, av.error.InvalidDataError):
                    pass  # a segment cut short by power loss ends early; keep what it has
            finally:
                if not holding:
                    container.close()
        if not out_streams and pending:
            add_streams()   # the camera never came back: audio only
    except BaseException:
        _close_quietly(output)
        _remove(out_path)
        raise
    finally:
        for container in held_containers:
            container.close()
    if not any(counts.values()):
        _close_quietly(output)  # no stream, no header: FFmpeg may refuse to close it
        _remove(out_path)
        return counts
    try:
        output.close()
    except av.error.ArgumentError:
        # EINVAL: the moov did not fit its reserved room (FFmpeg has already written
        # over the start of the media). Any other error is the disk's, raised as it is.
        _remove(out_path)
        if expected_packets is None:
            raise
        raise MoovReserveTooSmall(f"{sum(counts.values())} packets, room for {expected_packets}") from None
    return counts


def _join(sources: Iterable[MediaSource], out_path: str, creation_utc_us: int, title: str,
          expected_packets: int) -> dict[str, int]:
    joiner = Joiner(out_path, MOOV_BASE_BYTES + MOOV_BYTES_PER_PACKET * expected_packets)
    try:
        for source in sources:
            joiner.add_segment(source)
        counts = joiner.finish(creation_utc_us, title)
    except Declined as exc:
        log.debug("%s: not joined directly (%s); remuxing with PyAV", out_path, exc)
        joiner.abandon()
        raise
    except BaseException:
        joiner.abandon()
        raise
    if counts is None:
        joiner.abandon()
        raise MoovReserveTooSmall(f"room for {expected_packets} packets")
    return counts


def _round_half_even(numerator: int, denominator: int) -> int:
    """round(Fraction(numerator, denominator)) in integers."""
    quotient, remainder = divmod(numerator, denominator)
    if 2 * remainder > denominator or (2 * remainder == denominator and quotient % 2):
        quotient += 1
    return quotient


def _has_parameters(stream) -> bool:
    """False for a video track with no codec parameters (no frame was ever muxed)."""
    if stream.type != "video":
        return True
    return bool(stream.codec_context.extradata) and stream.codec_context.width > 0


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
