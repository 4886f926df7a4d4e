"""The pre-event buffer: encoded packets in RAM, handed over on activation (BUF-1..BUF-4).

Video is kept as whole GOPs (a keyframe and the frames that depend on it) in a
deque, so appending is O(1) and eviction drops whole GOPs from the old end.

BUF-2 is kept by construction. Let N be the newest timestamp appended and P
the pre-event. The oldest GOP is dropped only once the *next* keyframe is at or
before N - P - activation_slack_us; so for any activation A >= N - slack, the
newest keyframe at or before A - P is still held, and take(A) starts there:
delivered pre-event A - start is >= P and < P + one keyframe interval. (Many
circular buffers count duration from the oldest frame instead and hand over
less than P when the keyframe interval is long; this one never does.)

The slack exists because an activation is usually stamped at the button edge,
while frames captured after that edge are already in the buffer when the event
is handled; with the slack they do not push the needed GOP out. It costs about
slack seconds of extra RAM and changes nothing for activations at or after N.

The byte bound wins over the duration: past max_bytes the oldest GOP goes even
if that shortens the pre-event, and `dropped_for_bytes` counts it so the
firmware can report it. Buffered footage never leaves RAM (BUF-3, SEC-1).

Audio (only with keep_audio, BUF-1's policy switch) sits in its own deque: it
arrives on another thread and encoder latency means an audio frame may be
appended before the video keyframe it follows. On take() it is merged back in
timestamp order, from the starting keyframe's timestamp on, so the first packet
handed over is that keyframe (unless no keyframe qualifies: below).

No locks: the recorder serialises append() and take(), which is also what makes
the hand-over seamless (BUF-4): packets appended after take() go to the event.
Timestamps are assumed monotonic per kind, as the camera and microphone HALs
promise.

After a long camera loss the newest keyframe at or before activation - P may be
minutes old (the last GOP before the cord was pulled). Handing that over, with
all the audio since, would deliver far more pre-event than policy allows. So
take() never delivers media older than activation - P - one keyframe interval:
a keyframe older than that bound is skipped, video starts at the first keyframe
after the cutoff (if any), and audio (if kept) starts at the cutoff. The event
then starts on audio and the writer adds video at its first keyframe
(docs/format.md §3). The keyframe interval is the configured one if given (else
DEFAULT_KEYFRAME_INTERVAL_US), and never less than the longest the buffer has seen (keyframe to keyframe while
frames are contiguous; keyframe to last frame when a gap ends the GOP), so the
bound can never cut into what BUF-2 delivers while the video flows.
"""
from __future__ import annotations

from collections import deque

from hal.media import MediaPacket

MAX_PRE_EVENT_S = 120  # BUF-1
DEFAULT_ACTIVATION_SLACK_US = 1_000_000
# The keyframe interval assumed until a longer one is seen, when none is configured.
DEFAULT_KEYFRAME_INTERVAL_US = 2_000_000


class _Gop:
    """A video keyframe and the frames after it, up to the next keyframe."""

    __slots__ = ("keyframe_us", "packets", "size_bytes")

    def __init__(self, keyframe: MediaPacket) -> None:
        self.keyframe_us = keyframe.timestamp_us
        self.packets = [keyframe]
        self.size_bytes = len(keyframe.data)


