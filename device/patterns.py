"""Every signal the camera gives its wearer, in one table (IND-4, docs/indicators.md).

A pattern is a short score of vibration pulses and buzzer tones. Patterns differ in
what a wearer can tell apart without looking: how many pulses, tone or no tone, high
or low, rising or falling, short or long. `check_table()` proves at import that no
two patterns share a score, and `recognise()` reads a pattern back from what the
indicators did, so tests can say "the wearer felt camera_lost at t".

The player serialises patterns: one that is asked for while another plays starts
after it (and a short gap), so two signals never blur into one nobody can read.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

from hal.clock import Clock
from hal.indicators import Indicators

# Silence between two queued patterns, so each is felt as one.
GAP_MS = 250


@dataclass(frozen=True)
class Pulse:
    at_ms: int          # after the pattern starts
    kind: str           # "vibrate" | "tone"
    duration_ms: int
    frequency_hz: int = 0   # tones only


def _v(at_ms: int, duration_ms: int) -> Pulse:
    return Pulse(at_ms, "vibrate", duration_ms)


def _t(at_ms: int, frequency_hz: int, duration_ms: int) -> Pulse:
    return Pulse(at_ms, "tone", duration_ms, frequency_hz)


# name -> (pulses, what it tells the wearer). The first three predate the table and
# keep their scores: wearers trained on firmware 0.2 know them.
PATTERNS: dict[str, tuple[tuple[Pulse, ...], str]] = {
    "start": ((_v(0, 200), _t(0, 2000, 150)),
              "an event started: media is being written"),
    "stop": ((_v(0, 400),),
             "the event you stopped has ended; back to buffering"),
    "marker": ((_v(0, 100),),
               "a marker was placed"),
    "announcement": ((_v(0, 80), _v(200, 80)),
                     "the recording notice is playing on the speaker"),
    "reminder": ((_t(0, 1500, 80), _v(0, 80)),
                 "still recording (every reminder_interval_s)"),
    "status_recording": ((_t(0, 2000, 100), _t(200, 2000, 100)),
                         "status: recording, media committed within the last second"),
    "status_buffering": ((_t(0, 800, 250),),
                         "status: buffering, nothing is being written"),
    "status_fault": ((_t(0, 400, 150), _t(250, 400, 150), _t(500, 400, 150)),
                     "status: a fault is active (camera, microphone, storage, clock)"),
    "stop_pending": ((_t(0, 1000, 150), _v(0, 150), _t(300, 1000, 150), _v(300, 150)),
                     "stop asked: press to confirm (count picks the reason)"),
    "stop_counted": ((_t(0, 1200, 40),),
                     "a confirming press was counted"),
    "stop_cancelled": ((_t(0, 1500, 120), _t(170, 1000, 120)),
                       "no confirmation: the recording goes on"),
    "battery_low": ((_v(0, 150), _v(300, 150), _v(600, 150), _t(0, 600, 150), _t(300, 600, 150),
                     _t(600, 600, 150)),
                    "battery: about battery_warn_min minutes of recording left"),
    "battery_critical": ((_v(0, 1000), _t(0, 300, 1000)),
                         "battery critical: closing the recording and shutting down"),
    "storage_low": ((_v(0, 300), _v(500, 300), _t(0, 1000, 100)),
                    "storage: about storage_warn_min minutes of recording left"),
    "storage_full": ((_v(0, 1500), _t(0, 400, 300), _t(500, 400, 300), _t(1000, 400, 300)),
                     "storage full: the recording was closed cleanly"),
    "camera_lost": ((_v(0, 100), _v(200, 100), _v(400, 100), _v(600, 100), _t(0, 3000, 500)),
                    "camera lost: no picture (audio goes on); reconnecting"),
    "camera_back": ((_t(0, 1000, 100), _t(150, 2000, 100)),
                    "camera back: picture again"),
    "mic_lost": ((_v(0, 100), _v(200, 100), _t(0, 2500, 300)),
                 "microphone lost: no sound (video goes on); reopening"),
    "mic_back": ((_t(0, 1200, 100), _t(150, 2400, 100)),
                 "microphone back: sound again"),
    "clock_unset": ((_t(0, 1200, 50), _t(100, 1200, 50), _t(200, 1200, 50), _t(300, 1200, 50)),
                    "the wall clock is unset: footage is ordered, but its dates are unknown"),
    "pod_lost": ((_v(0, 250), _v(400, 250), _t(0, 700, 250), _t(400, 500, 250)),
                 "the control pod's link dropped: use the camera's own button (recording goes on)"),
    "fault": ((_v(0, 1500), _t(0, 400, 1500)),
              "fault: recording stopped or stalled (storage, writer)"),
}


class PatternTableError(ValueError):
    """Two patterns share a score, or a pattern is malformed."""


def score(name: str) -> tuple[tuple[int, str, int, int], ...]:
    """A pattern's pulses, sorted, as plain tuples (what a wearer could feel and hear)."""
    return tuple(sorted((p.at_ms, p.kind, p.duration_ms, p.frequency_hz) for p in PATTERNS[name][0]))


