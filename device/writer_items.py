"""What other threads put on the segment writer's queue (device/writer.py).

Every item carries the times it needs, so the writer never reads the clock.
"""
from __future__ import annotations

from dataclasses import dataclass

from hal.media import MediaPacket


@dataclass(frozen=True)
class EventStart:
    event_id: str
    source: str
    activation_monotonic_us: int
    activation_utc_us: int
    pre_event_s: float
    # From the pre-event buffer: starts with a video keyframe, or with audio when no
    # usable keyframe is buffered (a camera loss); empty if nothing is.
    packets: list[MediaPacket]


@dataclass(frozen=True)
class EventStop:
    source: str
    monotonic_us: int
    utc_us: int
    reason: str | None = None   # ACT-4: the stop reason category, when policy asks for one


@dataclass(frozen=True)
class Metadata:
    record_type: str
    monotonic_us: int
    fields: dict


@dataclass(frozen=True)
class AuditEntry:
    entry_type: str
    monotonic_us: int
    utc_us: int
    fields: dict


def item_time_us(item: object) -> int | None:
    """The monotonic time an item is about (a packet's capture, an event's press)."""
    if isinstance(item, MediaPacket):
        return item.timestamp_us
    if isinstance(item, EventStart):
        return item.activation_monotonic_us
    if isinstance(item, (EventStop, Metadata, AuditEntry)):
        return item.monotonic_us
    return None
