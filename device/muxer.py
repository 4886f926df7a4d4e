"""Packets in, fragmented MP4 bytes out (SEG-5).

PyAV's MP4 muxer writes the init segment (ftyp+moov, from the first packet: the video
keyframe's SPS/PPS, the AAC stream's AudioSpecificConfig); every fragment after it is
built here (device/fmp4.py). A fragment is cut before each video keyframe, when a
track's samples in the open fragment span `fragment_us`, and whenever the writer asks
(`cut()`: at the end of an activation's pre-event, so the partial GOP up to the press
need not wait for the next keyframe). Each cut comes out as one complete moof+mdat, so
every flush of the writer ends on a fragment boundary and any prefix of flushes is a
playable file. Cutting on each track's own span means that while the camera delivers
nothing the audio alone still comes out about once per `fragment_us` (FLT-1).

Nothing is held back beyond the open fragment, so `delivered(kind)` is exact: the
newest sample of each track in the bytes taken so far.
"""
from __future__ import annotations

from datetime import datetime, timezone
from fractions import Fraction

import av

from device import fmp4
from hal.media import AudioFormat, MediaPacket, VideoFormat

MICROSECONDS = Fraction(1, 1_000_000)


class _Collector:
    """A write-only file object: the muxer never seeks (empty_moov, fragmented)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        return len(data)


def init_segment(video: VideoFormat, audio: AudioFormat | None, creation_utc_us: int,
                 first: MediaPacket) -> bytes:
    """ftyp+moov as FFmpeg's movenc writes them for these streams, given the first packet."""
    sink = _Collector()
    container = av.open(sink, "w", format="mp4", options={
        "movflags": "empty_moov+default_base_moof+frag_keyframe+frag_discont",
        # No edit lists: each track's fragments carry their real decode time (tfdt).
        "use_editlist": "0", "avoid_negative_ts": "disabled", "flush_packets": "1"})
    created = datetime.fromtimestamp(creation_utc_us / 1e6, tz=timezone.utc)
    container.metadata["creation_time"] = created.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # The video extradata (SPS/PPS) is taken from the first keyframe by PyAV.
    streams = {"video": container.add_mux_stream(
        "h264", rate=video.fps, width=video.width, height=video.height, time_base=MICROSECONDS)}
    if audio is not None:
        # An encoder context only to describe the stream: FFmpeg's AAC encoder
        # yields the same AudioSpecificConfig as the microphone's (hal/microphone.py).
        streams["audio"] = container.add_stream(
            "aac", rate=audio.sample_rate_hz, layout="mono" if audio.channels == 1 else "stereo")
        streams["audio"].codec_context.bit_rate = audio.bitrate_bps
    pkt = av.Packet(first.data)
    pkt.stream = streams[first.kind]
    pkt.time_base = MICROSECONDS
    pkt.pts = pkt.dts = 0
    pkt.duration = first.duration_us
    pkt.is_keyframe = first.keyframe
    container.mux_one(pkt)
    container.close()   # its fragment and trailer are dropped: only ftyp+moov are kept
    data = b"".join(sink.parts)
    init = [data[pos:pos + size] for kind, pos, size in _top_boxes(data) if kind in (b"ftyp", b"moov")]
    if len(init) != 2:
        raise fmp4.InitSegmentError("FFmpeg wrote no ftyp+moov")
    return b"".join(init)


def _top_boxes(data: bytes):
    pos = 0
    while pos + 8 <= len(data):
        size, kind = fmp4._BOX.unpack_from(data, pos)
        if size < 8:
            return
        yield kind, pos, size
        pos += size


