"""One side of a pod link (docs/link.md §4): counters ahead of use, replay and freshness.

Time is the caller's monotonic µs (the camera's HAL clock; on the pod, ticks_us extended
past its wrap by pod/clock.py), so this runs on a virtual clock in tests.
"""
from device.link import frame as fr

RESERVE_BLOCK = 4096
FRESH_US = 1500000
REMEMBERED_FRAMES = 64


class ReservedCounter:
    """A counter that survives reboots ahead of use. `store` has read() -> int or None
    and write(int), durable when write returns (a key-store record, a flash file)."""

    def __init__(self, store, block=RESERVE_BLOCK):
        self._store = store
        self._block = block
        start = store.read()
        if start is None:
            start = 1          # a new pairing: nothing was ever sent under its keys
        elif not isinstance(start, int) or start < 1:
            raise ValueError("the link counter record is damaged; re-pair the pod (bwc pod pair)")
        # Durable before any value at or past the old reservation is used.
        self._limit = start + block
        store.write(self._limit)
        self._next = start

    @property
    def next_value(self):
        """The value take() returns next: every counter below it may have been sent."""
        return self._next

    def take(self):
        if self._next >= self._limit:
            limit = self._next + self._block
            # Moved only once durable: a failed write must fail every later take() too,
            # or counters never reserved would be reused after a reboot (AES-CTR nonces).
            self._store.write(limit)
            self._limit = limit
        value = self._next
        if value > fr.MAX_COUNTER:
            raise ValueError("link counter exhausted")
        self._next += 1
        return value


class LinkEndpoint:
    """Sends in one direction and receives in the other, for one pairing."""

    def __init__(self, pairing, side, counter, fresh_us=FRESH_US):
        if side not in ("pod", "camera"):
            raise ValueError("side is 'pod' or 'camera'")
        self.pairing = pairing
        self.side = side
        self.send_direction = fr.POD_TO_CAMERA if side == "pod" else fr.CAMERA_TO_POD
        self.receive_direction = fr.CAMERA_TO_POD if side == "pod" else fr.POD_TO_CAMERA
        self._counter = counter
        self.fresh_us = fresh_us
        self._sent = []          # [(counter, sent_us)], oldest first, at most REMEMBERED_FRAMES
        self.peer_counter = 0    # the highest authentic counter received: our next echo
        self.info_us = None      # send time of the newest fresh frame's echo (its information time)

    # -- sending ------------------------------------------------------------------
    def seal(self, kind, fields, now_us):
        """A new frame of `kind`; returns (counter, frame bytes)."""
        counter = self._counter.take()
        body = fr.encode_body(kind, self.peer_counter, fields)
        frame = self.pairing.seal(self.send_direction, counter, body)
        self._sent.append((counter, now_us))
        if len(self._sent) > REMEMBERED_FRAMES:
            self._sent.pop(0)
        return counter, frame

    # -- receiving ----------------------------------------------------------------
    def open(self, data, now_us):
        """docs/link.md §4 checks 1-8. Returns (type, fields, information age µs) for a
        fresh frame; raises LinkReject (its reason names the check) otherwise."""
        link_id, counter = fr.header(data, self.receive_direction)
        if link_id != self.pairing.link_id:
            raise fr.LinkReject("unknown_link")
        return self.open_known(bytes(data), counter, now_us)

    def open_known(self, data, counter, now_us):
        """Checks 5-8 of a frame whose header already named this pairing."""
        counter, body = self.pairing.open(self.receive_direction, data)
        if counter <= self.peer_counter:
            raise fr.LinkReject("replay")
        kind, echo, fields = fr.decode_body(body, self.receive_direction)
        if echo >= self._counter.next_value:
            # Counters from before a reboot lie below it (stale, below); at or above it
            # is a counter this side has never used.
            raise fr.LinkReject("malformed", "echo of a frame never sent")
        # Authentic: it counts for the echo whether or not it is fresh.
        self.peer_counter = counter
        sent_us = self._sent_time(echo)
        if sent_us is None or now_us - sent_us > self.fresh_us:
            raise fr.LinkReject("stale")
        if self.info_us is None or sent_us > self.info_us:
            self.info_us = sent_us
        return kind, fields, now_us - sent_us

    def _sent_time(self, echo):
        for counter, sent_us in self._sent:
            if counter == echo:
                return sent_us
        return None

    # -- the link's state ------------------------------------------------------------
    def information_age_us(self, now_us):
        """How old the newest fresh information from the peer is; None if never linked."""
        return None if self.info_us is None else now_us - self.info_us

    def link_up(self, now_us):
        age = self.information_age_us(now_us)
        return age is not None and age <= self.fresh_us
