"""The segment chain's persistent head: sequence counter, last checkpoint, open segment.

Kept in the key store (not on the evidence card), so wiping or swapping the card
cannot roll the sequence counter back (SEG-3). Written when a segment opens or
closes, not at every flush, to spare the flash.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass

from nacl.signing import VerifyKey

from device.evidence.format import segment_file_name, seq_from_file_name
from device.evidence.segment_reader import SegmentReport, verify_segment_file
from hal.keystore import KeyStore
from hal.storage import Storage

RECORD_NAME = "chain.json"
log = logging.getLogger(__name__)


@dataclass(slots=True)
class ChainState:
    next_seq: int = 1
    head: dict | None = None      # {"seq", "hash", "chunks"}: what the next segment's `prev` names
    open_seq: int | None = None   # a segment that was open and not yet cleanly closed
    running: bool = False         # firmware was running (False after a clean shutdown)

    @classmethod
    def load(cls, keystore: KeyStore) -> "ChainState":
        raw = keystore.read_record(RECORD_NAME)
        return cls(**json.loads(raw)) if raw else cls()

    def save(self, keystore: KeyStore) -> None:
        keystore.write_record(RECORD_NAME, json.dumps(asdict(self), sort_keys=True).encode())


@dataclass(frozen=True, slots=True)
class Recovery:
    """What boot found after an unclean stop (AUD-2)."""
    seq: int | None       # the segment that was cut short, if one was open
    chunks: int           # chunks authenticated by its last valid checkpoint
    event_id: str | None = None  # its event (whose activation entry may never have been written)


def recover(state: ChainState, storage: Storage, device_key: VerifyKey) -> Recovery | None:
    """Bring `state` up to date with what storage really holds after a crash."""
    unclean = state.running
    newest = max((s for s in map(seq_from_file_name, storage.names()) if s is not None), default=0)
    if newest >= state.next_seq:
        # Power failed between creating a segment and persisting the counter.
        state.open_seq, unclean = newest, True
    if state.open_seq is None:
        return Recovery(None, 0) if unclean else None
    seq, chunks, event_id = state.open_seq, 0, None
    name = segment_file_name(seq)
    if name in storage.names():
        try:
            with storage.open_read(name) as f:
                report = verify_segment_file(f, device_key)
        except (OSError, ValueError) as exc:
            # An unreadable file must not stop the camera from booting and recording.
            log.error("cannot verify %s at boot: %s", name, exc)
            report = SegmentReport(outcome="unreadable")
        if report.authenticated:
            last = report.last
            state.head = {"seq": seq, "hash": last.hash.hex(), "chunks": last.chunk_count}
            chunks, event_id = last.chunk_count, report.header["event_id"]
    state.next_seq = max(state.next_seq, seq + 1)
    state.open_seq = None
    return Recovery(seq, chunks, event_id)

