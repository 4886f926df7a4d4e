"""The pod's LED and motor patterns (docs/link.md §6), as functions of time.

Each pattern is an LED schedule repeating from the moment the pattern began, plus motor
pulses once at its start. Pure logic on the caller's clock, so tests check the exact
edges, and `next_change_us` tells the main loop (or a simulator) when to look again.
"""
from device.link import roles
from pod.board import AMBER, GREEN, RED

SHORT_PULSE_US = 80000
PULSE_GAP_US = 120000
LONG_PULSE_US = 600000

# pattern -> (period_us, [(offset_us, colour or None)] within the period, motor pulses
# [(on_offset_us, off_offset_us)] from the start)
PATTERNS = {
    roles.RECORDING: (None, [(0, RED)], [(0, SHORT_PULSE_US)]),
    # A 50 ms green blink every 2 s: visible, but it says "buffering", not "recording".
    roles.BUFFERING: (2000000, [(0, GREEN), (50000, None)], []),
    # 4 Hz: an on-off cycle every 250 ms; three short pulses make a fault felt unseen.
    roles.FAULT: (250000, [(0, AMBER), (125000, None)],
                  [(i * (SHORT_PULSE_US + PULSE_GAP_US), i * (SHORT_PULSE_US + PULSE_GAP_US) + SHORT_PULSE_US)
                   for i in range(3)]),
    # Amber and green alternating once a second: "unknown", unlike any camera state.
    roles.LINK_LOST: (1000000, [(0, AMBER), (500000, GREEN)], [(0, LONG_PULSE_US)]),
}


class Indicator:
    """Drives the board's LED and motor for the pattern shown now."""

    def __init__(self, board):
        self.board = board
        self.pattern = None
        self.since_us = 0
        self._pulses = []
        self.linked_once = False

    def update(self, pattern, now_us):
        if pattern != self.pattern:
            self.pattern = pattern
            self.since_us = now_us
            pulses = PATTERNS[pattern][2]
            if pattern == roles.LINK_LOST and not self.linked_once:
                # "one long pulse when the link is lost": at boot nothing was lost.
                pulses = []
            if pattern != roles.LINK_LOST:
                self.linked_once = True
            self._pulses = pulses
        self.board.set_led(self.led_at(now_us))
        self.board.set_motor(self.motor_at(now_us))

    def led_at(self, now_us):
        period_us, steps, _ = PATTERNS[self.pattern]
        offset_us = now_us - self.since_us
        if period_us is not None:
            offset_us %= period_us
        colour = None
        for at_us, c in steps:
            if offset_us >= at_us:
                colour = c
        return colour

    def motor_at(self, now_us):
        offset_us = now_us - self.since_us
        for on_us, off_us in self._pulses:
            if on_us <= offset_us < off_us:
                return True
        return False

    def next_change_us(self, now_us):
        """The next time the LED or motor may change on its own; None if never."""
        if self.pattern is None:
            return None
        offset_us = now_us - self.since_us
        best = None
        for on_us, off_us in self._pulses:
            for t in (on_us, off_us):
                if t > offset_us and (best is None or t < best):
                    best = t
        period_us, steps, _ = PATTERNS[self.pattern]
        if period_us is not None:
            base = offset_us - offset_us % period_us
            for cycle in (base, base + period_us):
                for at_us, c in steps:
                    t = cycle + at_us
                    if t > offset_us and (best is None or t < best):
                        best = t
        return None if best is None else self.since_us + best
