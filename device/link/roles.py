"""What each side does on the pod link (docs/link.md §5, §6): heartbeats and beacons,
gestures sent until acknowledged, acted on once, and what the pod may show.

Pure logic on the caller's clock: `poll(now_us)` returns the frames due now and
`next_deadline_us()` says when to call it again, like device/gestures.py.
"""
from device.link import frame as fr
from device.link.endpoint import LinkEndpoint

HEARTBEAT_US = 500000
BEACON_US = 500000
RETRY_OFFSETS_US = (100000, 200000, 400000, 800000)   # after a gesture's first frame
GIVE_UP_US = 1200000     # no acknowledgement by then: the next gesture goes
MAX_PRESS_AGE_MS = 2000

# docs/link.md §6, by precedence
RECORDING = "recording"
BUFFERING = "buffering"
FAULT = "fault"
LINK_LOST = "link_lost"


class PodRole:
    """The pod's side: heartbeats, gestures, and the camera's reported state."""

    def __init__(self, pairing, counter, now_us):
        self.link = LinkEndpoint(pairing, "pod", counter)
        self._next_heartbeat_us = now_us
        self._pending = None     # the gesture in flight: [number, gesture_ref, press_us, first_us, tries]
        self._queue = []         # gestures waiting for it: [(number, press_us)]
        self.beacon = None       # the newest fresh beacon's fields, as a dict
        self.rejected = {}       # reason -> count, for a diagnostic display

    def gesture(self, name, press_us, now_us):
        """A gesture decoded from the pod's button. Gestures go one at a time, in order: a
        later one waits until the one in flight is acknowledged or given up, because the
        camera's acknowledgement of a later gesture would hide an earlier one still lost
        (docs/link.md §5). Returns the frame to send now, or None if it waits."""
        self._queue.append((fr.GESTURE_NUMBERS[name], press_us))
        frames = self._start_next(now_us)
        return frames[0] if frames else None

    def _start_next(self, now_us):
        if self._pending is not None or not self._queue:
            return []
        number, press_us = self._queue.pop(0)
        ref = self.link._counter.next_value   # the counter its first frame will use
        counter, frame = self.link.seal(fr.GESTURE, (number, ref, _age_ms(press_us, now_us)), now_us)
        self._pending = [number, counter, press_us, now_us, 0]
        return [frame]

    def poll(self, now_us):
        """Frames due at `now_us`: the gesture in flight again (or the next one), then a
        heartbeat if due."""
        out = []
        item = self._pending
        if item is not None:
            number, ref, press_us, first_us, tries = item
            if tries >= len(RETRY_OFFSETS_US):
                if now_us >= first_us + GIVE_UP_US:
                    self._pending = None   # given up: the LED shows the camera's real state
            elif now_us >= first_us + RETRY_OFFSETS_US[tries]:
                item[4] = tries + 1
                out.append(self.link.seal(fr.GESTURE, (number, ref, _age_ms(press_us, now_us)), now_us)[1])
        out += self._start_next(now_us)
        if now_us >= self._next_heartbeat_us:
            out.append(self.link.seal(fr.HEARTBEAT, (), now_us)[1])
            self._next_heartbeat_us = now_us + HEARTBEAT_US
        return out

    def next_deadline_us(self):
        deadline = self._next_heartbeat_us
        item = self._pending
        if item is not None:
            tries = item[4]
            # After the last try, one more deadline: to give up and start the next gesture.
            at = item[3] + (RETRY_OFFSETS_US[tries] if tries < len(RETRY_OFFSETS_US) else GIVE_UP_US)
            deadline = min(deadline, at)
        elif self._queue:
            deadline = 0
        return deadline

    def receive(self, data, now_us):
        """A datagram from the radio. Returns the beacon dict if it was a fresh beacon,
        else None (a rejected frame is counted by reason, never acted on)."""
        try:
            kind, fields, age_us = self.link.open(data, now_us)
        except fr.LinkReject as exc:
            self.rejected[exc.reason] = self.rejected.get(exc.reason, 0) + 1
            return None
        state, record_led, committed_age_ms, faults, battery_min, ack = fields
        self.beacon = {"state": fr.STATES[state], "record_led": bool(record_led),
                       "committed_age_ms": None if committed_age_ms == fr.NO_MEDIA else committed_age_ms,
                       "faults": fr.fault_names(faults), "battery_min": None if battery_min == fr.BATTERY_UNKNOWN
                       else battery_min, "gesture_ack": ack, "information_age_us": age_us}
        if self._pending is not None and self._pending[1] <= ack:
            self._pending = None   # acknowledged; poll() starts the next one
        return self.beacon

    def shown(self, now_us):
        """What the pod's LED may show now (docs/link.md §6): never more than the freshness
        bound behind the camera."""
        b = self.beacon
        if b is None or not self.link.link_up(now_us):
            return LINK_LOST
        # Recording with nothing on the card yet (the first flush is under a second away)
        # is not a fault; media that stopped reaching the card is.
        stalled = b["state"] == "recording" and not b["record_led"] and b["committed_age_ms"] is not None
        if b["record_led"]:
            return RECORDING   # media is reaching the card; a warning never hides that
        if b["faults"] or stalled:
            return FAULT
        return BUFFERING


