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