class PreEventBuffer:
    """Pre-event video (and optionally audio), bounded by duration and by bytes."""

    def __init__(
        self,
        pre_event_s: float,
        max_bytes: int,
        keep_audio: bool = False,
        activation_slack_us: int = DEFAULT_ACTIVATION_SLACK_US,
        keyframe_interval_s: float | None = None,
    ) -> None:
        if not 0 <= pre_event_s <= MAX_PRE_EVENT_S:
            raise ValueError(f"pre_event_s must be 0..{MAX_PRE_EVENT_S}, got {pre_event_s}")
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        if activation_slack_us < 0:
            raise ValueError(f"activation_slack_us must be >= 0, got {activation_slack_us}")
        if keyframe_interval_s is not None and not keyframe_interval_s > 0:
            raise ValueError(f"keyframe_interval_s must be positive, got {keyframe_interval_s}")
        self.pre_event_us = round(pre_event_s * 1_000_000)
        # The longest keyframe interval configured or seen (see the module doc).
        self._keyframe_interval_us = (DEFAULT_KEYFRAME_INTERVAL_US if keyframe_interval_s is None
                                      else round(keyframe_interval_s * 1_000_000))
        self._last_video: MediaPacket | None = None   # newest video frame appended
        self.max_bytes = max_bytes
        self.keep_audio = keep_audio
        self.activation_slack_us = activation_slack_us
        # Packets dropped to honour max_bytes (whole GOPs, the rest of a GOP
        # whose keyframe went, or audio), cumulative; the firmware reports changes.
        self.dropped_for_bytes = 0
        self._gops: deque[_Gop] = deque()
        self._audio: deque[MediaPacket] = deque()
        self._bytes = 0
        self._newest_us: int | None = None  # newest timestamp appended, any kind
        self._newest_end_us: int | None = None  # ... plus that packet's duration
        # False until a keyframe arrives: frames that depend on a keyframe we do
        # not hold cannot be decoded, so they are not kept.
        self._gop_open = False
        # Set when the byte bound dropped the GOP still being filled, so the
        # frames skipped until the next keyframe count as dropped for bytes.
        self._gop_lost_to_bytes = False

    @property
    def bytes_held(self) -> int:
        return self._bytes

    @property
    def duration_us(self) -> int:
        """From the oldest packet held to the end of the newest; 0 when empty."""
        if self._newest_end_us is None or not (self._gops or self._audio):
            return 0
        return self._newest_end_us - self._oldest_start_us()

    def append(self, packet: MediaPacket) -> None:
        """Buffer one packet from the camera or microphone thread (via the recorder)."""
        if packet.kind == "video":
            if not self._append_video(packet):
                return
        elif packet.kind == "audio":
            if not self.keep_audio:
                return
            self._audio.append(packet)
        else:
            raise ValueError(f"unknown packet kind {packet.kind!r}")
        size = len(packet.data)
        self._bytes += size
        if self._newest_us is None or packet.timestamp_us > self._newest_us:
            self._newest_us = packet.timestamp_us
            self._newest_end_us = packet.timestamp_us + packet.duration_us
        self._evict_for_duration()
        self._evict_for_bytes()

    def take(self, activation_us: int) -> list[MediaPacket]:
        """Everything needed for an event activated at activation_us.

        The buffer keeps its packets (the event gets references, not copies), so
        an activation soon after the next stop still finds its full pre-event.

        Starts at the newest video keyframe at or before activation_us - pre-event
        (the oldest keyframe if the camera has not run that long) and includes
        every later video packet; audio from that keyframe's timestamp on, merged
        in timestamp order (video first on ties). If that keyframe is older than
        the cutoff by more than one keyframe interval (a camera loss), or there is
        no video at all, the video starts at the first keyframe after the cutoff
        (or there is none) and the audio at the frame holding the cutoff (the
        first after it if none does): the first packet is then audio.
        """
        cutoff_us = activation_us - self.pre_event_us
        oldest_allowed_us = cutoff_us - self.keyframe_interval_us
        gops = list(self._gops)
        start = 0
        for index, gop in enumerate(gops):
            if gop.keyframe_us > cutoff_us:
                break
            start = index
        if gops and gops[start].keyframe_us <= cutoff_us and gops[start].keyframe_us < oldest_allowed_us:
            # The newest keyframe at or before the cutoff is from before a camera
            # loss: no video pre-event; video from the first keyframe after the
            # cutoff, audio from the cutoff on.
            gops = gops[start + 1:]
            video = [packet for gop in gops for packet in gop.packets]
            start_us = self._first_audio_from(cutoff_us)
        elif gops:
            gops = gops[start:]
            start_us = gops[0].keyframe_us
            video = [packet for gop in gops for packet in gop.packets]
        else:
            video = []
            start_us = self._first_audio_from(cutoff_us)
        audio = [packet for packet in self._audio if packet.timestamp_us >= start_us]
        return _merge_by_time(video, audio)

    @property
    def keyframe_interval_us(self) -> int:
        """The bound take() allows beyond the pre-event: the configured keyframe interval,
        or the longest seen, whichever is longer (the open GOP's span included)."""
        interval_us = self._keyframe_interval_us
        if self._gop_open and self._last_video is not None:
            last = self._last_video
            interval_us = max(interval_us, last.timestamp_us + last.duration_us - self._gops[-1].keyframe_us)
        return interval_us

    def _append_video(self, packet: MediaPacket) -> bool:
        last, self._last_video = self._last_video, packet
        if packet.keyframe and last is not None and self._gops:
            previous_us = self._gops[-1].keyframe_us
            if packet.timestamp_us - (last.timestamp_us + last.duration_us) <= last.duration_us:
                seen_us = packet.timestamp_us - previous_us    # contiguous: a whole interval
            else:
                seen_us = last.timestamp_us + last.duration_us - previous_us   # cut by a gap
            self._keyframe_interval_us = max(self._keyframe_interval_us, seen_us)
        if packet.keyframe:
            self._gops.append(_Gop(packet))
            self._gop_open = True
            self._gop_lost_to_bytes = False
            return True
        if not self._gop_open:
            if self._gop_lost_to_bytes:
                self.dropped_for_bytes += 1
            return False
        gop = self._gops[-1]
        gop.packets.append(packet)
        gop.size_bytes += len(packet.data)
        return True

    def _evict_for_duration(self) -> None:
        # BUF-2: the oldest GOP may go only once a later keyframe can serve
        # every activation from newest - slack on.
        horizon_us = self._newest_us - self.pre_event_us - self.activation_slack_us
        gops = self._gops
        while len(gops) >= 2 and gops[1].keyframe_us <= horizon_us:
            self._bytes -= gops.popleft().size_bytes
        self._evict_audio(horizon_us)

    def _evict_audio(self, horizon_us: int) -> None:
        audio = self._audio
        if self._gops:
            # take() never hands over audio from before the oldest keyframe held.
            first_needed_us = self._gops[0].keyframe_us
            while audio and audio[0].timestamp_us < first_needed_us:
                self._bytes -= len(audio.popleft().data)
        else:
            # Audio only (camera not running): every AAC frame stands alone, so
            # the BUF-2 rule applies frame by frame.
            while len(audio) >= 2 and audio[1].timestamp_us <= horizon_us:
                self._bytes -= len(audio.popleft().data)

    def _evict_for_bytes(self) -> None:
        while self._bytes > self.max_bytes:
            if self._gops:
                gop = self._gops.popleft()
                self._bytes -= gop.size_bytes
                self.dropped_for_bytes += len(gop.packets)
                if not self._gops:
                    # The open GOP went; its remaining frames are undecodable.
                    self._gop_open = False
                    self._gop_lost_to_bytes = True
                self._evict_audio(self._newest_us - self.pre_event_us - self.activation_slack_us)
            else:
                self._bytes -= len(self._audio.popleft().data)
                self.dropped_for_bytes += 1

    def _first_audio_from(self, cutoff_us: int) -> int:
        """The start of the audio frame holding cutoff_us, or of the first after it:
        never older than one audio frame before the cutoff, even after a gap."""
        for packet in self._audio:
            if packet.timestamp_us + packet.duration_us > cutoff_us:
                return packet.timestamp_us
        return cutoff_us + 1   # nothing at or after the cutoff

    def _oldest_start_us(self) -> int:
        starts = []
        if self._gops:
            starts.append(self._gops[0].keyframe_us)
        if self._audio:
            starts.append(self._audio[0].timestamp_us)
        return min(starts)

def _merge_by_time(video: list[MediaPacket], audio: list[MediaPacket]) -> list[MediaPacket]:
    """Merge two timestamp-ordered lists; video first on equal timestamps."""
    if not audio:
        return video
    if not video:
        return audio
    merged: list[MediaPacket] = []
    i = j = 0
    while i < len(video) and j < len(audio):
        if audio[j].timestamp_us < video[i].timestamp_us:
            merged.append(audio[j])
            j += 1
        else:
            merged.append(video[i])
            i += 1
    merged.extend(video[i:])
    merged.extend(audio[j:])
    return merged
