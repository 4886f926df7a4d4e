"""Packets in, fragmented MP4 bytes out (SEG-5), with PyAV's MP4 muxer.

A fragment is cut every `fragment_us` of each track and at video keyframes; each cut
comes out as complete moof+mdat bytes, so every flush of the writer ends on a
fragment boundary and any prefix of flushes is a playable file. FFmpeg cuts on each
track's own duration, so while the camera delivers nothing the audio alone still
comes out about once per `fragment_us` (FLT-1).

What the muxer has *delivered* lags what it was given (FFmpeg's interleaving queue
and the open fragment): `delivered(kind)` reads the output's `moof` boxes
(device/fragment_scan.py) to say exactly which samples are in the bytes taken so far.
"""
from __future__ import annotations

from collections import deque
from datetime import datetime, timezone
from fractions import Fraction

import av

from device.fragment_scan import FragmentScanner
from hal.media import AudioFormat, MediaPacket, VideoFormat

MICROSECONDS = Fraction(1, 1_000_000)


class _Collector:
    """A write-only file object: the muxer never seeks (empty_moov, fragmented)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


class FragmentMuxer:
    def __init__(self, video: VideoFormat, audio: AudioFormat | None, fragment_us: int,
                 creation_utc_us: int) -> None:
        self._sink = _Collector()
        self._container = av.open(self._sink, "w", format="mp4", options={
            "movflags": "empty_moov+default_base_moof+frag_keyframe+frag_discont",
            "frag_duration": str(fragment_us),
            # With frag_discont and no edit lists, each track's first fragment
            # carries its real decode time (tfdt), so audio that starts at the
            # activation, after the pre-event video, stays in sync in any player.
            "use_editlist": "0",
            "avoid_negative_ts": "disabled",
            # Push each fragment out of avio at once instead of holding 32 KiB back.
            "flush_packets": "1",
            # We feed packets in time order; don't hold them back to interleave.
            "max_interleave_delta": "1",
        })
        created = datetime.fromtimestamp(creation_utc_us / 1e6, tz=timezone.utc)
        self._container.metadata["creation_time"] = created.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        # The video extradata (SPS/PPS) is taken from the first keyframe by PyAV.
        self._video = self._container.add_mux_stream(
            "h264", rate=video.fps, width=video.width, height=video.height, time_base=MICROSECONDS)
        self._audio = None
        if audio is not None:
            # An encoder context only to describe the stream: FFmpeg's AAC encoder
            # yields the same AudioSpecificConfig as the microphone's (hal/microphone.py).
            self._audio = self._container.add_stream(
                "aac", rate=audio.sample_rate_hz, layout="mono" if audio.channels == 1 else "stereo")
            self._audio.codec_context.bit_rate = audio.bitrate_bps
        self._last_dts = {"video": -1, "audio": -1}
        # FFmpeg numbers MP4 tracks in stream order from 1 (movenc: track_id = index + 1).
        self._kind_of_track = {1: "video", 2: "audio"}
        self._scanner = FragmentScanner()
        # (pts_us, end_us) of each muxed sample not yet seen in the output, oldest first.
        self._undelivered: dict[str, deque[tuple[int, int]]] = {"video": deque(), "audio": deque()}
        self._delivered: dict[str, tuple[int, int] | None] = {"video": None, "audio": None}

    def add(self, packet: MediaPacket, pts_us: int) -> bool:
        """Mux one packet at `pts_us` after the segment start; False if it was dropped."""
        stream = self._video if packet.kind == "video" else self._audio
        if stream is None or pts_us < 0 or pts_us <= self._last_dts[packet.kind]:
            return False
        self._last_dts[packet.kind] = pts_us
        pkt = av.Packet(packet.data)
        pkt.stream = stream
        pkt.time_base = MICROSECONDS
        pkt.pts = pkt.dts = pts_us
        pkt.duration = packet.duration_us
        pkt.is_keyframe = packet.keyframe
        self._undelivered[packet.kind].append((pts_us, pts_us + packet.duration_us))
        self._container.mux_one(pkt)
        return True

    def take_output(self) -> bytes:
        """The bytes produced since the last call: whole fragments (or nothing)."""
        return self._account(self._sink.take())

    def close(self) -> bytes:
        """Flush everything still held and end the file; the rest of the bytes."""
        self._container.close()
        return self._account(self._sink.take())

    def delivered(self, kind: str) -> tuple[int, int] | None:
        """(pts_us, end_us) of the newest `kind` sample in the bytes taken so far."""
        return self._delivered[kind]

    def undelivered(self, kind: str) -> int:
        """How many `kind` samples were muxed but are not in the bytes taken so far."""
        return len(self._undelivered[kind])

    def _account(self, data: bytes) -> bytes:
        if data:
            for track, count in self._scanner.feed(data).items():
                kind = self._kind_of_track.get(track)
                pending = self._undelivered.get(kind)
                if pending is None or count > len(pending):
                    raise RuntimeError(f"muxer output holds {count} samples of track {track}, "
                                       f"{0 if pending is None else len(pending)} were muxed")
                for _ in range(count):
                    self._delivered[kind] = pending.popleft()
        return data
