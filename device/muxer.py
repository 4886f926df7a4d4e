"""Packets in, fragmented MP4 bytes out (SEG-5), with PyAV's MP4 muxer.

A fragment is cut every `fragment_us` of video and at keyframes; each cut comes out
as complete moof+mdat bytes, so every flush of the writer ends on a fragment
boundary and any prefix of flushes is a playable file.
"""
from __future__ import annotations

from datetime import datetime, timezone
from fractions import Fraction

import av

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
        self._container.mux_one(pkt)
        return True

    def take_output(self) -> bytes:
        return self._sink.take()

    def close(self) -> bytes:
        self._container.close()
        return self._sink.take()
