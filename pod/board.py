"""The pod's board interface (docs/pod.md "Board"): what pod/app.py needs from hardware.

Two implementations: pod/board_picow.py (a Raspberry Pi Pico W) and pod/board_fake.py
(tests and the simulator). This class documents the contract and is their base; it holds
no state. Times are the extended monotonic us of pod/clock.py unless a name says ticks.
"""

RED = "red"
GREEN = "green"
AMBER = "amber"
COLOURS = (RED, GREEN, AMBER)


class Board:
    # -- time ----------------------------------------------------------------------
    def ticks_us(self):
        """The raw wrapping microsecond tick (time.ticks_us on MicroPython)."""
        raise NotImplementedError

    def ticks_diff(self, new, old):
        """Signed new - old of two raw ticks (time.ticks_diff)."""
        raise NotImplementedError

    # -- button --------------------------------------------------------------------
    def button_pressed(self):
        """The raw (undebounced) button level now: True while pressed."""
        raise NotImplementedError

    def button_edges(self, clock, now_us):
        """Raw edges since the last call, oldest first, as [(pressed, t_us)]: captured by
        an edge callback (an interrupt on the Pico), so a bounce burst between two passes
        of the main loop is not lost. `clock` (pod/clock.ExtendedClock) dates raw ticks;
        t_us <= now_us. The gesture decoder debounces them."""
        raise NotImplementedError

    # -- indicators ------------------------------------------------------------------
    def set_led(self, colour):
        """Light the LED in `colour` (one of COLOURS), or turn it off (None)."""
        raise NotImplementedError

    def set_motor(self, on):
        """The haptic motor on (True) or off (False)."""
        raise NotImplementedError

    # -- radio -----------------------------------------------------------------------
    def send(self, data):
        """Send one datagram to the paired camera; never blocks, never raises for a lost
        or unreachable peer (the link's retries and freshness handle loss)."""
        raise NotImplementedError

    def receive(self):
        """One received datagram (bytes), or None at once if none is waiting."""
        raise NotImplementedError

    # -- storage ---------------------------------------------------------------------
    def counter_store(self):
        """The link counter's reservation store: read() -> int or None, write(int),
        durable when write returns (device/link/endpoint.ReservedCounter)."""
        raise NotImplementedError

    def pairing_text(self):
        """The text of the pairing record link.json, or None if there is none."""
        raise NotImplementedError

    def start_watchdog(self, timeout_ms):
        """A hardware watchdog to feed() every pass, or None where there is none."""
        return None


class MemoryStore:
    """A counter store in RAM (tests, simulator); `writes` counts durable writes."""

    def __init__(self, value=None):
        self.value = value
        self.writes = 0

    def read(self):
        return self.value

    def write(self, value):
        self.value = int(value)
        self.writes += 1
