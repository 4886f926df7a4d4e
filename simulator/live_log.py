"""What a live run applied, kept as scenario steps, and written as a scenario file
(docs/sim-live.md, "The saved scenario"): an interactive run becomes a regression test.

Controls arrive as JSON from the page. A step (`POST /api/step`) is checked by the
scenario parser's own step check (simulator/scenario.py), so the page accepts exactly what
a scenario file does, with the same messages. A raw contact of the record button (mouse
down, mouse up) is kept as `button.hold` of the time it was closed: replayed, the firmware
sees the same edges at the same times and decodes the same gestures.
"""
from __future__ import annotations

import datetime as dt
import json
import math

from device.config import ConfigError
from hal.inputs import RECORD_BUTTON
from simulator.scenario import MAX_DURATION_S, MAX_HOLD_S, WORLD_ONLY, Scenario, Step, _check_target, _parse_step

_SOURCE = "step"
_AT_PREFIX = "[[at]] #1: "
MIN_HOLD_S = 1e-6   # a contact opened within the same µs it closed still was a contact


class StepError(ValueError):
    """A step body that is not a valid scenario step: one line, naming the key."""


class UnknownPod(StepError):
    """A pod.* or link.* step naming a pod this run does not have."""


class NotNow(StepError):
    """A valid step that the run's state rules out (a power.restore while powered)."""


def parse_live_step(body: object, t_s: float, pods: tuple[str, ...] = ()) -> Step:
    """The step `body` (a scenario [[at]] table without t_s, as JSON) applied at `t_s`, in
    a run with these `pods`: checked as a scenario file's step would be, target included."""
    if not isinstance(body, dict):
        raise StepError(f"a step is a JSON object with \"do\" and its keys, got {type(body).__name__}")
    if "t_s" in body:
        raise StepError("a live step has no t_s: it applies now")
    action = body.get("do")
    if isinstance(action, str) and action.startswith(WORLD_ONLY):
        raise StepError(f"{action} is for a world of cameras (bwc world), not one simulated camera")
    try:
        step = _parse_step({**body, "t_s": t_s}, 0, MAX_DURATION_S, _SOURCE, "")
        if step.action.startswith(("pod.", "link.")) and step.target not in pods:
            raise UnknownPod(f"{step.action}: no pod {step.target!r} in this run (pods: {', '.join(pods) or 'none'})")
        _check_target(step, 0, pods, (), (), _SOURCE, "")
    except ConfigError as exc:
        raise StepError(str(exc).removeprefix(f"{_SOURCE}: ").removeprefix(_AT_PREFIX)) from None
    return step


class ActionLog:
    """The controls a live run applied, as scenario [[at]] entries."""

    def __init__(self, scenario: Scenario, start_us: int) -> None:
        self._scenario, self._start_us = scenario, start_us
        self._entries: list[dict] = []          # in the order applied (a hold: at its release)
        self._record_down_us: int | None = None
        self._cut_at_s: float | None = None   # power.cut applied, no power.restore since

    def t_s(self, at_us: int) -> float:
        return round((at_us - self._start_us) / 1e6, 6)

    def add(self, step: Step) -> None:
        """Log an applied step; NotNow (nothing logged) for a power step out of sequence,
        which a scenario file refuses too (power.cut only while on, power.restore after one)."""
        if step.action == "power.cut" and self._cut_at_s is not None:
            raise NotNow(f"power.cut: the power is already off (cut at {self._cut_at_s:g} s)")
        if step.action == "power.restore" and self._cut_at_s is None:
            raise NotNow("power.restore: the power is on (a restore follows a power.cut)")
        if step.action in ("power.cut", "power.restore"):
            self._cut_at_s = step.t_s if step.action == "power.cut" else None
        self._entries.append(_entry(step))

    def edge(self, name: str, active: bool, at_us: int) -> None:
        """A raw input edge (the caller has dropped ones that change nothing)."""
        if name != RECORD_BUTTON:
            self._entries.append({"t_s": self.t_s(at_us), "do": "trigger.on" if active else "trigger.off",
                                  "name": name})
        elif active:
            self._record_down_us = at_us
        else:
            self._release(at_us)

    def end(self, end_us: int) -> None:
        """The run ends: a contact still closed opens now (as the scenario's end leaves it)."""
        if self._record_down_us is not None:
            self._release(end_us)

    def _release(self, up_us: int) -> None:
        down_us, self._record_down_us = self._record_down_us, None
        if down_us is None:
            return
        hold_s = min(MAX_HOLD_S, max(MIN_HOLD_S, round((up_us - down_us) / 1e6, 6)))
        self._entries.append({"t_s": self.t_s(down_us), "do": "button.hold", "hold_s": hold_s})

    def entries(self) -> list[dict]:
        """Every entry in time order; same-time entries in the order they were applied."""
        return sorted(self._entries, key=lambda entry: entry["t_s"])

    def entries_since(self, index: int) -> tuple[list[dict], int]:
        """Entries in the order they were applied, after the first `index`."""
        return [dict(e) for e in self._entries[index:]], len(self._entries)

    def to_toml(self, end_us: int) -> str:
        entries = self.entries()
        duration_s = max(0.001, math.ceil((end_us - self._start_us) / 1e3) / 1e3,
                         *(entry["t_s"] for entry in entries))
        video = self._scenario.video
        lines = ["# Recorded by bwc sim: replay with bwc run --hal sim --scenario FILE on a copy of",
                 "# the device directory as it was when the run started (docs/sim-live.md).",
                 f"duration_s = {_value(duration_s)}"]
        if self._scenario.pods:
            lines.append(f"pods = [{', '.join(_value(p) for p in self._scenario.pods)}]")
        lines += ["", "[camera]", f"width = {video.width}", f"height = {video.height}", f"fps = {video.fps}",
                  f"keyframe_interval_s = {_value(video.keyframe_interval_s)}",
                  f"bitrate_bps = {video.bitrate_bps}"]
        if self._scenario.constant_bitrate:
            lines.append("constant_bitrate = true")
        for entry in entries:
            lines += ["", "[[at]]"] + [f"{key} = {_value(value)}" for key, value in entry.items()]
        return "\n".join(lines) + "\n"


def _entry(step: Step) -> dict:
    """A step as its scenario [[at]] table: t_s, do, and the keys its action takes."""
    entry: dict = {"t_s": step.t_s, "do": step.action}
    action = step.action
    if step.target:
        entry["target"] = step.target
    if action in ("button.hold", "pod.hold"):
        entry["hold_s"] = step.hold_s
    elif action.startswith("trigger."):
        entry["name"] = step.name
    elif action == "power.cut":
        entry["mode"] = step.mode
    elif action == "storage.fail":
        entry.update(errno=step.errno, op=step.op)
        entry.update({k: v for k, v in (("after_bytes", step.after_bytes), ("count", step.count)) if v is not None})
    elif action == "storage.fill":
        entry["free_bytes"] = step.free_bytes
    elif action == "battery.set":
        entry["percent"] = step.percent
    elif action == "battery.drain" and step.rate_pct_per_min is not None:
        entry["rate_pct_per_min"] = step.rate_pct_per_min
    elif action == "clock.jump":
        entry["delta_s"] = step.delta_s
    elif action == "clock.set":
        entry["utc"] = _rfc3339(step.utc_us)
    return entry


def _rfc3339(utc_us: int) -> str:
    stamp = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=utc_us)
    return stamp.isoformat().replace("+00:00", "Z")


def _value(value: object) -> str:
    """A TOML value: a JSON string is a TOML basic string; numbers as Python writes them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))
