"""The camera's side of the pod link (docs/link.md §5): gestures from paired pods, status
beacons back, and the wearer told when a pod's link drops. Losing a pod never stops a
recording: nothing here touches the recorder except through the gestures a pod sends.

Pairings are the key-store record `pods.json` (written by `bwc pod pair`); the camera's
counter for every pairing is the record `podlink-counter`, reserved ahead of use.
"""
from __future__ import annotations

import json
import logging
import threading
from collections import deque
from typing import Callable

from device.link import frame as fr
from device.link.endpoint import ReservedCounter
from device.link.roles import BEACON_US, CameraRole, route
from device.writer import AuditEntry
from hal.clock import Clock
from hal.keystore import KeyStore
from hal.radio import MAX_DATAGRAM_BYTES, Radio

log = logging.getLogger(__name__)

PAIRINGS_RECORD = "pods.json"
COUNTER_RECORD = "podlink-counter"
TICK_US = 100_000                 # a changed state or record LED reaches the pod within this
REJECT_SUMMARY_US = 60_000_000    # rejected frames are logged as one count a minute, not one by one
# A jammer can flap a link at will (docs/link.md §7): the wearer is told again at most every
# 30 s (like camera_lost), and link changes fill at most 10 audit entries a minute.
ALERT_REPEAT_US = 30_000_000
LOGS_PER_WINDOW, LOG_WINDOW_US = 10, 60_000_000
MAX_PAIRINGS = 8


class PairingError(ValueError):
    """pods.json is wrong; the message says how."""


def load_pairings(keystore: KeyStore) -> list[fr.Pairing]:
    data = keystore.read_record(PAIRINGS_RECORD)
    if data is None:
        return []
    try:
        doc = json.loads(data)
        pods = doc["pods"]
        if not isinstance(pods, list) or len(pods) > MAX_PAIRINGS:
            raise PairingError(f"{PAIRINGS_RECORD}: 'pods' must list at most {MAX_PAIRINGS} pairings")
        pairings = []
        for item in pods:
            pairing = fr.Pairing(item["pod_id"], bytes.fromhex(item["secret"]))
            if pairing.link_id.hex() != item["link_id"]:
                raise PairingError(f"{PAIRINGS_RECORD}: pod {item['pod_id']}: link_id does not match its secret")
            pairings.append(pairing)
    except PairingError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PairingError(f"{PAIRINGS_RECORD} is not a list of pod pairings ({exc})") from None
    if len({p.pod_id for p in pairings}) != len(pairings):
        raise PairingError(f"{PAIRINGS_RECORD}: a pod id is paired twice")
    if len({p.link_id for p in pairings}) != len(pairings):
        raise PairingError(f"{PAIRINGS_RECORD}: two pairings share a link id; re-pair one of them")
    return pairings


def pairings_record(pairings: list[fr.Pairing]) -> bytes:
    return json.dumps({"pods": [{"pod_id": p.pod_id, "link_id": p.link_id.hex(), "secret": p.secret.hex()}
                                for p in pairings]}, indent=1).encode()


class _RecordCounterStore:
    def __init__(self, keystore: KeyStore) -> None:
        self._keystore = keystore

    def read(self) -> int | None:
        data = self._keystore.read_record(COUNTER_RECORD)
        try:
            return int(data) if data is not None else None
        except ValueError:
            raise PairingError(f"{COUNTER_RECORD} is not a counter; refusing to reuse link counters") from None

    def write(self, value: int) -> None:
        self._keystore.write_record(COUNTER_RECORD, b"%d" % value)


