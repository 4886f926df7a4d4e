"""The segment writer thread: mux, encrypt, sign, write, sync (SEG-1…SEG-6).

The camera and microphone callbacks only put packets on this thread's queue; all
disk writes, fsyncs and crypto happen here, in queue order. The writer never reads
the clock: every item carries the times it needs, so output is deterministic.
"""
from __future__ import annotations

import errno as errno_names
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
from device.storage_reserve import reserve_bytes

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
                 on_failure: Callable[[BaseException], None] = lambda e: None,
                 on_storage_full: Callable[[], None] = lambda: None) -> None:
        self._storage, self._keystore, self._key = storage, keystore, signing_key
        self._identity, self._chain, self._audit = identity, chain, audit
        self._custodians = [PublicKey(k) for k in identity.custodian_public_keys]
        self._video, self._audio, self._policy = video, audio, policy
        self._on_committed, self._on_failure = on_committed, on_failure
        self._on_storage_full = on_storage_full
        self._queue: queue.Queue = queue.Queue()
        self._event: _OpenEvent | None = None
        self._waiting_start: EventStart | None = None  # activated before the first keyframe
        self._stage = "idle"          # what the writer is doing, for fault entries
        self._now = (0, 0)            # (monotonic_us, utc_us) of the newest item: fault entries' time
        self._reserve_bytes = reserve_bytes(video, policy)
        self._thread = threading.Thread(target=self._run, name="bwc-writer", daemon=True)

    # -- called from other threads: only enqueue ----------------------------------
    def start(self) -> None:
        self._thread.start()

    def put(self, item: object) -> None:
        self._queue.put(item)

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        """Block until everything queued so far has been written (tests, power-cut drills);
        False if `timeout_s` (real seconds) passed first: a stalled writer must not hang a
        watchdog that waits for it."""
        done = self._queue.all_tasks_done
        with done:
            return done.wait_for(lambda: not self._queue.unfinished_tasks, timeout_s)

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
                self._handle(item)
            except OSError as exc:  # a storage fault: reported, never swallowed (FLT-2)
                log.error("storage fault while %s: %s", self._stage, exc)
                self._storage_fault(exc)
                self._notify(self._on_failure, exc)
            except Exception as exc:  # noqa: BLE001 - a bug must not kill the writer thread
                log.exception("segment writer failed")
                self._storage_fault(exc, kind="firmware")
                self._notify(self._on_failure, exc)
            finally:
                self._queue.task_done()

    def _storage_fault(self, exc: BaseException, kind: str = "storage") -> None:
        """After a fault, know what reached the disk: the next segment chains to the
        last checkpoint whose write and sync both returned, a segment number once
        taken is never reused, and a signed fault entry says what was lost (§8)."""
        event, self._event, self._waiting_start = self._event, None, None
        stage, self._stage = self._stage, "idle"
        segment = event.segment if event is not None else None
        if segment is not None and segment.closed:
            segment = None          # closed cleanly; the fault hit what came after it
        seq = self._chain.open_seq
        durable = None
        if segment is not None:
            durable = segment.last_checkpoint
            try:
                segment.abandon()
            except OSError:
                log.exception("closing the abandoned segment failed")
            seq = segment.seq
        if durable is not None:
            self._chain.head = {"seq": seq, "hash": durable.hash.hex(), "chunks": durable.chunk_count}
        self._chain.open_seq = None
        code = getattr(exc, "errno", None)
        fault = {"kind": kind, "stage": stage,
                 "errno": errno_names.errorcode.get(code, str(code)) if code is not None else None,
                 "message": str(exc)[:200], "seq": seq,
                 "chunks": durable.chunk_count if durable is not None else None,
                 "hash": durable.hash.hex() if durable is not None else None,
                 "event_id": event.start.event_id if event is not None else self._chain.open_event}
        self._chain.open_event = None   # the fault entry explains the event's end
        self._chain.pending_faults.append(dict(fault, at=list(self._now)))
        try:
            self._save_chain()
        except OSError:
            log.exception("cannot persist the chain state after a storage fault")
        try:
            self.log_pending_faults()
        except OSError as again:
            log.error("fault entry not written yet (%s); it will be at the next chance", again)

    def note_fault(self, exc: OSError, stage: str, at: tuple[int, int]) -> None:
        """A fault outside the writer thread (boot): log it at the next chance."""
        self._now, self._stage = at, stage
        self._storage_fault(exc)

    def log_pending_faults(self) -> None:
        """Write the fault entries that storage refused so far (boot, next activation)."""
        while self._chain.pending_faults:
            fault = dict(self._chain.pending_faults[0])
            monotonic_us, utc_us = fault.pop("at", self._now)
            self._stage = "audit"
            self._audit.append("fault", monotonic_us, utc_us, **fault)
            self._chain.pending_faults.pop(0)
            self._save_chain()
            self._stage = "idle"

    def _save_chain(self) -> None:
        self._chain.save(self._keystore)

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
            self._now = (item.monotonic_us, item.utc_us)
            self._stage = "audit"
            self._audit.append(item.entry_type, item.monotonic_us, item.utc_us, **item.fields)
            self._stage = "idle"
        else:
            raise TypeError(f"unexpected writer item {item!r}")

    def _start_event(self, start: EventStart) -> None:
        if self._event is not None:
            return
        self._now = (start.activation_monotonic_us, start.activation_utc_us)
        if not start.packets:
            self._waiting_start = start  # the camera has not produced a keyframe yet
            return
        self.log_pending_faults()   # a retry after a fault first says what the fault lost
        if self._storage.free_bytes() < self._reserve_bytes:
            self._refuse_full(start)
            return
        origin_us = start.packets[0].timestamp_us
        self._event = event = _OpenEvent(start, origin_us)
        self._chain.open_event = start.event_id
        self._open_segment(origin_us)
        self._stage = "audit"
        self._audit.append("activation", start.activation_monotonic_us, start.activation_utc_us,
                           source=start.source, event_id=start.event_id, first_seq=event.segment.seq)
        self._add_metadata(Metadata("activation", start.activation_monotonic_us, {
            "source": start.source, "activation_monotonic_us": start.activation_monotonic_us,
            "activation_utc_us": start.activation_utc_us, "pre_event_s": start.pre_event_s,
            "delivered_pre_event_us": start.activation_monotonic_us - origin_us,
        }))
        for packet in start.packets:
            self._add_packet(packet)

    def _refuse_full(self, start: EventStart) -> None:
        """No room for even a cleanly closed segment: say so, record nothing."""
        self._stage = "audit"
        self._audit.append("fault", start.activation_monotonic_us, start.activation_utc_us,
                           kind="storage_full", stage="activation", errno=None, seq=None, chunks=None,
                           hash=None, event_id=start.event_id,
                           message=f"{self._storage.free_bytes()} bytes free, {self._reserve_bytes} reserved")
        self._stage = "idle"
        self._notify(lambda _: self._on_storage_full(), None)

    def _open_segment(self, start_us: int) -> None:
        event = self._event
        # Write-ahead: the number is taken before the file can exist, so a fault or a
        # power cut while creating it can never lead to the number being used twice.
        seq = self._chain.next_seq
        self._chain.next_seq, self._chain.open_seq = seq + 1, seq
        self._stage = "create"
        self._save_chain()
        fields = {
            "device_id": self._identity.device_id, "device_key": bytes(self._key.verify_key).hex(),
            "firmware": FIRMWARE_VERSION, "seq": seq, "prev": self._chain.head, "audit_n": self._audit.next_n,
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
        try:
            event.segment = SegmentFile(out, self._key, fields, self._custodians)
        except BaseException:
            out.close()
            raise
        self._stage = "recording"
        event.segment_start_us = start_us
        event.muxer = FragmentMuxer(self._video, self._audio, round(self._policy.flush_interval_s * 1e6),
                                    fields["created_utc_us"])

    def _close_segment(self, end_us: int) -> None:
        event = self._event
        rest = event.muxer.close()
        self._stage = "closing"
        cp = event.segment.close(rest, end_us - event.origin_monotonic_us)
        self._chain.head = {"seq": event.segment.seq, "hash": cp.hash.hex(), "chunks": cp.chunk_count}
        self._chain.open_seq = None
        self._save_chain()
        self._stage = "recording"
        self._notify(self._on_committed, end_us)

    def _notify(self, callback: Callable, value: object) -> None:
        # An indicator fault must not be mistaken for a storage failure.
        try:
            callback(value)
        except Exception:  # noqa: BLE001 - logged; recording goes on
            log.exception("writer callback failed")

    def _utc(self, monotonic_us: int) -> int:
        event = self._event
        return event.origin_utc_us + (monotonic_us - event.origin_monotonic_us)

    def _add_packet(self, packet: MediaPacket) -> None:
        event = self._event
        self._now = (packet.timestamp_us, self._utc(packet.timestamp_us))
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
            if self._storage.free_bytes() - len(output) < self._reserve_bytes:
                # FLT-2: what is left is the reserve that closes this segment cleanly.
                event.segment.add(CHUNK_KIND_MEDIA, output)
                self._stop_event(EventStop("storage", packet.timestamp_us, self._utc(packet.timestamp_us)),
                                 reason="storage_full")
                self._notify(lambda _: self._on_storage_full(), None)
                return
            self._stage = "recording"
            event.segment.add(CHUNK_KIND_MEDIA, output)
            event.segment.checkpoint(event.last_video_us - event.origin_monotonic_us)
            self._notify(self._on_committed, event.last_video_us)

    def _add_metadata(self, meta: Metadata) -> None:
        event = self._event
        record = dict(meta.fields, type=meta.record_type,
                      media_us=meta.monotonic_us - event.origin_monotonic_us)
        event.segment.add(CHUNK_KIND_METADATA, json.dumps(record, sort_keys=True).encode())

    def _stop_event(self, stop: EventStop, reason: str | None = None) -> None:
        event = self._event
        self._waiting_start = None
        if event is None:
            return
        self._now = (stop.monotonic_us, stop.utc_us)
        why = {} if reason is None else {"reason": reason}
        self._add_metadata(Metadata("deactivation", stop.monotonic_us, {"source": stop.source, **why}))
        self._close_segment(event.last_video_end_us)
        cp = event.segment.last_checkpoint
        self._stage = "audit"
        self._audit.append("deactivation", stop.monotonic_us, stop.utc_us, source=stop.source,
                           event_id=event.start.event_id, last_seq=event.segment.seq,
                           last_hash=cp.hash.hex(), **why)
        self._event = None
        self._chain.open_event = None
        self._save_chain()
        self._stage = "idle"
