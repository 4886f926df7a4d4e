"""The segment chain's persistent head: sequence counter, last checkpoint, open segment.

Kept in the key store (not on the evidence card), so wiping or swapping the card
cannot roll the sequence counter back (SEG-3). Written when a segment opens or
closes, not at every flush, to spare the flash.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from nacl.signing import VerifyKey

from device.evidence.format import segment_file_name, seq_from_file_name
from device.evidence.segment_reader import verify_segment
from hal.keystore import KeyStore
from hal.storage import Storage

RECORD_NAME = "chain.json"


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


def recover(state: ChainState, storage: Storage, device_key: VerifyKey) -> Recovery | None:
    """Bring `state` up to date with what storage really holds after a crash."""
    unclean = state.running
    newest = max((s for s in map(seq_from_file_name, storage.names()) if s is not None), default=0)
    if newest >= state.next_seq:
        # Power failed between creating a segment and persisting the counter.
        state.open_seq, unclean = newest, True
    if state.open_seq is None:
        return Recovery(None, 0) if unclean else None
    seq, chunks = state.open_seq, 0
    name = segment_file_name(seq)
    if name in storage.names():
        with storage.open_read(name) as f:
            report = verify_segment(f.read(), device_key)
        if report.authenticated:
            last = report.last
            state.head = {"seq": seq, "hash": last.hash.hex(), "chunks": last.chunk_count}
            chunks = last.chunk_count
    state.next_seq = max(state.next_seq, seq + 1)
    state.open_seq = None
    return Recovery(seq, chunks)
