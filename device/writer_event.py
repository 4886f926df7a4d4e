"""Writer-side state of the event being recorded, and the rules on its media:
when video may go on after a gap (FLT-1), and what a checkpoint may claim (§3.3).

Runs on the writer thread only (device/writer.py).
"""
from __future__ import annotations

import logging

from device.config import FIRMWARE_VERSION, Identity
from device.evidence.segment_file import SegmentFile
from device.muxer import FragmentMuxer
from device.writer_items import EventStart
from hal.media import AudioFormat, MediaPacket, VideoFormat

log = logging.getLogger("device.writer")

# A video frame that starts this much later than the newest frame's end opens a gap
# (FLT-1: a camera lost and restarted). After a gap, video resumes only at a keyframe,
# which starts a new segment: FFmpeg's fragmented muxer places the first frame of a
# fragment where the track's previous fragment ended, so a frame muxed into the same
# file after an audio-only stretch would be shown at the gap's start. Shorter stalls
# (a few dropped frames) are muxed as they come: the MP4 then shows the frame before
# the stall for longer, or the first frame after it up to this much early.
VIDEO_GAP_US = 200_000

# How many bytes a checkpoint may leave pending while the writer is behind (a backlog:
# the pre-event at a press, or a benchmark). On ext4 here (tests/bench numbers in
# device/writer.py's history): write + fsync in 1.25 MB chunks ran at 191 MB/s, 2 MB at
# 393, 8 MB at 662, 16-32 MB no better. So the first checkpoint of an event takes its
# first fragment alone (the first media durable at once), and the bound then doubles
# up to 8 MiB (at 10 Mbit/s about 6 s of media per fsync while catching up).
CHUNK_BOUND_FIRST_BYTES = 0
CHUNK_BOUND_GROW_BYTES = 2 << 20
CHUNK_BOUND_MAX_BYTES = 8 << 20


class OpenEvent:
    """Writer-side state of the event being recorded."""

    def __init__(self, start: EventStart, origin_monotonic_us: int) -> None:
        self.start = start
        self.origin_monotonic_us = origin_monotonic_us
        self.origin_utc_us = start.activation_utc_us - (start.activation_monotonic_us - origin_monotonic_us)
        self.segment: SegmentFile | None = None
        self.muxer: FragmentMuxer | None = None
        self.segment_start_us = origin_monotonic_us
        self.segment_index = 0
        # Newest muxed video frame: its start bounds intermediate checkpoints (frame
        # durations are rounded, so start + duration may overshoot the next frame).
        self.last_video_us = origin_monotonic_us
        self.last_video_end_us = origin_monotonic_us
        self.last_audio_end_us: int | None = None   # end of the newest muxed audio frame
        self.reported_video_us: int | None = None   # last value given to on_committed
        self.awaiting_keyframe = False               # after a video gap (FLT-1), or from an audio start
        self.video_muxed = False                     # False while the event has no video yet
        self.gap_dropped_frames = 0
        # Media chunks added to the segment since its last checkpoint, and how many
        # bytes may wait so before the next checkpoint when the writer is behind.
        self.unsynced_media = False
        self.chunk_bound_bytes = CHUNK_BOUND_FIRST_BYTES
        self.in_backlog = False    # True while the activation's buffered packets are muxed
        # A checkpoint being written in the background: (delivered ends, newest video
        # frame) it covers, published once its write and sync returned.
        self.background: tuple[list[int | None], int] | None = None
        # End of the newest video frame the activation took from the pre-event buffer
        # (None: it took none): once committed video reaches it, the pre-event is durable.
        video = [p for p in start.packets if p.kind == "video"]
        self.pre_event_video_end_us = video[-1].timestamp_us + video[-1].duration_us if video else None

    def grow_chunk_bound(self) -> None:
        self.chunk_bound_bytes = min(CHUNK_BOUND_MAX_BYTES, max(CHUNK_BOUND_GROW_BYTES, 2 * self.chunk_bound_bytes))

    def video_may_continue(self, packet: MediaPacket) -> bool:
        """False for a frame that must wait for a keyframe: any frame after a gap
        (FLT-1) until one arrives."""
        if not self.awaiting_keyframe and packet.timestamp_us - self.last_video_end_us > VIDEO_GAP_US:
            self.awaiting_keyframe = True
            log.warning("video gap: no frame from %d us to %d us", self.last_video_end_us, packet.timestamp_us)
        if self.awaiting_keyframe and not packet.keyframe:
            self.gap_dropped_frames += 1
            return False
        return True

    def checkpoint_media_end_us(self) -> int:
        """An intermediate checkpoint's media_end_us (docs/format.md §3.3): the start of
        the newest video frame handed to the muxer; while the camera delivers nothing
        (the delivered audio runs past that frame's end), the end of the newest audio
        frame this checkpoint makes durable. Never less than the previous one."""
        end_us = self.last_video_us - self.origin_monotonic_us
        audio = self.muxer.delivered("audio")
        if audio is not None and audio[1] > self.last_video_end_us - self.origin_monotonic_us:
            end_us = max(end_us, audio[1])
        return max(end_us, self.segment.last_checkpoint.media_end_us)

    def segment_fields(self, identity: Identity, device_key_hex: str, seq: int, prev: dict | None,
                       audit_n: int, start_us: int, video: VideoFormat, audio: AudioFormat | None) -> dict:
        """The header members (docs/format.md §3.2) of this event's segment starting at `start_us`."""
        return {
            "device_id": identity.device_id, "device_key": device_key_hex,
            "firmware": FIRMWARE_VERSION, "seq": seq, "prev": prev, "audit_n": audit_n,
            "event_id": self.start.event_id, "event_segment": self.segment_index,
            "event_origin_utc_us": self.origin_utc_us,
            "event_origin_monotonic_us": self.origin_monotonic_us,
            "media_start_us": start_us - self.origin_monotonic_us,
            "created_utc_us": self.origin_utc_us + (start_us - self.origin_monotonic_us),
            "video": {"codec": video.codec, "width": video.width, "height": video.height, "fps": video.fps},
            "audio": None if audio is None else {
                "codec": audio.codec, "sample_rate_hz": audio.sample_rate_hz, "channels": audio.channels},
        }
