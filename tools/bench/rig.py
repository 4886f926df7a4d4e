"""The bench rig: drives a prototype's inputs and watches its indicators (docs/bench-rig.md).

The harness presses the record button (or pulls a trigger line) through the rig and reads
the LEDs and the vibration motor through it, so an edge -> indicator latency is measured
on the wire, not reported by the firmware under test.

Two implementations: tools/bench/rig_sim.py (the simulator's board: simulated inputs,
watched simulated indicators) and tools/bench/rig_gpio.py (gpiozero: an output per driven
line, an input per indicator, jumper-wired to the prototype's pins).

Every Edge and Change carries two times:
- `t_ns`: the rig's own time base, which `Rig.time_base` names (the simulator's clock, or
  CLOCK_MONOTONIC on hardware);
- `wall_ns`: real elapsed time in the base of `Rig.wall_ns()`, which is what latencies are
  measured in (on hardware the two are the same clock).
"""
from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable

from hal.board import Board
from hal.clock import Clock
from hal.indicators import LED_RECORD, LED_STATUS, Indicators
from hal.inputs import Inputs

# The indicators a rig watches (the buzzer and the pod's LED are not needed).
RECORD_LED = "record_led"
STATUS_LED = "status_led"
VIBRATION = "vibration"
INDICATORS = (RECORD_LED, STATUS_LED, VIBRATION)


class RigError(Exception):
    """The rig cannot do what was asked (a missing wire, an unknown line): one line."""


@dataclass(frozen=True)
class Edge:
    """A level the rig put on a line: `active` is the prototype's sense (pressed)."""
    line: str
    active: bool
    t_ns: int
    wall_ns: int


@dataclass(frozen=True)
class Change:
    """An indicator the rig saw change: `on` is lit / running."""
    indicator: str
    on: bool
    t_ns: int
    wall_ns: int


class Rig(ABC):
    """Drive lines, record indicator changes. Thread-safe: changes arrive on whatever thread
    the wire reports on (the writer's, gpiozero's callback thread)."""

    time_base = ""   # what t_ns counts, in words
    wall_base = ""   # what wall_ns counts

    def __init__(self, lines: tuple[str, ...]) -> None:
        self.lines = tuple(lines)
        self._lock = threading.Lock()
        self._changes: list[Change] = []
        self._levels = {name: False for name in INDICATORS}

    # -- driving ---------------------------------------------------------------------
    def press(self, line: str) -> Edge:
        """Make `line` active (the button pressed, the trigger pulled)."""
        return self._drive(self._check_line(line), True)

    def release(self, line: str) -> Edge:
        return self._drive(self._check_line(line), False)

    @abstractmethod
    def _drive(self, line: str, active: bool) -> Edge: ...

    @abstractmethod
    def wall_ns(self) -> int:
        """Now, in the base of every `wall_ns` this rig reports (for other listeners' stamps)."""

    def close(self) -> None:
        """Release what the rig holds (pins); a no-op where it holds nothing."""

    def wire(self, name: str) -> str:
        """Where the wire of a line or indicator runs, for a message that names it."""
        if name in self.lines:
            return f"the rig's {name!r} output to the prototype's {name!r} input"
        return f"the prototype's {name} to the rig's {name} input"

    # -- watching --------------------------------------------------------------------
    def changes(self, since_wall_ns: int = 0, indicator: str | None = None) -> list[Change]:
        """Every change recorded at or after `since_wall_ns`, oldest first."""
        with self._lock:
            return [c for c in self._changes if c.wall_ns >= since_wall_ns
                    and (indicator is None or c.indicator == indicator)]

    def first_change(self, since_wall_ns: int, indicator: str | None = None,
                     on: bool | None = None) -> Change | None:
        for change in self.changes(since_wall_ns, indicator):
            if on is None or change.on == on:
                return change
        return None

    def level(self, indicator: str) -> bool:
        with self._lock:
            return self._levels[indicator]

    def _record(self, indicator: str, on: bool, t_ns: int, wall_ns: int) -> None:
        """Called by the implementation on each level the wire reports; repeats are no change."""
        with self._lock:
            if self._levels[indicator] == on:
                return
            self._levels[indicator] = on
            self._changes.append(Change(indicator, on, t_ns, wall_ns))

    def _check_line(self, line: str) -> str:
        if line not in self.lines:
            raise RigError(f"the rig drives no line {line!r} (it drives {', '.join(self.lines)})")
        return line


# The prototype's side of each watched indicator: what the self-test makes it show.
_SHOW: dict[str, Callable[[Indicators, bool], None]] = {
    RECORD_LED: lambda ind, on: ind.set_led(LED_RECORD, on),
    STATUS_LED: lambda ind, on: ind.set_led(LED_STATUS, on),
}


def self_test(rig: Rig, inputs: Inputs, indicators: Indicators,
              deliver: Callable[[], None] = lambda: None,
              let_pass_us: Callable[[int], None] = lambda us: None) -> None:
    """Check every wire before the firmware boots, or raise RigError naming the first bad one.

    Each driven line is toggled and the prototype's `inputs` must follow; each watched
    indicator is switched on and off through the prototype's `indicators` and the rig must
    see both levels. `deliver()` lets a wire report (nothing on the simulator or mock pins;
    a few ms for gpiozero's callback thread on a Pi); `let_pass_us(us)` lets the prototype's
    clock run, which is what ends a vibration pulse."""
    for line in rig.lines:
        for active in (True, False):
            rig._drive(line, active)
            deliver()
            if inputs.is_active(line) != active:
                state = "pressed" if active else "released"
                raise RigError(f"rig self-test: the prototype does not see {line!r} {state}: "
                               f"check the wire from {rig.wire(line)}")
    for indicator in INDICATORS:
        for on in (True, False):
            if indicator != VIBRATION:
                _SHOW[indicator](indicators, on)
            elif on:
                indicators.vibrate(_TEST_PULSE_MS)
            else:
                let_pass_us(2 * _TEST_PULSE_MS * 1000)
            deliver()
            if rig.level(indicator) != on:
                raise RigError(f"rig self-test: the rig does not see the prototype's {indicator} "
                               f"{'on' if on else 'off'}: check the wire from {rig.wire(indicator)}")


