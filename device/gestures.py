"""Record-button gestures and trigger lines, decoded from raw edges (ACT-1, ACT-2).

Pure logic: no threads, no clock. Every call carries the time (monotonic µs, the
HAL clock's time base) and the caller asks `next_deadline_us()` when to poll
next, so the firmware needs one timer and tests need no sleeps.

This module also runs under MicroPython on a control pod (ACT-9), so it uses only
plain classes, ints and strings: no dataclasses, enum, typing, `from __future__`
or f-strings.

Debouncing (ours, not the GPIO library's): a raw level counts only once it has
been stable for `debounce_us`. The debounced transition is then dated at the raw
edge that began the stable run (the last edge of a bounce burst), so durations
are measured edge to edge and a burst never adds a press.

Record-button timing (`GestureDecoder`), with P = press edge, R = release edge:

- DOUBLE_PRESS: a short first press (R1 - P1 < max_press_us), then a second
  press starting less than `double_press_window_us` after R1. Emitted as soon as
  the second press is debounced (P2 + debounce_us): the second release is not
  awaited, because this gesture starts a recording and latency matters. The
  second press is consumed: holding it on does not produce a HOLD (a wearer who
  double-presses and lingers must not stop the event just started).
- PRESS: a short press with no second press in the window, emitted at
  R + double_press_window_us (it has to wait to know it was not a double).
- HOLD: emitted at exactly P + hold_us while the button is still down; the
  wearer need not release. A hold is never also a press.
- A press from max_press_us up to hold_us produces nothing.
- Triple press: DOUBLE_PRESS on the second press; the third press starts a new
  gesture, so it adds a PRESS (or, with a fourth, another DOUBLE_PRESS).

Timer deadlines at time t fire before an edge stamped t is applied, so "held for
exactly hold_us" is a hold, and a second press exactly `double_press_window_us`
after R1 is too late. While a raw change is still unconfirmed, gesture timers
wait for it: the edge's own time then decides (a release stamped before
P + hold_us means no hold). If the change turns out to be a glitch, an overdue
timer fires at the moment the line settles back.

Timestamps earlier than one already seen are treated as that later time: an
edge can be queued behind a poll, and the decoder never goes back in time.
"""

PRESS = "press"
DOUBLE_PRESS = "double_press"
HOLD = "hold"
ON = "on"
OFF = "off"

# Tactile switches bounce for under ~10 ms; 20 ms leaves margin and still keeps
# button edge -> indicator within the 50 ms target.
DEFAULT_DEBOUNCE_US = 20000
# The common desktop double-click default; forgiving for gloved hands.
DEFAULT_DOUBLE_PRESS_WINDOW_US = 500000
# ACT-1: a hold of >= 3 s stops an event.
DEFAULT_HOLD_US = 3000000
# Longer than a deliberate tap, well short of a hold, so a hesitant hold that is
# abandoned does not place a marker.
DEFAULT_MAX_PRESS_US = 1000000
# Holster reed switches and relay-driven light-bar lines chatter longer than a
# push button, and a false trigger costs more than 50 ms of latency.
DEFAULT_TRIGGER_DEBOUNCE_US = 50000

# GestureDecoder states (plain ints for MicroPython).
_IDLE = 0  # released, nothing pending
_FIRST_DOWN = 1  # pressed; may become a short press, a long press or a hold
_WAIT_SECOND = 2  # released after a short press; waiting for a second press
_HELD = 3  # HOLD emitted; waiting for the release
_CONSUMED = 4  # down, but this press already produced its gesture (or was down at boot)


class Debouncer:
    """The debounced level of one input line."""

    def __init__(self, debounce_us, initial_active=False):
        if debounce_us < 0:
            raise ValueError("debounce_us must be >= 0, got %d" % debounce_us)
        self.debounce_us = debounce_us
        self.level = bool(initial_active)
        self._raw = self.level
        # Time of the raw edge that began the current raw level.
        self._raw_since_us = 0

    def raw_edge(self, active, t_us):
        active = bool(active)
        if active == self._raw:
            # The same level twice means we missed an edge in between: the line
            # was not stable, so a pending change restarts its wait.
            if self._raw != self.level:
                self._raw_since_us = t_us
            return
        self._raw = active
        self._raw_since_us = t_us

    def confirm_at_us(self):
        """When the pending raw level becomes the debounced level; None if none pending."""
        if self._raw == self.level:
            return None
        return self._raw_since_us + self.debounce_us

    def commit(self):
        """Accept the pending level; returns the time of the edge that began it."""
        self.level = self._raw
        return self._raw_since_us


class _Monotonic:
    """Clamps timestamps so the decoders never see time go backwards."""

    def __init__(self):
        self._now_us = None

    def clamp(self, t_us):
        if self._now_us is not None and t_us < self._now_us:
            return self._now_us
        self._now_us = t_us
        return t_us