class PodLinks:
    """Every paired pod of this camera over one radio.

    `status()` returns what a beacon carries (Monitor.pod_status); `on_gesture(gesture,
    press_us, source)` is the firmware acting on a pod's gesture as on its own button;
    `alert(pattern)` plays a wearer pattern; audit entries go to `writer.put`."""

    def __init__(self, clock: Clock, radio: Radio, keystore: KeyStore, pairings: list[fr.Pairing],
                 status: Callable[[], dict], on_gesture: Callable[[str, int, str], None],
                 alert: Callable[[str], None], writer) -> None:
        self._clock, self._radio = clock, radio
        self._status, self._on_gesture, self._alert, self._writer = status, on_gesture, alert, writer
        counter = ReservedCounter(_RecordCounterStore(keystore))
        self._roles = {p.link_id: CameraRole(p, counter) for p in pairings}
        self._lock = threading.Lock()
        self._timer = None
        self._stopped = False
        self._next_beacon_us = 0
        self._last_shown: tuple | None = None
        self._rejected: dict[str, int] = {}
        self._next_summary_us = 0
        self._alerted_us: dict[str, int] = {}
        self._logged_us: deque = deque()
        self._unlogged: dict[str, int] = {}

    def start(self) -> None:
        self._radio.subscribe(self._on_datagram)
        now_us = self._clock.monotonic_us()
        self._next_summary_us = now_us + REJECT_SUMMARY_US
        self._schedule(now_us + TICK_US)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self._timer is not None:
                self._timer.cancel()

    def _schedule(self, at_us: int) -> None:
        with self._lock:
            if not self._stopped:
                self._timer = self._clock.call_at(at_us, self._tick)

    # -- receiving (a transport thread, or the clock's in the simulator) ----------------
    def _on_datagram(self, data: bytes, sender: str, received_us: int) -> None:
        if len(data) > MAX_DATAGRAM_BYTES:
            return
        gesture = None
        with self._lock:
            if self._stopped:
                return
            try:
                role, counter = route(data, self._roles)
                gesture = role.receive(data, counter, sender, received_us)
            except fr.LinkReject as exc:
                self._rejected[exc.reason] = self._rejected.get(exc.reason, 0) + 1
                return
        if gesture is not None:
            name, press_us = gesture
            self._on_gesture(name, press_us, f"pod:{role.pod_id}")
            self._send_beacons(self._clock.monotonic_us())   # the answer, at once

    # -- the tick: beacons, link changes, the rejection summary ---------------------------
    def _tick(self) -> None:
        now_us = self._clock.monotonic_us()
        for job in (self._beacon_if_due, self._check_links, self._summarise_rejections):
            try:   # each on its own: one failing must not silence the others
                job(now_us)
            except Exception:   # noqa: BLE001 - the pod link must never take the camera down
                log.exception("pod link tick failed")
        self._schedule(now_us + TICK_US)

    def _beacon_if_due(self, now_us: int) -> None:
        status = self._status()
        if now_us >= self._next_beacon_us or (status["state"], status["record_led"]) != self._last_shown:
            self._send_beacons(now_us)

    def _send_beacons(self, now_us: int) -> None:
        # One critical section, status read after the echo it goes out with is fixed and
        # frames sent in counter order: a beacon never carries older news than its echo
        # vouches for (docs/link.md §4), and a later one never overtakes it.
        with self._lock:
            status = self._status()
            for role in self._roles.values():
                frame = role.beacon(status, now_us)
                if frame is not None:
                    self._radio.send(frame, role.address)
            self._last_shown = (status["state"], status["record_led"])
            self._next_beacon_us = now_us + BEACON_US

    def _check_links(self, now_us: int) -> None:
        with self._lock:
            changes = [(role.pod_id, role.link_change(now_us)) for role in self._roles.values()]
        for pod_id, change in changes:
            if change is None:
                continue
            if change == "lost":
                if now_us - self._alerted_us.get(pod_id, -ALERT_REPEAT_US) >= ALERT_REPEAT_US:
                    self._alerted_us[pod_id] = now_us
                    self._alert("pod_lost")
            while self._logged_us and now_us - self._logged_us[0] >= LOG_WINDOW_US:
                self._logged_us.popleft()
            if len(self._logged_us) >= LOGS_PER_WINDOW:
                self._unlogged[pod_id] = self._unlogged.get(pod_id, 0) + 1
                continue
            self._logged_us.append(now_us)
            fields = {"pod": pod_id, "status": change}
            if self._unlogged.get(pod_id):
                fields["changes_not_logged"] = self._unlogged.pop(pod_id)
            self._writer.put(AuditEntry("pod_link", now_us, self._clock.wall_time_us(), fields))

    def _summarise_rejections(self, now_us: int) -> None:
        if now_us < self._next_summary_us:
            return
        with self._lock:
            counts, self._rejected = self._rejected, {}
            self._next_summary_us = now_us + REJECT_SUMMARY_US
        if counts:
            self._writer.put(AuditEntry("pod_link", now_us, self._clock.wall_time_us(),
                                        {"status": "rejected", "counts": dict(sorted(counts.items()))}))
