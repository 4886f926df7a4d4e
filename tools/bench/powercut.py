"""The power-cut harness (issue 5, SEG-4, AUD-2), shared by tests/scenario/test_power_cut_harness.py
and the `powercut` bench suite: a real `bwc run --realtime` process is killed with SIGKILL
at random instants — during boot, before an activation, at the first header, mid-segment,
at a rollover, during the stop — then the device boots again and records again. After
every kill the card must verify as authentic (0) or cut short (3), never as tampered; every
intact event must export; and the media lost per kill is measured (the promise: at most one
flush interval plus 100 ms).

The kill instant is taken on the host's CLOCK_MONOTONIC, the clock the device's real-time
clock reads, so media lost is measured on one time base. Nothing here asserts: the result
lists every broken promise (`violations`) and every kill over the bound (`worst`), and the
test and the suite judge them.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import av

from device.config import load_identity, load_policy
from device.evidence.keys import read_custodian_secret, read_device_public
from device.evidence.storage_verify import verify_storage
from simulator.runner import run_scenario
from simulator.scenario import parse_scenario
from tools.export import export_events, export_storage
from tools.provision import keygen, provision

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLUSH_S = 1.0
BOUND_US = round((FLUSH_S + 0.1) * 1e6)
# 3.6 s of real time: double press at 0.3 s, a 1.1 s hold from 1.9 s stops at about
# 2.9 s; 1 s segments, so the event rolls over twice. Kills fall in 0 … 4.5 s after the
# process starts: interpreter start-up and boot take most of the first second.
SHIFT = """\
duration_s = 3.6

[camera]
fps = 10
keyframe_interval_s = 0.5
width = 320
height = 180
bitrate_bps = 600000

[policy]
pre_event_s = 0.5
segment_s = 1
hold_stop_s = 1

[[at]]
t_s = 0.3
do = "button.double_press"

[[at]]
t_s = 1.9
do = "button.hold"
hold_s = 1.1
"""
KILL_WINDOW_S = 4.5


@dataclass
class Kill:
    at_s: float              # after the process was started
    monotonic_us: int        # host CLOCK_MONOTONIC at the kill
    started_us: int          # host CLOCK_MONOTONIC when the process was started
    exit_code: int | None    # None: killed; else the run ended first


@dataclass
class HarnessResult:
    kills: int
    outcomes: Counter = field(default_factory=Counter)   # verify outcome after each kill
    lost_us: list[int] = field(default_factory=list)     # per kill while an event was recording
    worst: list[tuple[int, float, int]] = field(default_factory=list)   # (kill, s after start, µs lost) > bound
    violations: list[str] = field(default_factory=list)  # promises broken (must stay empty)
    recoveries: int = 0

    def summary(self) -> str:
        lost = sorted(self.lost_us)
        return (f"{self.kills} kills, outcomes {dict(self.outcomes)}, {self.recoveries} recovery entries, "
                f"media lost per kill while recording (n={len(lost)}): min {min(lost, default=0) / 1e3:.0f} ms, "
                f"median {lost[len(lost) // 2] / 1e3 if lost else 0:.0f} ms, max {max(lost, default=0) / 1e3:.0f} ms")


def audit_entries(storage: str) -> list[dict]:
    """Every whole audit entry in the storage, by entry number, each once (a torn last line skipped)."""
    entries: dict[int, dict] = {}
    names = sorted(n for n in os.listdir(storage) if n == "audit.log" or (n.startswith("audit-") and n.endswith(".log")))
    for name in names:
        with open(os.path.join(storage, name), "rb") as f:
            for line in f.read().split(b"\n"):
                try:
                    entry = json.loads(line.rpartition(b" ")[0])
                except ValueError:
                    continue
                entries[entry["n"]] = entry
    return [entries[n] for n in sorted(entries)]


def run_and_kill(device_dir: str, scenario: str, after_s: float) -> Kill:
    env = dict(os.environ, PYTHONPATH=_REPO)
    proc = subprocess.Popen([sys.executable, "-m", "tools.cli", "run", "--device", device_dir, "--hal", "sim",
                             "--realtime", "--scenario", scenario],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    started = time.monotonic()
    started_us = time.monotonic_ns() // 1000
    try:
        proc.wait(timeout=after_s)
        return Kill(after_s, time.monotonic_ns() // 1000, started_us, proc.returncode)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        at_us = time.monotonic_ns() // 1000
        proc.wait(timeout=30)
        return Kill(time.monotonic() - started, at_us, started_us, None)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def last_frame_end_us(mp4_path: str) -> int | None:
    """Media time (µs after the event origin) at which the exported video ends."""
    with av.open(mp4_path) as container:
        stream = container.streams.video[0]
        ends = [round((p.pts + (p.duration or 0)) * stream.time_base * 1e6)
                for p in container.demux(stream) if p.size and p.pts is not None]
    return max(ends, default=None)


def media_lost_us(storage: str, secret, device_key, kill: Kill, out_dir: str) -> int | None:
    """For a kill while an event was recording: capture time at the kill minus the end
    of the durable media. None if no event was recording."""
    entries = audit_entries(storage)
    started = {e["event_id"]: e for e in entries if e["type"] == "activation"}
    stopped = {e["event_id"] for e in entries if e["type"] == "deactivation"}
    open_events = [e for e in started if e not in stopped]
    recovered = {e.get("event_id") for e in entries if e["type"] in ("recovery", "fault")}
    # Only an event this run started: one a kill cut in an earlier run, and that this
    # run was killed before it could name in a recovery entry, was measured then.
    open_events = [e for e in open_events if e not in recovered
                   and started[e]["monotonic_us"] >= kill.started_us]
    if not open_events:
        return None
    _, exported = export_storage(storage, secret, device_key, out_dir, True)
    (event,) = [ev for ev in exported if ev.event_id == open_events[-1]] or [None]
    if event is None:
        return None
    with open(event.sidecar_path, encoding="utf-8") as f:
        sidecar = json.load(f)
    end_us = last_frame_end_us(event.mp4_path)
    if end_us is None:
        return kill.monotonic_us - sidecar["activation"]["activation_monotonic_us"]
    return kill.monotonic_us - (sidecar["origin_monotonic_us"] + end_us)


def _record_in_process(device_dir: str, storage: str, text: str) -> str | None:
    """One more boot and event on the virtual clock; the firmware's failure, if any."""
    scenario = parse_scenario(text, "<power-cut harness>")
    policy = scenario.apply_policy(load_policy(os.path.join(device_dir, "policy.toml")))
    result = run_scenario(scenario, load_identity(device_dir), policy, device_dir, storage)
    failure = result.firmware.failure
    return None if failure is None else repr(failure)