class CameraRole:
    """The camera's side for one paired pod: beacons, and gestures acted on once."""

    def __init__(self, pairing, counter):
        self.link = LinkEndpoint(pairing, "camera", counter)
        self.pod_id = pairing.pod_id
        self.address = None          # where the newest authentic pod frame came from
        self.acted_ref = 0           # the highest gesture_ref acted on since boot
        self._was_up = False

    def receive(self, data, counter, sender, now_us):
        """A frame whose header named this pod's link (check 4 done by the caller).
        Returns (gesture name, press_us) to act on, or None; raises LinkReject."""
        before = self.link.peer_counter
        try:
            kind, fields, age_us = self.link.open_known(data, counter, now_us)
        finally:
            if self.link.peer_counter != before:
                # Authentic (fresh or stale): answer there. A stale one must count, or a
                # pod the camera has never heard could never bring the link up (§4).
                self.address = sender
        if kind != fr.GESTURE:
            return None
        number, ref, press_age_ms = fields
        if ref <= self.acted_ref:
            return None   # a retransmission of a gesture already acted on
        if press_age_ms > MAX_PRESS_AGE_MS:
            raise fr.LinkReject("stale", "press %d ms old" % press_age_ms)
        self.acted_ref = ref
        return fr.GESTURE_CODES[number], now_us - press_age_ms * 1000

    def beacon(self, status, now_us):
        """A beacon frame for `status` (a dict: state, record_led, committed_age_ms, faults,
        battery_min), or None while no pod address is known."""
        if self.address is None:
            return None
        age = status.get("committed_age_ms")
        battery = status.get("battery_min")
        if battery is not None and not 0 <= battery < fr.BATTERY_UNKNOWN:   # inf, NaN, negative
            battery = None
        fields = (fr.STATES.index(status["state"]), 1 if status["record_led"] else 0,
                  fr.NO_MEDIA if age is None else min(int(age), fr.NO_MEDIA - 1),
                  fr.faults_mask(status.get("faults", ())),
                  fr.BATTERY_UNKNOWN if battery is None else max(0, min(int(battery), fr.BATTERY_UNKNOWN - 1)),
                  self.acted_ref)
        return self.link.seal(fr.BEACON, fields, now_us)[1]

    def link_change(self, now_us):
        """'lost' or 'restored' when the link's state changed since the last call, else None."""
        up = self.link.link_up(now_us)
        if up == self._was_up:
            return None
        self._was_up = up
        return "restored" if up else "lost"


def _age_ms(press_us, now_us):
    return max(0, min(65535, (now_us - press_us) // 1000))


def route(data, roles_by_link_id):
    """The camera's check 1-4 for a datagram: (role, counter); raises LinkReject."""
    link_id, counter = fr.header(data, fr.POD_TO_CAMERA)
    role = roles_by_link_id.get(link_id)
    if role is None:
        raise fr.LinkReject("unknown_link")
    return role, counter
