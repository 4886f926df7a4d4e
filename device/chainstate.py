"""The device's persistent custody head: segment counter, audit head, open segment.

Kept in the key store (not on the evidence card), so wiping or swapping the card
cannot roll the sequence counter or the audit chain back (SEG-3, VER-3). It is
written *ahead* of the storage operation it describes: a segment number is taken,
and an audit line is recorded here, before either reaches the card, so after a
power cut or a storage fault the device never reuses a number it may have
written somewhere (docs/format.md §8).
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field

from nacl.signing import VerifyKey

from device.evidence.format import segment_file_name, seq_from_file_name
from device.evidence.segment_reader import AUTHENTIC, SegmentReport, verify_segment_file
from hal.keystore import KeyStore
from hal.storage import Storage

RECORD_NAME = "chain.json"
log = logging.getLogger(__name__)


class ChainStateError(ValueError):
    """state/chain.json is unreadable: the counters cannot be trusted, so the
    device refuses to record rather than risk reusing a sequence number."""


@dataclass(slots=True)
class ChainState:
    next_seq: int = 1
    head: dict | None = None      # {"seq", "hash", "chunks"}: what the next segment's `prev` names
    open_seq: int | None = None   # a segment number taken and not yet cleanly closed
    running: bool = False         # firmware was running (False after a clean shutdown)
    open_event: str | None = None  # an event whose stop is not yet in the audit log
    # The audit chain's head: {"next_n", "prev", "next_file", "last_line"} (last_line is
    # the newest line, written here before it is written to the card); None before the
    # first entry of a device (or a device first run by firmware 0.1).
    audit: dict | None = None
    pending_faults: list[dict] = field(default_factory=list)  # fault entries not yet logged
    # What boot found after an unclean stop, kept until its recovery entry is on the card:
    # a power cut during that boot must not lose it.
    pending_recovery: dict | None = None

    @classmethod
    def load(cls, keystore: KeyStore) -> "ChainState":
        raw = keystore.read_record(RECORD_NAME)
        if raw is None:
            return cls()
        try:
            data = json.loads(raw)
            state = cls(**data) if isinstance(data, dict) else None
        except (ValueError, TypeError, RecursionError):
            state = None
        if state is None or not state._well_formed():
            raise ChainStateError(
                f"the key store's {RECORD_NAME} is corrupt: the sequence counter and audit head cannot be "
                f"trusted, so the camera will not record (restore state/{RECORD_NAME} from a backup, or "
                f"re-provision the device)")
        return state

    def _well_formed(self) -> bool:
        def is_int(v: object) -> bool:
            return isinstance(v, int) and not isinstance(v, bool) and v >= 0

        head_ok = self.head is None or (isinstance(self.head, dict) and is_int(self.head.get("seq"))
                                        and isinstance(self.head.get("hash"), str)
                                        and is_int(self.head.get("chunks")))
        audit_ok = self.audit is None or (isinstance(self.audit, dict) and is_int(self.audit.get("next_n"))
                                          and isinstance(self.audit.get("prev"), str)
                                          and is_int(self.audit.get("next_file"))
                                          and isinstance(self.audit.get("last_line"), (str, type(None))))
        return (is_int(self.next_seq) and self.next_seq >= 1 and head_ok and audit_ok
                and (self.open_seq is None or is_int(self.open_seq)) and isinstance(self.running, bool)
                and (self.open_event is None or isinstance(self.open_event, str))
                and isinstance(self.pending_faults, list)
                and (self.pending_recovery is None or isinstance(self.pending_recovery, dict))
                and all(isinstance(f, dict) for f in self.pending_faults))

    def save(self, keystore: KeyStore) -> None:
        keystore.write_record(RECORD_NAME, json.dumps(asdict(self), sort_keys=True).encode())


@dataclass(frozen=True, slots=True)
class Recovery:
    """What boot found after an unclean stop (AUD-2): the fields of the recovery entry."""
    seq: int | None = None        # the segment that was open, if any
    found: str | None = None      # "absent" | "unauthenticated" | "cut" | "closed"
    chunks: int | None = None     # its last valid checkpoint, if it has one
    hash: str | None = None
    event_id: str | None = None   # the event that was open (its stop never logged)

    def fields(self) -> dict:
        return {"seq": self.seq, "found": self.found, "chunks": self.chunks, "hash": self.hash,
                "event_id": self.event_id}


def recover(state: ChainState, storage: Storage, device_key: VerifyKey) -> Recovery | None:
    """Bring `state` up to date with what storage really holds after a crash;
    None after a clean shutdown. The result is also kept in `state.pending_recovery`
    until the caller has logged it."""
    if state.pending_recovery is not None:
        # The boot that found it lost power before logging it; nothing was recorded since.
        try:
            return Recovery(**state.pending_recovery)
        except TypeError:
            state.pending_recovery = None
    recovery = _recover(state, storage, device_key)
    state.pending_recovery = None if recovery is None else recovery.fields()
    return recovery


def _recover(state: ChainState, storage: Storage, device_key: VerifyKey) -> Recovery | None:
    unclean = state.running
    newest = max((s for s in map(seq_from_file_name, storage.names()) if s is not None), default=0)
    if newest >= state.next_seq:
        # Only firmware 0.1 persisted the counter after creating the file.
        state.open_seq, unclean = newest, True
    if not unclean and state.open_seq is None:
        return None
    event_id, state.open_event = state.open_event, None
    if state.open_seq is None:
        return Recovery(event_id=event_id)
    seq = state.open_seq
    state.next_seq, state.open_seq = max(state.next_seq, seq + 1), None
    name = segment_file_name(seq)
    if name not in storage.names():
        return Recovery(seq, "absent", event_id=event_id)
    try:
        with storage.open_read(name) as f:
            report = verify_segment_file(f, device_key)
    except (OSError, ValueError) as exc:
        # An unreadable file must not stop the camera from booting and recording.
        log.error("cannot verify %s at boot: %s", name, exc)
        report = SegmentReport(outcome="unreadable")
    if not report.authenticated:
        return Recovery(seq, "unauthenticated", event_id=event_id)
    last = report.last
    state.head = {"seq": seq, "hash": last.hash.hex(), "chunks": last.chunk_count}
    found = "closed" if report.outcome == AUTHENTIC else "cut"
    return Recovery(seq, found, last.chunk_count, last.hash.hex(), event_id or report.header["event_id"])