def run_harness(work_dir: str, n: int, seed: int, progress=None) -> HarnessResult:
    """`n` kills at seeded random instants on one device, then a last boot and event."""
    secret_path, custodian_pub = keygen(os.path.join(work_dir, "custodian"))
    device_dir = os.path.join(work_dir, "device")
    device_pub = provision("harness-cam", [custodian_pub], device_dir)
    storage = os.path.join(device_dir, "storage")
    scenario = os.path.join(work_dir, "shift.toml")
    with open(scenario, "w", encoding="utf-8") as f:
        f.write(SHIFT)
    secret = read_custodian_secret(secret_path)
    device_key = read_device_public(device_pub)
    rng = random.Random(seed)
    result = HarnessResult(n)
    for i in range(n):
        kill = run_and_kill(device_dir, scenario, rng.uniform(0.0, KILL_WINDOW_S))
        if kill.exit_code not in (None, 0):
            result.violations.append(f"run {i} ended with exit {kill.exit_code}")
        if not os.path.isdir(storage) or not os.listdir(storage):
            result.outcomes["nothing on the card yet"] += 1     # killed before the first boot wrote anything
            continue
        report = verify_storage(storage, device_key)
        result.outcomes[report.outcome] += 1
        if report.outcome not in ("authentic", "truncated"):
            result.violations.append(f"kill {i} at {kill.at_s:.3f} s: verify says {report.outcome}: "
                                     f"{json.dumps(report.to_json())[:300]}")
        lost = media_lost_us(storage, secret, device_key, kill, os.path.join(work_dir, f"export-{i}"))
        if lost is not None:
            result.lost_us.append(lost)
            if lost > BOUND_US:
                result.worst.append((i, round(kill.at_s, 3), lost))
        if progress is not None:
            progress(i, kill, report.outcome, lost)
    # The last boot after the last kill, and one more event, recorded on the virtual clock.
    failure = _record_in_process(device_dir, storage, SHIFT)
    if failure:
        result.violations.append(f"the last boot failed: {failure}")
    report = verify_storage(storage, device_key)
    if report.outcome not in ("authentic", "truncated") or report.problems:
        result.violations.append(f"after the last boot: {report.outcome}, problems {report.problems}")
    exported = export_events(storage, secret, device_key, os.path.join(work_dir, "export-all"), True)
    cut_short = {file for file, _ in report.cut_short}
    for event in exported.not_exported:
        # A cut after an event's first records but before its first media was durable leaves
        # an event with nothing to play: said so ("empty"), and explained as a power loss.
        if event.refusal.code != "empty" or not all(seg.name in cut_short for seg in event.segments):
            result.violations.append(f"event {event.event_id} does not export: {event.refusal}")
    named = {ev.event_id for ev in exported.exported} | {e.event_id for e in exported.not_exported}
    if named != set(report.events()):
        result.violations.append("an intact event neither exports nor is named")
    result.recoveries = sum(1 for e in audit_entries(storage) if e["type"] == "recovery")
    return result