def duration_ms(name: str) -> int:
    return max(p.at_ms + p.duration_ms for p in PATTERNS[name][0])


def check_table() -> None:
    seen: dict[tuple, str] = {}
    for name, (pulses, meaning) in PATTERNS.items():
        if not pulses or not meaning:
            raise PatternTableError(f"pattern {name!r} is empty or unexplained")
        for p in pulses:
            if p.kind not in ("vibrate", "tone") or p.at_ms < 0 or p.duration_ms <= 0 \
                    or (p.kind == "tone") != (p.frequency_hz > 0):
                raise PatternTableError(f"pattern {name!r} has a malformed pulse {p}")
        key = score(name)
        if key in seen:
            raise PatternTableError(f"patterns {seen[key]!r} and {name!r} feel the same")
        seen[key] = name


def recognise(pulses: list[tuple[int, str, int, int]]) -> list[tuple[int, str]]:
    """Read patterns back from indicator events (monotonic_us, kind, duration_ms,
    frequency_hz), kind "vibrate" or "tone": [(start_us, name)], greedily, in time order.
    Pulses that belong to no pattern are skipped."""
    events = sorted(pulses)
    by_first: dict[tuple[str, int, int], list[str]] = {}
    for name in PATTERNS:
        first = score(name)[0]
        by_first.setdefault(first[1:], []).append(name)
    found: list[tuple[int, str]] = []
    used: set[int] = set()
    for i, (start_us, kind, dur, freq) in enumerate(events):
        if i in used:
            continue
        # Longest pattern first: "start" must not be read as two shorter ones.
        for name in sorted(by_first.get((kind, dur, freq), ()), key=lambda n: -len(PATTERNS[n][0])):
            want = score(name)
            picked: list[int] = []
            for at_ms, k, d, f in want:
                target = start_us + at_ms * 1000
                j = next((j for j in range(i, len(events)) if j not in used and j not in picked
                          and events[j][0] == target and events[j][1:] == (k, d, f)), None)
                if j is None:
                    break
                picked.append(j)
            else:
                used.update(picked)
                found.append((start_us, name))
                break
    return found


def felt(history: list[tuple[int, str, tuple]]) -> list[tuple[int, str]]:
    """recognise() over an indicator history of (monotonic_us, "vibrate" | "beep" | "led",
    args), as simulator/indicators.py keeps it."""
    pulses = [(t, "vibrate", args[0], 0) if kind == "vibrate" else (t, "tone", args[1], args[0])
              for t, kind, args in history if kind in ("vibrate", "beep")]
    return recognise(pulses)


class PatternPlayer:
    """Plays patterns on the indicators through clock timers; never blocks."""

    def __init__(self, clock: Clock, indicators: Indicators) -> None:
        self._clock, self._indicators = clock, indicators
        self._lock = threading.Lock()
        self._busy_until_us = 0
        self._timers: list = []
        self.played: list[tuple[int, str]] = []   # (start_us, name), for tests and status

    def play(self, name: str) -> int:
        """Queue pattern `name`; returns when it starts (monotonic µs)."""
        pulses = PATTERNS[name][0]
        with self._lock:
            now_us = self._clock.monotonic_us()
            start_us = now_us if now_us >= self._busy_until_us else self._busy_until_us + GAP_MS * 1000
            self._busy_until_us = start_us + duration_ms(name) * 1000
            self.played.append((start_us, name))
            self._timers = [t for t in self._timers if not getattr(t, "cancelled", False)]
            for pulse in pulses:
                at_us = start_us + pulse.at_ms * 1000
                if at_us <= now_us:
                    self._emit(pulse)
                else:
                    self._timers.append(self._clock.call_at(at_us, lambda p=pulse: self._emit(p)))
        return start_us

    def cancel(self) -> None:
        """Silence what is queued (shutdown)."""
        with self._lock:
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()

    def _emit(self, pulse: Pulse) -> None:
        if pulse.kind == "vibrate":
            self._indicators.vibrate(pulse.duration_ms)
        else:
            self._indicators.beep(pulse.frequency_hz, pulse.duration_ms)


check_table()
