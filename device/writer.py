"""The segment writer thread: mux, encrypt, sign, write, sync (SEG-1…SEG-6).

The camera and microphone callbacks only put packets on this thread's queue; all
disk writes, fsyncs and crypto happen here, in queue order. The writer never reads
the clock: every item carries the times it needs, so output is deterministic.
"""
from __future__ import annotations

import json
import logging
import queue
import threading
from dataclasses import dataclass, replace
from typing import Callable

from nacl.public import PublicKey
from nacl.signing import SigningKey

from device.chainstate import ChainState
from device.config import FIRMWARE_VERSION, Identity, Policy
from device.evidence.audit import AuditLog
from device.evidence.format import CHUNK_KIND_MEDIA, CHUNK_KIND_METADATA, segment_file_name
from device.evidence.segment_file import SegmentFile
from device.muxer import FragmentMuxer
from hal.keystore import KeyStore
from hal.media import AudioFormat, MediaPacket, VideoFormat
from hal.storage import Storage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EventStart:
    event_id: str
    source: str
    activation_monotonic_us: int
    activation_utc_us: int
    pre_event_s: float
    packets: list[MediaPacket]   # from the pre-event buffer; starts with a keyframe


@dataclass(frozen=True)
class EventStop:
    source: str
    monotonic_us: int
    utc_us: int


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


_SHUTDOWN = object()


class _OpenEvent:
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