class _EdgeDecoder:
    """Shared by both decoders: raw edges and polls in, events out, time never
    going back. Subclasses set self._line and self._clock and define _advance()."""

    def edge(self, active: bool, t_us: int) -> list:
        """Feed one raw edge; returns the gestures completed up to t_us, in order."""
        t_us = self._clock.clamp(t_us)
        events = []
        self._advance(t_us, events)
        self._line.raw_edge(active, t_us)
        # A zero debounce, or a glitch that just ended with a timer overdue, acts now.
        self._advance(t_us, events)
        return events

    def poll(self, t_us: int) -> list:
        """Let time pass to t_us with no edge; returns the gestures completed meanwhile."""
        t_us = self._clock.clamp(t_us)
        events = []
        self._advance(t_us, events)
        return events


class GestureDecoder(_EdgeDecoder):
    """Decodes the record button's raw edges into PRESS, DOUBLE_PRESS and HOLD.

    See the module docstring for the exact timing rules. `initial_active` says
    whether the button is down at start-up; such a press yields no gesture.
    """

    def __init__(
        self,
        debounce_us=DEFAULT_DEBOUNCE_US,
        double_press_window_us=DEFAULT_DOUBLE_PRESS_WINDOW_US,
        hold_us=DEFAULT_HOLD_US,
        max_press_us=DEFAULT_MAX_PRESS_US,
        initial_active=False,
    ):
        if not 0 <= debounce_us < max_press_us <= hold_us:
            raise ValueError(
                "need 0 <= debounce_us < max_press_us <= hold_us, got %d, %d, %d"
                % (debounce_us, max_press_us, hold_us)
            )
        if double_press_window_us <= debounce_us:
            # A second press cannot be recognised sooner than one debounce after the release.
            raise ValueError(
                "double_press_window_us (%d) must exceed debounce_us (%d)"
                % (double_press_window_us, debounce_us)
            )
        self.debounce_us = debounce_us
        self.double_press_window_us = double_press_window_us
        self.hold_us = hold_us
        self.max_press_us = max_press_us
        self._line = Debouncer(debounce_us, initial_active)
        self._clock = _Monotonic()
        self._state = _CONSUMED if initial_active else _IDLE
        # Press edge time in _FIRST_DOWN, release edge time in _WAIT_SECOND.
        self._mark_us = 0
        # When the wearer last pressed (debounced edge time): the moment a
        # gesture stands for, since PRESS is only known a window later.
        self.last_press_us = 0

    @property
    def pressed(self):
        """The debounced button level."""
        return self._line.level

    def next_deadline_us(self) -> int | None:
        """The earliest time at which poll() could return something; None if idle."""
        confirm_us = self._line.confirm_at_us()
        if confirm_us is not None:
            return confirm_us
        return self._timer_us()

    def _timer_us(self):
        if self._state == _FIRST_DOWN:
            return self._mark_us + self.hold_us
        if self._state == _WAIT_SECOND:
            return self._mark_us + self.double_press_window_us
        return None

    def _advance(self, t_us, events):
        while True:
            confirm_us = self._line.confirm_at_us()
            if confirm_us is not None:
                # Timers wait while the line is unsettled: the pending edge's own
                # time, once confirmed, decides between e.g. a release and a hold.
                if confirm_us > t_us:
                    return
                edge_us = self._line.commit()
                if self._line.level:
                    self._pressed(edge_us, events)
                else:
                    self._released(edge_us)
                continue
            timer_us = self._timer_us()
            if timer_us is None or timer_us > t_us:
                return
            self._expire(events)

    def _pressed(self, press_us, events):
        self.last_press_us = press_us
        if self._state == _WAIT_SECOND:
            if press_us - self._mark_us < self.double_press_window_us:
                events.append(DOUBLE_PRESS)
                self._state = _CONSUMED
                return
            # Unreachable while timers fire before later edges; kept so the
            # first press is never lost if that ordering ever changes.
            events.append(PRESS)
        self._state = _FIRST_DOWN
        self._mark_us = press_us

    def _released(self, release_us):
        if self._state == _FIRST_DOWN and release_us - self._mark_us < self.max_press_us:
            self._state = _WAIT_SECOND
            self._mark_us = release_us
        else:
            # A long press (nothing), or the end of a hold or consumed press.
            self._state = _IDLE

    def _expire(self, events):
        if self._state == _FIRST_DOWN:
            events.append(HOLD)
            self._state = _HELD
        else:  # _WAIT_SECOND: no second press came
            events.append(PRESS)
            self._state = _IDLE


class TriggerDecoder(_EdgeDecoder):
    """Decodes a trigger line (holster sensor, light bar) into ON and OFF.

    ON/OFF is emitted once the new level has been stable for debounce_us; a
    glitch shorter than that produces nothing. Whether OFF stops an event is
    the input's policy, decided by the firmware (ACT-2). `initial_active` is the
    level at start-up; it produces no event.
    """

    def __init__(self, debounce_us=DEFAULT_TRIGGER_DEBOUNCE_US, initial_active=False):
        self._line = Debouncer(debounce_us, initial_active)
        self._clock = _Monotonic()

    @property
    def active(self):
        """The debounced line level."""
        return self._line.level

    def next_deadline_us(self) -> int | None:
        return self._line.confirm_at_us()

    def _advance(self, t_us, events):
        confirm_us = self._line.confirm_at_us()
        if confirm_us is not None and confirm_us <= t_us:
            self._line.commit()
            events.append(ON if self._line.level else OFF)
