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
from dataclasses import replace
from typing import Callable

from nacl.public import PublicKey
from nacl.signing import SigningKey

from device.chainstate import ChainState
from device.config import Identity, Policy
from device.evidence.audit import AuditLog
from device.evidence.format import CHUNK_KIND_METADATA, segment_file_name
from device.evidence.segment_file import SegmentFile
from device.muxer import FragmentMuxer
from device.storage_reserve import FreeSpace, reserve_bytes
from device.writer_event import OpenEvent
from device.writer_durability import WriterDurability
from device.writer_faults import WriterFaults
from device.writer_health import DurableMark, WriterHealth
from device.writer_items import AuditEntry, EventStart, EventStop, Metadata, item_time_us
from hal.keystore import KeyStore
from hal.media import AudioFormat, MediaPacket, VideoFormat
from hal.storage import Storage

__all__ = ["AuditEntry", "EventStart", "EventStop", "Metadata", "SegmentWriter"]

log = logging.getLogger(__name__)



_SHUTDOWN = object()


class SegmentWriter(WriterDurability, WriterFaults):
    """The writer thread and its queue.

    Health signals for an in-process watchdog (FLT-5) are thread-safe reads:
    `committed_us()`, `progress()`, `busy_since()`, `alive()`; `restart()` revives a
    dead thread and `wait_idle(timeout_s)` waits for the queue to drain.
    """

    def __init__(self, storage: Storage, keystore: KeyStore, signing_key: SigningKey,
                 identity: Identity, chain: ChainState, audit: AuditLog,
                 video: VideoFormat, audio: AudioFormat | None, policy: Policy,
                 on_committed: Callable[[int], None] = lambda t: None,
                 on_failure: Callable[[BaseException], None] = lambda e: None,
                 on_storage_full: Callable[[], None] = lambda: None) -> None:
        """`on_committed(media_monotonic_us)`: called on the writer thread each time a
        checkpoint made more video durable, with the start of the newest video frame
        it covers (not called while only audio is being committed, FLT-1)."""
        self._storage, self._keystore, self._key = storage, keystore, signing_key
        self._identity, self._chain, self._audit = identity, chain, audit
        self._custodians = [PublicKey(k) for k in identity.custodian_public_keys]
        self._video, self._audio, self._policy = video, audio, policy
        self._on_committed, self._on_failure = on_committed, on_failure
        self._on_storage_full = on_storage_full
        self._queue: queue.Queue = queue.Queue()
        self._event: OpenEvent | None = None
        self._waiting_start: EventStart | None = None  # activated before the first keyframe
        self._stage = "idle"          # what the writer is doing, for fault entries
        self._now = (0, 0)            # (monotonic_us, utc_us) of the newest item: fault entries' time
        self._reserve_bytes = reserve_bytes(video, policy)
        self._free_space = FreeSpace(storage)
        self._health = WriterHealth()
        # Set while the writer is inside an operation that leaves its state half-done
        # if interrupted (muxing, writing a segment or an audit line); None between
        # them and while a callback runs. A thread that dies with it set cannot simply
        # be resumed (see restart()).
        self._critical: str | None = None
        self._death: tuple[BaseException, str | None] | None = None
        self._started = self._closing = False
        self._restart_lock = threading.Lock()
        self._durable_listeners: list[Callable[[DurableMark], None]] = []
        self._thread = self._new_thread(self._run)

    def _new_thread(self, target: Callable[[], None]) -> threading.Thread:
        return threading.Thread(target=target, name="bwc-writer", daemon=True)

    # -- called from other threads: only enqueue, or read health ---------------------
    def start(self) -> None:
        self._started = True
        self._thread.start()

    @property
    def started(self) -> bool:
        return self._started

    def add_durable_listener(self, listener: Callable[[DurableMark], None]) -> None:
        """Call `listener(mark)` on the writer thread each time a checkpoint made media of
        the open event durable (tools/bench measures activation latency with it). Add
        before start(); a listener must return quickly and never raise."""
        self._durable_listeners.append(listener)

    def put(self, item: object) -> None:
        self._queue.put(item)

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        """Block until everything queued so far has been handled (tests, power-cut
        drills, a watchdog letting the writer catch up with virtual time). With
        `timeout_s` (real seconds), give up after that long: True if the queue
        drained, False if not (a stalled or dead writer never hangs the caller)."""
        if timeout_s is None:
            self._queue.join()
            return True
        with self._queue.all_tasks_done:
            return self._queue.all_tasks_done.wait_for(lambda: not self._queue.unfinished_tasks, timeout_s)

    def close(self) -> None:
        """Finish everything queued, then stop the thread."""
        self._closing = True
        self._queue.put(_SHUTDOWN)
        self._thread.join()

    def committed_us(self) -> tuple[int | None, int | None]:
        """(video, audio): the monotonic end (µs) of the newest video and audio frame of
        the open event that a checkpoint has made durable (written and synced); None
        for a track with nothing durable yet, and (None, None) with no event open.
        During a camera loss the audio value keeps advancing, about once per
        flush interval, while the video value stands still."""
        return self._health.committed()

    def open_segment(self) -> tuple[str, int] | None:
        """(event id, segment number) being written now, or None with no event open. Read
        from another thread for display only: it may be one item behind."""
        event = self._event
        return None if event is None or event.segment is None else (event.start.event_id, event.segment.seq)

    def progress(self) -> int:
        """How many queued items the writer has finished so far (handled, or given up
        on after an error). Goes up by about 80 a second while recording."""
        return self._health.progress()

    def busy_since(self) -> int | None:
        """The monotonic time (µs) the item now being handled is about (a packet's
        capture time, an event's press), or None when the writer is waiting for work.
        Taken from the item itself, never from a clock: a monitor compares it with its
        own clock, and a value that stays while progress() does not move is a stall."""
        return self._health.busy_since()

    def alive(self) -> bool:
        """True while the writer thread runs (False before start() and once it ended)."""
        return self._thread.is_alive()

    def restart(self) -> bool:
        """If the writer thread died (an exception that escaped it, e.g. a BaseException),
        start a fresh thread on the same queue and state and return True. False if the
        thread is alive, was never started, or was closed: never two threads at once.

        What a restart may lose: the item being handled when the thread died (a packet,
        a metadata record, an audit entry). If it died between operations (in a
        callback such as on_committed), nothing else: the event continues in the same
        segment. If it died in the middle of muxing or writing, the open segment cannot
        be trusted beyond its last checkpoint, so the fresh thread first ends the event
        as a firmware fault would: the segment stays cut short at that checkpoint, a
        signed `fault` entry (kind `firmware`) says so, and on_failure is called.
        Queued items are kept; packets queued for the ended event are dropped."""
        with self._restart_lock:   # two watchdogs racing must not start two threads
            if not self._started or self._closing or self._thread.is_alive():
                return False
            self._thread = self._new_thread(self._run_after_restart)
            self._thread.start()
            return True

    # -- writer thread ------------------------------------------------------------
    def _run_after_restart(self) -> None:
        death, self._death = self._death, None
        if death is not None and death[1] is not None:
            exc, critical = death
            log.error("writer thread died while %s (%r); ending the open event at its last checkpoint",
                      critical, exc)
            self._storage_fault(exc, kind="firmware")
            self._notify(self._on_failure, exc)
        self._run()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            self._health.begin(item_time_us(item))
            try:
                if item is _SHUTDOWN:
                    return
                self._handle(item)
            except OSError as exc:  # a storage fault: reported, never swallowed (FLT-2)
                log.error("storage fault while %s: %s", self._stage, exc)
                self._critical = None
                self._storage_fault(exc)
                self._notify(self._on_failure, exc)
            except Exception as exc:  # noqa: BLE001 - a bug must not kill the writer thread
                log.exception("segment writer failed")
                self._critical = None
                self._storage_fault(exc, kind="firmware")
                self._notify(self._on_failure, exc)
            except BaseException as exc:
                # Power loss (the simulator's PowerLost) or worse: this thread ends here.
                self._death = (exc, self._critical)
                raise
            finally:
                self._health.finish()
                self._queue.task_done()

    def _save_chain(self) -> None:
        self._chain.save(self._keystore)

    def _handle(self, item: object) -> None:
        self._critical = "handling"
        self._dispatch(item)
        self._catch_up()
        self._critical = None

    def _dispatch(self, item: object) -> None:
        if isinstance(item, MediaPacket):
            if self._event is not None:
                self._add_packet(item)
            elif self._waiting_start is not None and (item.kind == "video" and item.keyframe
                                                      or item.kind == "audio" and self._audio is not None):
                # No media was buffered: the event starts with the first packet that
                # can start it, a video keyframe or (the camera lost, FLT-1) audio.
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
            # An entry in the middle of an event (a notice, a gap) must not make a later
            # fault read as if nothing were being recorded: the stage comes back after it.
            stage, self._stage = self._stage, "audit"
            self._audit.append(item.entry_type, item.monotonic_us, item.utc_us, **item.fields)
            self._stage = stage
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
        self._event = event = OpenEvent(start, origin_us)
        if start.packets[0].kind == "audio":
            # No usable keyframe (the camera lost before the activation, FLT-1): the
            # event starts on audio and video joins at its first keyframe, in a new
            # segment, exactly as after a gap during an event.
            event.awaiting_keyframe = True
            log.warning("event %s starts on audio at %d us: no video keyframe", start.event_id, origin_us)
        self._health.clear_committed()
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
        # The pre-event is a backlog even when the queue is empty: bounded chunks.
        event.in_backlog = True
        for packet in start.packets:
            self._add_packet(packet)
            if self._event is not event:
                return   # storage full: the event ended inside the pre-event
        event.in_backlog = False
        # The press cuts a fragment: the partial GOP up to it is durable now, not at the
        # next keyframe or flush interval (nor after whatever queued up meanwhile).
        event.muxer.cut()
        if self._flush_output(start.activation_monotonic_us, force_checkpoint=True) and self._event is event:
            self._report_video(event.last_video_us)

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
        fields = event.segment_fields(self._identity, bytes(self._key.verify_key).hex(), seq, self._chain.head,
                                      self._audit.next_n, start_us, self._video, self._audio)
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
        self._finish_background()
        rest = event.muxer.close()
        event.unsynced_media = False   # the close writes and syncs whatever is pending
        self._stage = "closing"
        cp = event.segment.close(rest, max(end_us - event.origin_monotonic_us,
                                           event.segment.last_checkpoint.media_end_us))
        self._chain.head = {"seq": event.segment.seq, "hash": cp.hash.hex(), "chunks": cp.chunk_count}
        self._chain.open_seq = None
        self._save_chain()
        self._stage = "recording"
        self._note_committed()

    def _notify(self, callback: Callable, value: object) -> None:
        # Callbacks run only once the writer's state is whole again (the last step of
        # handling an item), so a thread killed inside one can simply be restarted.
        critical, self._critical = self._critical, None
        # An indicator fault must not be mistaken for a storage failure.
        try:
            callback(value)
        except Exception:  # noqa: BLE001 - logged; recording goes on
            log.exception("writer callback failed")
        self._critical = critical

    def _utc(self, monotonic_us: int) -> int:
        event = self._event
        return event.origin_utc_us + (monotonic_us - event.origin_monotonic_us)

    def _add_packet(self, packet: MediaPacket) -> None:
        event = self._event
        self._now = (packet.timestamp_us, self._utc(packet.timestamp_us))
        committed_video_us = None   # for on_committed, once this packet is done
        if packet.kind == "video":
            if not event.video_may_continue(packet):
                return
            if event.awaiting_keyframe or (packet.keyframe and packet.timestamp_us - event.segment_start_us
                                           >= self._policy.segment_s * 1e6):
                # SEG-1: the next segment starts exactly where this one ends. After a
                # gap it starts at the keyframe that ends the gap, however short the
                # segment was; a gap longer than segment_s leaves the segment open
                # until then (there is no keyframe to split at).
                if event.awaiting_keyframe:
                    log.info("video resumed at %d us after a gap of %d us; %d frame(s) before this "
                             "keyframe dropped", packet.timestamp_us, packet.timestamp_us - event.last_video_end_us,
                             event.gap_dropped_frames)
                    event.awaiting_keyframe, event.gap_dropped_frames = False, 0
                self._close_segment(packet.timestamp_us)
                event.segment_index += 1
                self._open_segment(packet.timestamp_us)
                committed_video_us = packet.timestamp_us
            event.last_video_us = packet.timestamp_us
            event.last_video_end_us = packet.timestamp_us + packet.duration_us
            event.video_muxed = True
        # Event-relative timestamps in every segment: audio captured just before a
        # segment's first frame but delivered after it still has a place there.
        if event.muxer.add(packet, packet.timestamp_us - event.origin_monotonic_us):
            if packet.kind == "audio":
                event.last_audio_end_us = packet.timestamp_us + packet.duration_us
            if self._flush_output(packet.timestamp_us):
                committed_video_us = event.last_video_us
        if committed_video_us is not None and self._event is event:
            self._report_video(committed_video_us)

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
        reason = stop.reason if reason is None else reason
        why = {} if reason is None else {"reason": reason}
        self._add_metadata(Metadata("deactivation", stop.monotonic_us, {"source": stop.source, **why}))
        # The event ends with its last frame, audio included: a stop during a camera
        # loss ends after the audio recorded since.
        end_us = event.last_video_end_us
        if event.last_audio_end_us is not None and event.last_audio_end_us > end_us:
            end_us = event.last_audio_end_us
        self._close_segment(end_us)
        cp = event.segment.last_checkpoint
        self._stage = "audit"
        self._audit.append("deactivation", stop.monotonic_us, stop.utc_us, source=stop.source,
                           event_id=event.start.event_id, last_seq=event.segment.seq,
                           last_hash=cp.hash.hex(), **why)
        self._event = None
        self._chain.open_event = None
        self._save_chain()
        self._stage = "idle"
        self._health.clear_committed()
        if event.video_muxed and (event.reported_video_us is None
                                  or event.last_video_end_us > event.reported_video_us):
            self._notify(self._on_committed, event.last_video_end_us)
