"""Minutes of recording left, from the battery's measured drain (FLT-3).

A fuel gauge reports a level; what a wearer can act on is time. The drain rate is
measured separately while recording and while buffering (recording costs more: the
writer, the card, the speaker), over a sliding window, and a level that jumps (a
gauge recalibrating, a battery swapped, a scenario's battery.set) starts the
measurement again instead of reading as a sudden drain.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from device.config import Policy

SAMPLE_EVERY_US = 5_000_000
WINDOW_US = 180_000_000
MIN_SPAN_US = 30_000_000       # less than this is too short to call a rate
JUMP_PCT = 2.0                 # a change this big between two samples is not drain
# Until recording has been measured, assume it draws this much more than buffering
# (encoder, card writes and the speaker on top of the camera): an estimate, said so.
RECORDING_LOAD_FACTOR = 1.5


@dataclass(frozen=True)
class Estimate:
    level_pct: float
    drain_pct_per_min: float | None        # in the current state, measured
    recording_minutes_left: float | None   # None until a rate is known
    measured: bool                         # False: recording rate derived from buffering


class BatteryEstimate:
    def __init__(self, policy: Policy) -> None:
        self._policy = policy
        self._samples: dict[bool, deque[tuple[int, float]]] = {True: deque(), False: deque()}
        self._rate: dict[bool, float | None] = {True: None, False: None}
        self._last: tuple[int, float, bool] | None = None

    def update(self, now_us: int, level_pct: float, charging: bool, recording: bool) -> Estimate:
        last = self._last
        if last is None or now_us - last[0] >= SAMPLE_EVERY_US or last[2] != recording:
            self._sample(now_us, level_pct, charging, recording)
        return self.estimate(level_pct, recording)

    def _sample(self, now_us: int, level_pct: float, charging: bool, recording: bool) -> None:
        window = self._samples[recording]
        if charging or (window and abs(window[-1][1] - level_pct) > JUMP_PCT) \
                or (window and level_pct > window[-1][1]) or (self._last and self._last[2] != recording):
            window.clear()   # not a drain to measure: start again from here
        window.append((now_us, level_pct))
        while window and now_us - window[0][0] > WINDOW_US:
            window.popleft()
        first_us, first_pct = window[0]
        if now_us - first_us >= MIN_SPAN_US:
            self._rate[recording] = max(0.0, (first_pct - level_pct) / ((now_us - first_us) / 60e6))
        self._last = (now_us, level_pct, recording)

    def estimate(self, level_pct: float, recording: bool) -> Estimate:
        rate_now = self._rate[recording]
        measured = self._rate[True] is not None
        rec_rate = self._rate[True] if measured else (
            None if self._rate[False] is None else self._rate[False] * RECORDING_LOAD_FACTOR)
        usable_pct = max(0.0, level_pct - self._policy.battery_critical_pct)
        if rec_rate is None:
            minutes = None
        elif rec_rate <= 0:
            minutes = float("inf")
        else:
            minutes = usable_pct / rec_rate
        return Estimate(level_pct, rate_now, minutes, measured)