_TEST_PULSE_MS = 30


class Prototype(ABC):
    """A firmware on a board, its pins wired to a rig: what the activation suite drives.

    Built (not booted) by rig_sim.sim_prototype or rig_gpio.loopback_prototype; boot()
    runs the rig's self-test first. Time, on the prototype's clock (`clock`):
    `fast_forward_us` runs a virtual clock as fast as it can, and waits on a real one;
    `start_pacing`, `catch_up` and `pace` keep a virtual clock in step with the rig's wall
    time (a real one is in step already; a thread of ours runs its timers)."""

    rig: Rig
    clock: Clock
    board: Board
    firmware: object            # device.firmware.Firmware
    storage_dir: str
    custodian_key_path: str     # the custodian's secret key: the bench reads what was recorded
    device_pub_path: str

    def __init__(self) -> None:
        self.packets: list[tuple[int, int]] = []   # (timestamp_us, size_bytes) of every packet captured
        self._packets_lock = threading.Lock()
        self._anchor = (0, 0)
        self._clock_thread: threading.Thread | None = None
        self._closing = threading.Event()

    # -- media ------------------------------------------------------------------------
    def tap(self, sink: Callable) -> Callable:
        """Wrap a camera's or microphone's sink: the bench learns each packet's size."""
        def tapped(packet) -> None:
            with self._packets_lock:
                self.packets.append((packet.timestamp_us, len(packet.data)))
            sink(packet)
        return tapped

    def bytes_between(self, start_us: int, end_us: int) -> int:
        """Bytes of the packets captured at start_us <= t < end_us (what a pre-event held)."""
        with self._packets_lock:
            return sum(size for t, size in self.packets if start_us <= t < end_us)

    # -- life -------------------------------------------------------------------------
    def deliver(self) -> None:
        """Let a wire report a level (gpiozero's callback thread on a Pi): nothing by default."""

    def boot(self, on_durable: Callable) -> None:
        """Self-test the wires, boot the firmware, add the writer's durable listener."""
        if not getattr(self.clock, "virtual", False):
            self._clock_thread = threading.Thread(target=self._run_clock, name="bench-clock", daemon=True)
            self._clock_thread.start()
        self_test(self.rig, self.board.inputs, self.board.indicators, self.deliver, self.fast_forward_us)
        self.firmware.boot()
        # After boot() rather than before the writer's start (Firmware builds and starts its
        # writer inside boot): equivalent, since marks come only from an open event and
        # none opens before the rig's first press.
        self.firmware.writer.add_durable_listener(on_durable)

    def close(self) -> None:
        """Shut the firmware down (if it booted) and release the rig."""
        try:
            if self.firmware.writer is not None:
                self.firmware.shutdown()
        finally:
            self._closing.set()
            if self._clock_thread is not None:
                self._clock_thread.join(5)
            self.rig.close()

    def _run_clock(self) -> None:
        # A real clock's timers run in whoever waits on it (hal/realclock.py): on the device
        # that is `bwc run`'s main loop; here, this thread.
        while not self._closing.is_set():
            self.clock.wait_until(self.clock.monotonic_us() + 50_000)

    # -- time -------------------------------------------------------------------------
    def fast_forward_us(self, duration_us: int) -> None:
        if getattr(self.clock, "virtual", False):
            self.clock.wait_until(self.clock.monotonic_us() + duration_us)
        else:
            time.sleep(duration_us / 1e6)

    def start_pacing(self) -> None:
        self._anchor = (self.clock.monotonic_us(), self.rig.wall_ns())

    def catch_up(self) -> None:
        """Bring a virtual clock to the wall time since start_pacing (before an edge, so the
        firmware dates it when the rig made it)."""
        if getattr(self.clock, "virtual", False):
            virtual0_us, wall0_ns = self._anchor
            self.clock.wait_until(virtual0_us + (self.rig.wall_ns() - wall0_ns) // 1000)

    def pace(self) -> None:
        """catch_up, then idle towards the next timer (frames every 33 ms, audio every 21 ms),
        at most 1 ms, so the loop does not spin a core the writer needs."""
        self.catch_up()
        idle_s = 0.001
        if getattr(self.clock, "virtual", False):
            virtual0_us, wall0_ns = self._anchor
            now_us = virtual0_us + (self.rig.wall_ns() - wall0_ns) // 1000
            next_us = self.clock.next_deadline_us()
            if next_us is not None:
                idle_s = min(idle_s, max(0, next_us - now_us) / 1e6)
        if idle_s > 0:
            time.sleep(idle_s)


class TappedPart:
    """A camera or microphone whose packets the prototype counts on their way to the sink."""

    def __init__(self, part, proto: Prototype) -> None:
        self._part, self._proto = part, proto

    def start(self, sink) -> None:
        self._part.start(self._proto.tap(sink))

    def __getattr__(self, name):
        return getattr(self._part, name)
