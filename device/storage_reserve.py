"""How much free space the writer keeps back so a running segment can always close (FLT-2).

Closing a segment writes what the muxer still holds (at most about one flush
interval of media, more when the encoder peaks), the FINAL chunk, the final
checkpoint and its copy, and then the deactivation line of the audit log. The
reserve covers two flush intervals at twice the nominal bitrate, plus room for a
few audit lines and file-system slack; when a flush would eat into it, the
writer closes the event with stop reason `storage_full` instead.
"""
from __future__ import annotations

from device.config import Policy
from hal.media import VideoFormat

_SLACK_BYTES = 256 * 1024   # audit lines, checkpoint records, file-system block rounding


def reserve_bytes(video: VideoFormat, policy: Policy) -> int:
    flush_bytes = video.bitrate_bps / 8 * policy.flush_interval_s
    return int(2 * 2 * flush_bytes) + _SLACK_BYTES


class FreeSpace:
    """The card's free bytes as the reserve check needs them, with statvfs at most once a
    checkpoint rather than once a fragment (a backlog's fragments come in runs of 2-8 MiB
    per checkpoint, and statvfs was ~10 % of the writer's own time writing them). In
    between, what the segment added since the reading is subtracted, so only another
    program's writes within one checkpoint's span go unseen: far less than the reserve."""

    def __init__(self, storage) -> None:
        self._storage = storage
        self._reading: tuple | None = None   # (free bytes, segment, its offset, its unwritten bytes)

    def after_unwritten(self, segment) -> int:
        """Free bytes once `segment`'s bytes not yet on the card are written."""
        reading = self._reading
        if reading is None or reading[1] is not segment:
            reading = self._reading = (self._storage.free_bytes(), segment, segment.offset_bytes,
                                       segment.unwritten_bytes)
        free_bytes, _, offset0, unwritten0 = reading
        return free_bytes - unwritten0 - (segment.offset_bytes - offset0)

    def forget(self) -> None:
        """A checkpoint ran: read the card again next time."""
        self._reading = None
