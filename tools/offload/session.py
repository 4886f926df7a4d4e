"""One run of `bwc offload` (docs/offload.md §8): lock, plan, send, receipt, release, summary.

Every pass starts from the intake's `state`: after a drop the next pass skips what
the intake accepted and sends only the parts it lacks, so a drop costs at most the
part in flight. Passes repeat with back-off (0.5 s doubling to 30 s) until the work
is done or `--retry-for` runs out. Whatever happens, the newest receipt the intake
signed is checked, logged and acted on before exit: what was receipted leaves the
card, and nothing else does.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable

from nacl.signing import SigningKey, VerifyKey

from device.chainstate import ChainState
from device.config import Identity
from device.evidence.receipt import ReceiptError
from device.evidence.storage_verify import verify_storage
from device.offload.plan import CardSegment, Plan, card_segments, make_plan, plan_audit
from device.offload.release import release
from hal.filekeystore import FileKeyStore
from hal.realclock import RealClock
from tools.offload.client import IntakeClient, NetworkFailure, Refused
from tools.offload.part_sizer import PartSizer
from tools.offload.progress import Progress

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_NETWORK = 0, 1, 2, 3
BACKOFF_FIRST_S, BACKOFF_MAX_S = 0.5, 30.0


@dataclass(slots=True)
class Outcome:
    accepted: list[int] = field(default_factory=list)       # seqs, in the order accepted
    already_held: list[int] = field(default_factory=list)
    refused: list[dict] = field(default_factory=list)       # {"what", "reason", "detail"}
    refused_names: set[str] = field(default_factory=set)
    audit_bytes: int = 0
    retries: int = 0
    wasted_bytes: list[int] = field(default_factory=list)  # body bytes of each exchange a drop cut off
    network_error: str | None = None


@dataclass
class Session:
    identity: Identity
    device_dir: str
    storage_dir: str
    client: IntakeClient
    progress: Progress
    part_bytes: int
    retry_for_s: float
    monotonic_s: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    outcome: Outcome = field(default_factory=Outcome)
    # None: the part size follows the link (part_sizer.py); a number: --part-kib fixed it.
    sizer: "PartSizer | None" = None
    _held_at_start: set[int] | None = None
    _held: dict[int, str] | None = None     # seq -> sha256 the intake's last signed state lists
    _not_sent: list[dict] = field(default_factory=list)     # what the plan leaves on the card, and why

    def run(self) -> int:
        keystore = FileKeyStore(self.device_dir)
        device_key = VerifyKey(self.identity.device_public_key)
        chain = ChainState.load(keystore)
        report = verify_storage(self.storage_dir, device_key)
        self._segments = card_segments(report)    # hashed once, not on every pass
        self._send_with_retries(report, chain)
        code = self._release(keystore)
        self.client.close()
        if code is None:
            code = EXIT_NETWORK if self.outcome.network_error else EXIT_REFUSED if self.outcome.refused else EXIT_OK
        self.progress.summary(self._summary(code))
        return code

    # -- sending ---------------------------------------------------------------------
    def _send_with_retries(self, report, chain: ChainState) -> None:
        deadline_s = self.monotonic_s() + self.retry_for_s
        backoff_s = BACKOFF_FIRST_S
        while True:
            progressed_before = self.outcome.audit_bytes + self.client.bytes_sent
            try:
                self._pass(report, chain)
                return
            except Refused as exc:    # state or receipt refused (e.g. not enrolled): final for this run
                self._refuse("the intake", exc)
                return
            except NetworkFailure as exc:
                self.outcome.wasted_bytes.append(exc.sent_bytes)
                if self.sizer is not None:
                    self.sizer.dropped()
                if self.outcome.audit_bytes + self.client.bytes_sent > progressed_before:
                    backoff_s = BACKOFF_FIRST_S     # it was moving: a fresh drop, not a dead link
                if self.monotonic_s() + backoff_s > deadline_s:
                    self.outcome.network_error = str(exc)
                    return
                self.outcome.retries += 1
                self.progress.retry(str(exc), backoff_s)
                self.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, BACKOFF_MAX_S)

    def _pass(self, report, chain: ChainState) -> None:
        self.client.sync_time()
        state = self.client.state()
        self._held = _held_segments(state)
        plan = make_plan(self.storage_dir, report, state, chain, self._segments)
        self._not_sent = [{"what": seg.name, "why": "not closed: the firmware has not finished it (boot the "
                                                    "camera once to recover it)"} for seg in plan.open]
        self._not_sent += [{"what": name, "why": why} for name, why in plan.unsendable]
        plan.segments = [s for s in plan.segments if s.name not in self.outcome.refused_names]
        self._note_held(plan)
        self._announce(plan, state)
        self._send_audit(plan)
        for seg in plan.segments:
            self._send_segment(seg, state)
        # Entries written meanwhile (none while the lock is held, so normally nothing).
        final = self.client.state()
        self._send_audit(plan_audit(self.storage_dir, final))
        self.client.receipt()
        self._held = _held_segments(final) | (self._held or {})

    def _note_held(self, plan: Plan) -> None:
        """What the intake held before this run is `already_held`; what it holds now and
        did not then was accepted in this run (perhaps with its answer lost to a drop)."""
        done = set(self.outcome.accepted) | set(self.outcome.already_held)
        if self._held_at_start is None:
            self._held_at_start = {seg.seq for seg in plan.held}
            self.outcome.already_held.extend(seg.seq for seg in plan.held)
            return
        for seg in plan.held:
            if seg.seq not in done:
                self._done(seg, "accepted")

    def _announce(self, plan: Plan, state: dict) -> None:
        events: dict[str, int] = {}
        for seg in plan.segments:
            events[seg.event_id] = events.get(seg.event_id, 0) + seg.size - self._held_bytes(seg, state)
        self.progress.plan(events, sum(len(a.data) for a in plan.audit))

    def _send_audit(self, plan: Plan) -> None:
        for item in plan.audit:
            what = f"audit-{item.file:010d}.log"
            if what in self.outcome.refused_names:
                continue
            try:
                self.client.put_audit(item.file, item.offset, item.data,
                                      on_sent=lambda n: self.progress.sent(None, n))
            except Refused as exc:
                self._refuse(what, exc)
                continue
            self.outcome.audit_bytes += len(item.data)

    @staticmethod
    def _upload(seg: CardSegment, state: dict) -> dict | None:
        return next((u for u in state.get("uploads", []) if isinstance(u, dict) and u.get("seq") == seg.seq
                     and u.get("sha256") == seg.sha256 and u.get("size") == seg.size
                     and isinstance(u.get("part_bytes"), int) and u["part_bytes"] > 0
                     and isinstance(u.get("parts"), list)), None)

    def _held_bytes(self, seg: CardSegment, state: dict) -> int:
        upload = self._upload(seg, state)
        if upload is None:
            return 0
        p = upload["part_bytes"]
        return sum(min(p, seg.size - i * p) for i in set(upload.get("parts", [])) if 0 <= i * p < seg.size)

    def _send_segment(self, seg: CardSegment, state: dict) -> None:
        upload = self._upload(seg, state)
        part_bytes = upload["part_bytes"] if upload else \
            self.sizer.next_part_bytes() if self.sizer is not None else self.part_bytes
        held = set(upload.get("parts", [])) if upload else set()
        count = -(-seg.size // part_bytes)
        try:
            with open(seg.path, "rb") as f:
                for index in range(count):
                    if index in held:
                        continue
                    f.seek(index * part_bytes)
                    data = f.read(part_bytes)
                    started_s = self.monotonic_s()
                    body = self.client.put_part(seg.seq, seg.sha256, index, data, seg.size,
                                                part_bytes, on_sent=lambda n: self.progress.sent(seg.event_id, n))
                    if self.sizer is not None:
                        self.sizer.sent(len(data), self.monotonic_s() - started_s)
                    if body.get("status") == "already_held":
                        return self._done(seg, "already_held")
            body = self.client.commit(seg.seq, seg.sha256)
        except Refused as exc:
            return self._refuse(seg.name, exc)
        self._done(seg, "already_held" if body.get("status") == "already_held" else "accepted")

    def _done(self, seg: CardSegment, status: str) -> None:
        if self._held is not None:
            self._held[seg.seq] = seg.sha256    # the intake answered, signed, that it holds these bytes
        (self.outcome.already_held if status == "already_held" else self.outcome.accepted).append(seg.seq)
        self.progress.segment(seg.seq, seg.name, seg.event_id, status, seg.size)

    def _refuse(self, what: str, exc: Refused) -> None:
        self.outcome.refused_names.add(what)
        self.outcome.refused.append({"what": what, "reason": exc.reason, "detail": exc.detail})
        self.progress.refused(what, exc.reason, exc.detail)

    # -- releasing -------------------------------------------------------------------
    def _release(self, keystore: FileKeyStore) -> int | None:
        self.deleted: list[str] = []
        self.receipt_entry: int | None = None
        receipt = self.client.latest_receipt
        if receipt is None:
            return None
        try:
            result = release(receipt, self.identity, self.storage_dir, keystore, RealClock(), held=self._held)
        except ReceiptError as exc:
            self.outcome.refused.append({"what": "the intake's receipt", "reason": "receipt_invalid",
                                         "detail": str(exc)})
            self.progress.refused("the intake's receipt", "receipt_invalid", str(exc))
            return EXIT_REFUSED
        self.deleted, self.receipt_entry = result.deleted, result.logged_entry
        self.progress.receipt(receipt, result.logged_entry, result.deleted)
        return None

    def _summary(self, code: int) -> dict:
        o = self.outcome
        left = sorted(n for n in os.listdir(self.storage_dir) if not n.startswith("."))
        receipt = self.client.latest_receipt
        return {"intake": f"{self.client.scheme}://{self.client.host}:{self.client.port}",
                "outcome": {EXIT_OK: "done", EXIT_REFUSED: "refusals", EXIT_NETWORK: "network failed"}.get(code),
                "exit_code": code, "accepted": o.accepted, "already_held": o.already_held, "refused": o.refused,
                "audit_bytes": o.audit_bytes, "receipt": None if receipt is None else
                {"segments": receipt.get("segments"), "audit": receipt.get("audit")},
                "receipt_entry": self.receipt_entry, "deleted": self.deleted, "left_on_card": left,
                "not_sent": self._not_sent,
                "retries": o.retries, "body_bytes_sent": self.client.bytes_sent,
                "wasted_bytes": o.wasted_bytes, "network_error": o.network_error}


def signing_key(device_dir: str, identity: Identity) -> SigningKey:
    key = SigningKey(FileKeyStore(device_dir).signing_seed())
    if bytes(key.verify_key) != identity.device_public_key:
        raise ValueError(f"{os.path.join(device_dir, 'device.key')} does not match the device_public_key in "
                         f"{os.path.join(device_dir, 'device.json')}")
    return key


def _held_segments(state: dict) -> dict[int, str]:
    """seq -> sha256 of what a signed state says the intake holds (shape-checked)."""
    held = {}
    for item in state.get("segments", []) if isinstance(state.get("segments"), list) else []:
        if isinstance(item, dict) and isinstance(item.get("seq"), int) and isinstance(item.get("sha256"), str):
            held[item["seq"]] = item["sha256"]
    return held
