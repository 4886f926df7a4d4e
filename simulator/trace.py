"""What a person standing next to the simulated camera saw and heard (SIM-3, `bwc run --trace`).

The simulated parts report their outputs here as they happen: LED changes, vibrations
and tones (simulator/indicators.py), speaker playback (simulator/audio.py), the
recorder's state changes, and the runner's power cuts, restores, boots and world
faults. Each becomes one JSON line (docs/scenarios.md, "Trace"):

    {"t_s": 20.17, "monotonic_us": 21170000, "utc_us": 1767225620170000, "kind": "led",
     "name": "record", "on": true}

`utc_us` is the wall time the device's own clock showed at that moment (after any
clock.jump), so a reader sees what the firmware would have stamped. record() is
called from clock callbacks, the writer thread and the recorder's lock: it only
reads the clock and appends under a lock of its own, and never calls back out.
"""
from __future__ import annotations

import json
import threading
from typing import IO

from hal.clock import Clock

KINDS = ("boot", "power", "state", "led", "vibrate", "tone", "speaker", "input", "world")


class Trace:
    def __init__(self, clock: Clock | None = None) -> None:
        """`clock`: whose time the lines carry; the runner binds its own (use_clock)."""
        self._clock = clock
        self._lock = threading.Lock()
        self._lines: list[tuple[int, int, str, dict]] = []   # (monotonic_us, utc_us, kind, fields)
        self.origin_us: int | None = None   # scenario start; set by the runner once booted

    def use_clock(self, clock: Clock) -> None:
        self._clock = clock

    def record(self, kind: str, monotonic_us: int | None = None, **fields: object) -> dict:
        """Note one output. `monotonic_us`: when it happens, if not now (a sound queued
        behind another starts later); the wall time is then the clock's at that moment.
        Returns the line's fields, which the caller may still complete (a boot's outcome)."""
        now_us = self._clock.monotonic_us()
        utc_us = self._clock.wall_time_us()
        at_us = now_us if monotonic_us is None else monotonic_us
        with self._lock:
            self._lines.append((at_us, utc_us + (at_us - now_us), kind, fields))
        return fields

    def lines(self) -> list[dict]:
        """Every line so far, in time order (ties in the order they were recorded)."""
        with self._lock:
            lines = sorted(self._lines, key=lambda line: line[0])   # stable
        origin_us = self.origin_us if self.origin_us is not None else (lines[0][0] if lines else 0)
        return [{"t_s": round((at_us - origin_us) / 1e6, 6), "monotonic_us": at_us, "utc_us": utc_us,
                 "kind": kind, **fields} for at_us, utc_us, kind, fields in lines]

    def since(self, index: int) -> tuple[list[dict], int]:
        """The lines recorded after the first `index`, in the order they were recorded (a
        live view's feed: a sound queued behind another is recorded before it is heard),
        and the index to ask from next time."""
        with self._lock:
            new, end = self._lines[index:], len(self._lines)
        origin_us = self.origin_us if self.origin_us is not None else 0
        return [{"t_s": round((at_us - origin_us) / 1e6, 6), "monotonic_us": at_us, "utc_us": utc_us,
                 "kind": kind, **fields} for at_us, utc_us, kind, fields in new], end

    def of_kind(self, kind: str) -> list[dict]:
        return [line for line in self.lines() if line["kind"] == kind]

    def write(self, out: IO[str]) -> int:
        """Write the JSON lines; returns how many."""
        lines = self.lines()
        for line in lines:
            out.write(json.dumps(line, separators=(",", ":")) + "\n")
        return len(lines)
