"""The segment writer's storage-fault path (docs/format.md §8): after a fault, know what
reached the disk, chain the next segment to it, and say in a signed entry what was lost.

A part of SegmentWriter (device/writer.py), on its thread; split out only for length.
"""
from __future__ import annotations

import errno as errno_names
import logging

log = logging.getLogger("device.writer")


class WriterFaults:
    def _storage_fault(self, exc: BaseException, kind: str = "storage") -> None:
        """After a fault, know what reached the disk: the next segment chains to the
        last checkpoint whose write and sync both returned, a segment number once
        taken is never reused, and a signed fault entry says what was lost (§8)."""
        event, self._event, self._waiting_start = self._event, None, None
        self._health.clear_committed()
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
            stage, self._stage = self._stage, "audit"
            self._audit.append("fault", monotonic_us, utc_us, **fault)
            self._chain.pending_faults.pop(0)
            self._save_chain()
            self._stage = stage
