"""`bwc run --trace FILE`: one JSON line per thing the simulated world showed or said (SIM-3)."""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.tool

SCENARIO = """duration_s = 6
[policy]
pre_event_s = 1
[[at]]
t_s = 1
do = "button.double_press"
[[at]]
t_s = 2
do = "clock.set"
utc = 2026-03-01T12:00:00Z
[[at]]
t_s = 2.5
do = "button.hold"
hold_s = 3
"""


def test_run_writes_the_trace_in_time_order(bwc, fresh_device, tmp_path):
    scenario = tmp_path / "s.toml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    trace = tmp_path / "trace.jsonl"
    r = bwc("run", "--device", fresh_device.dir, "--hal", "sim", "--scenario", scenario, "--trace", trace)
    assert r.returncode == 0, str(r)
    lines = [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines()]
    assert f"trace: {len(lines)} lines written to {trace}" in r.stdout
    assert [line["monotonic_us"] for line in lines] == sorted(line["monotonic_us"] for line in lines)
    assert all({"t_s", "monotonic_us", "utc_us", "kind"} <= set(line) for line in lines)
    changes = [(line["t_s"], line["to"]) for line in lines if line["kind"] == "state"]
    assert changes == [(1.29, "recording"), (5.5, "buffering"), (6.0, "shutdown")]
    stop = next(line for line in lines if line["kind"] == "vibrate" and line["duration_ms"] == 400)
    assert stop["utc_us"] == 1_772_366_400_000_000 + 3_500_000   # the device's clock, as set at 2 s


def test_run_refuses_a_trace_it_cannot_write_before_running(bwc, fresh_device, tmp_path, tiny_scenario):
    r = bwc("run", "--device", fresh_device.dir, "--hal", "sim", "--scenario", tiny_scenario,
            "--trace", tmp_path / "no" / "such" / "dir" / "t.jsonl")
    assert r.returncode == 2, str(r)
    assert r.stderr.startswith("bwc run: --trace ") and "cannot write" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not fresh_device.storage.exists()


def test_trace_is_refused_on_the_pi(bwc, fresh_device, tmp_path):
    r = bwc("run", "--device", fresh_device.dir, "--hal", "pi", "--trace", tmp_path / "t.jsonl")
    assert r.returncode == 2, str(r)
    assert "--trace is for --hal sim" in r.stderr
