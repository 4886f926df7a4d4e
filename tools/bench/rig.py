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
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable

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
                               f"check the wire from the rig's {line!r} output to the prototype's input")
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
                               f"{'on' if on else 'off'}: check the wire from it to the rig's {indicator} input")


_TEST_PULSE_MS = 30


class Prototype(ABC):
    """A firmware on a board, its pins wired to a rig: what the activation suite drives.

    Built (not booted) by rig_sim.sim_prototype or rig_gpio.loopback_prototype; boot()
    runs the rig's self-test first. Time: `fast_forward_us` lets the prototype's clock
    run as fast as it can (the simulator) or waits (hardware); `start_pacing` + `pace`
    keep it in step with wall time (catch_up before each edge)."""

    rig: Rig
    firmware: object            # device.firmware.Firmware
    storage_dir: str
    custodian_key_path: str     # the custodian's secret key: the bench reads what was recorded
    device_pub_path: str

    def __init__(self) -> None:
        self.packets: list[tuple[int, int]] = []   # (timestamp_us, size_bytes) of every packet captured
        self._packets_lock = threading.Lock()

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

    @abstractmethod
    def boot(self, on_durable: Callable) -> None:
        """Self-test the wires, add the writer's durable listener, boot the firmware."""

    @abstractmethod
    def fast_forward_us(self, duration_us: int) -> None: ...

    @abstractmethod
    def start_pacing(self) -> None: ...

    @abstractmethod
    def catch_up(self) -> None:
        """Bring the prototype's clock to wall time since start_pacing (before an edge, so
        the firmware dates it when the rig made it)."""

    @abstractmethod
    def pace(self) -> None:
        """catch_up, then idle up to ~1 ms."""

    @abstractmethod
    def close(self) -> None:
        """Shut the firmware down and release the rig."""