class _Open:
    """One track's samples in the open fragment."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.dts: list[int] = []         # decode times, track units
        self.sizes: list[int] = []
        self.flags: list[int] = []
        self.payload: list = []
        self.first_us: int | None = None
        self.last: tuple[int, int] | None = None   # (pts_us, end_us) of the newest sample
        self.last_duration = 0


class FragmentMuxer:
    def __init__(self, video: VideoFormat, audio: AudioFormat | None, fragment_us: int,
                 creation_utc_us: int) -> None:
        self._video_format, self._audio_format = video, audio
        self._fragment_us, self._creation_utc_us = fragment_us, creation_utc_us
        self._tracks: dict[str, fmp4.Track] | None = None   # from the init segment
        self._open = {"video": _Open(), "audio": _Open()}
        self._last_dts = {"video": -1, "audio": -1}
        self._sequence = 0
        self._output: list = []   # pieces of whole fragments (and the init) not yet taken
        self._delivered: dict[str, tuple[int, int] | None] = {"video": None, "audio": None}
        self._cut_delivered: dict[str, tuple[int, int]] = {}   # in _output, not yet taken

    def add(self, packet: MediaPacket, pts_us: int) -> bool:
        """Mux one packet at `pts_us` after the segment start; False if it was dropped."""
        kind = packet.kind
        if kind == "audio" and self._audio_format is None or pts_us < 0 or pts_us <= self._last_dts[kind]:
            return False
        self._last_dts[kind] = pts_us
        if self._tracks is None:
            init = init_segment(self._video_format, self._audio_format, self._creation_utc_us, packet)
            self._tracks = fmp4.read_tracks(init)
            self._output.append(init)   # taken with the first fragment: never alone
        track = self._open[kind]
        if kind == "video" and packet.keyframe and track.dts:
            self._cut()
        scale = self._tracks["vide" if kind == "video" else "soun"].timescale
        track.dts.append((pts_us * scale + 500_000) // 1_000_000)
        if kind == "video":
            track.sizes.append(fmp4.annexb_to_samples(packet.data, track.payload))
            track.flags.append(fmp4.SAMPLE_SYNC if packet.keyframe else fmp4.SAMPLE_NON_SYNC)
        else:
            track.sizes.append(len(packet.data))
            track.payload.append(packet.data)
            track.flags.append(fmp4.SAMPLE_SYNC)
        end_us = pts_us + packet.duration_us
        track.last = (pts_us, end_us)
        track.last_duration = max(1, (packet.duration_us * scale + 500_000) // 1_000_000)
        if track.first_us is None:
            track.first_us = pts_us
        if end_us - track.first_us >= self._fragment_us:
            self._cut()
        return True

    def cut(self) -> None:
        """End the open fragment now: what was added is in the next take_output()."""
        self._cut()

    def take_output(self) -> bytes:
        """The bytes produced since the last call: whole fragments (or nothing)."""
        return b"".join(self.take_parts())

    def take_parts(self) -> list:
        """As take_output, in pieces (the writer joins them once, into its chunks)."""
        if self._sequence == 0:
            return []
        parts, self._output = self._output, []
        self._delivered.update(self._cut_delivered)
        self._cut_delivered.clear()
        return parts

    def close(self) -> bytes:
        """End the file: the open fragment and anything not yet taken."""
        self._cut()
        self._sequence = max(self._sequence, 1)   # an init with no sample still ends the file
        return self.take_output()

    def delivered(self, kind: str) -> tuple[int, int] | None:
        """(pts_us, end_us) of the newest `kind` sample in the bytes taken so far."""
        return self._delivered[kind]

    def undelivered(self, kind: str) -> int:
        """How many `kind` samples were muxed but are not in the bytes taken so far."""
        return len(self._open[kind].dts)

    def _cut(self) -> None:
        trafs, payload = [], []
        for kind, handler in (("video", "vide"), ("audio", "soun")):
            track = self._open[kind]
            if not track.dts:
                continue
            durations = [b - a for a, b in zip(track.dts, track.dts[1:])] + [track.last_duration]
            trafs.append((self._tracks[handler].track_id, track.dts[0],
                          list(zip(durations, track.sizes, track.flags))))
            payload.extend(track.payload)
            self._cut_delivered[kind] = track.last
            track.clear()
        if trafs:
            self._sequence += 1
            self._output.extend(fmp4.fragment(self._sequence, trafs, payload))