class SegmentWriter:
    def __init__(self, storage: Storage, keystore: KeyStore, signing_key: SigningKey,
                 identity: Identity, chain: ChainState, audit: AuditLog,
                 video: VideoFormat, audio: AudioFormat | None, policy: Policy,
                 on_committed: Callable[[int], None] = lambda t: None,
                 on_failure: Callable[[BaseException], None] = lambda e: None) -> None:
        self._storage, self._keystore, self._key = storage, keystore, signing_key
        self._identity, self._chain, self._audit = identity, chain, audit
        self._custodians = [PublicKey(k) for k in identity.custodian_public_keys]
        self._video, self._audio, self._policy = video, audio, policy
        self._on_committed, self._on_failure = on_committed, on_failure
        self._queue: queue.Queue = queue.Queue()
        self._event: _OpenEvent | None = None
        self._waiting_start: EventStart | None = None  # activated before the first keyframe
        self._failed = False
        self._thread = threading.Thread(target=self._run, name="bwc-writer", daemon=True)

    # -- called from other threads: only enqueue ----------------------------------
    def start(self) -> None:
        self._thread.start()

    def put(self, item: object) -> None:
        self._queue.put(item)

    def wait_idle(self) -> None:
        """Block until everything queued so far has been written (tests, power-cut drills)."""
        self._queue.join()

    def close(self) -> None:
        """Finish everything queued, then stop the thread."""
        self._queue.put(_SHUTDOWN)
        self._thread.join()

    # -- writer thread ------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _SHUTDOWN:
                    return
                if isinstance(item, EventStart):
                    self._failed = False  # a new activation tries storage again
                if not self._failed:  # once storage failed, the firmware has been told
                    self._handle(item)
            except Exception as exc:  # noqa: BLE001 - reported, never swallowed (FLT-2)
                log.exception("segment writer failed")
                self._failed = True
                self._abandon_event()
                self._notify(self._on_failure, exc)
            finally:
                self._queue.task_done()

    def _abandon_event(self) -> None:
        """Leave the open segment as a power cut would; the next one chains to what
        of it was signed, so a retry after a storage fault reads as power loss."""
        segment = self._event.segment if self._event is not None else None
        self._event = None
        if segment is None or segment.closed:
            return
        try:
            segment.abandon()
        except OSError:
            log.exception("closing the abandoned segment failed")
        last = segment.last_checkpoint
        if last is not None:
            self._chain.head = {"seq": segment.seq, "hash": last.hash.hex(), "chunks": last.chunk_count}
            self._chain.open_seq = None

    def _handle(self, item: object) -> None:
        if isinstance(item, MediaPacket):
            if self._event is not None:
                self._add_packet(item)
            elif self._waiting_start is not None and item.kind == "video" and item.keyframe:
                start, self._waiting_start = self._waiting_start, None
                self._start_event(replace(start, packets=[item]))
        elif isinstance(item, EventStart):
            self._start_event(item)
        elif isinstance(item, Metadata):
            if self._event is not None:
                self._add_metadata(item)
        elif isinstance(item, EventStop):
            self._stop_event(item)
        elif isinstance(item, AuditEntry):
            self._audit.append(item.entry_type, item.monotonic_us, item.utc_us, **item.fields)
        else:
            raise TypeError(f"unexpected writer item {item!r}")

    def _start_event(self, start: EventStart) -> None:
        if self._event is not None:
            return
        if not start.packets:
            self._waiting_start = start  # the camera has not produced a keyframe yet
            return
        origin_us = start.packets[0].timestamp_us
        self._event = event = _OpenEvent(start, origin_us)
        self._open_segment(origin_us)
        self._audit.append("activation", start.activation_monotonic_us, start.activation_utc_us,
                           source=start.source, event_id=start.event_id, first_seq=event.segment.seq)
        self._add_metadata(Metadata("activation", start.activation_monotonic_us, {
            "source": start.source, "activation_monotonic_us": start.activation_monotonic_us,
            "activation_utc_us": start.activation_utc_us, "pre_event_s": start.pre_event_s,
            "delivered_pre_event_us": start.activation_monotonic_us - origin_us,
        }))
        for packet in start.packets:
            self._add_packet(packet)

    def _open_segment(self, start_us: int) -> None:
        event = self._event
        seq = self._chain.next_seq
        fields = {
            "device_id": self._identity.device_id, "device_key": bytes(self._key.verify_key).hex(),
            "firmware": FIRMWARE_VERSION, "seq": seq, "prev": self._chain.head,
            "event_id": event.start.event_id, "event_segment": event.segment_index,
            "event_origin_utc_us": event.origin_utc_us,
            "event_origin_monotonic_us": event.origin_monotonic_us,
            "media_start_us": start_us - event.origin_monotonic_us,
            "created_utc_us": event.origin_utc_us + (start_us - event.origin_monotonic_us),
            "video": {"codec": self._video.codec, "width": self._video.width,
                      "height": self._video.height, "fps": self._video.fps},
            "audio": None if self._audio is None else {
                "codec": self._audio.codec, "sample_rate_hz": self._audio.sample_rate_hz,
                "channels": self._audio.channels},
        }
        out = self._storage.create(segment_file_name(seq))
        event.segment = SegmentFile(out, self._key, fields, self._custodians)
        # The file (header + K0) is durable; only now may the counter move on.
        self._chain.next_seq, self._chain.open_seq = seq + 1, seq
        self._chain.save(self._keystore)
        event.segment_start_us = start_us
        event.muxer = FragmentMuxer(self._video, self._audio, round(self._policy.flush_interval_s * 1e6),
                                    fields["created_utc_us"])

    def _close_segment(self, end_us: int) -> None:
        event = self._event
        rest = event.muxer.close()
        cp = event.segment.close(rest, end_us - event.origin_monotonic_us)
        self._chain.head = {"seq": event.segment.seq, "hash": cp.hash.hex(), "chunks": cp.chunk_count}
        self._chain.open_seq = None
        self._chain.save(self._keystore)
        self._notify(self._on_committed, end_us)

    def _notify(self, callback: Callable, value: object) -> None:
        # An indicator fault must not be mistaken for a storage failure.
        try:
            callback(value)
        except Exception:  # noqa: BLE001 - logged; recording goes on
            log.exception("writer callback failed")

    def _add_packet(self, packet: MediaPacket) -> None:
        event = self._event
        if packet.kind == "video":
            if (packet.keyframe and packet.timestamp_us - event.segment_start_us
                    >= self._policy.segment_s * 1e6):
                # SEG-1: the next segment starts exactly where this one ends.
                self._close_segment(packet.timestamp_us)
                event.segment_index += 1
                self._open_segment(packet.timestamp_us)
            event.last_video_us = packet.timestamp_us
            event.last_video_end_us = packet.timestamp_us + packet.duration_us
        # Event-relative timestamps in every segment: audio captured just before a
        # segment's first frame but delivered after it still has a place there.
        if not event.muxer.add(packet, packet.timestamp_us - event.origin_monotonic_us):
            return
        output = event.muxer.take_output()
        if output:
            event.segment.add(CHUNK_KIND_MEDIA, output)
            event.segment.checkpoint(event.last_video_us - event.origin_monotonic_us)
            self._notify(self._on_committed, event.last_video_us)

    def _add_metadata(self, meta: Metadata) -> None:
        event = self._event
        record = dict(meta.fields, type=meta.record_type,
                      media_us=meta.monotonic_us - event.origin_monotonic_us)
        event.segment.add(CHUNK_KIND_METADATA, json.dumps(record, sort_keys=True).encode())

    def _stop_event(self, stop: EventStop) -> None:
        event = self._event
        self._waiting_start = None
        if event is None:
            return
        self._add_metadata(Metadata("deactivation", stop.monotonic_us, {"source": stop.source}))
        self._close_segment(event.last_video_end_us)
        cp = event.segment.last_checkpoint
        self._audit.append("deactivation", stop.monotonic_us, stop.utc_us, source=stop.source,
                           event_id=event.start.event_id, last_seq=event.segment.seq,
                           last_hash=cp.hash.hex())
        self._event = None
