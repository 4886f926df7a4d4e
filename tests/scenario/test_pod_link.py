"""A paired control pod on the simulator (docs/link.md §5, §6): the real pod program and the
real firmware on one virtual clock, over the simulated ether. What the pod's wearer sees, what
the camera's wearer feels, and what the audit log says."""
from __future__ import annotations

import pytest

from device.config import load_identity, load_policy
from device.patterns import recognise
from device.evidence.keys import read_device_public
from device.evidence.storage_verify import verify_storage
from scenario_support import audit_entries, make_custodian, make_device, scenario_toml, trace_pulses
from simulator.runner import run_scenario
from simulator.scenario import parse_scenario

pytestmark = pytest.mark.scenario
S = 1_000_000

STEPS = [
    {"t_s": 2.0, "do": "pod.double_press", "target": "pod-1"},
    {"t_s": 5.0, "do": "pod.press", "target": "pod-1"},                 # a marker
    {"t_s": 7.0, "do": "link.drop", "target": "pod-1"},
    {"t_s": 11.0, "do": "link.restore", "target": "pod-1"},
    {"t_s": 14.0, "do": "pod.hold", "target": "pod-1", "hold_s": 3.5},
]


def with_pods(text: str, pods: list[str]) -> str:
    first, _, rest = text.partition("\n")
    return first + "\npods = [" + ", ".join(f'"{p}"' for p in pods) + "]\n" + rest


def run_with_pod(root, duration_s, steps, fps=10, bitrate_bps=300_000, pre_event_s=1, **policy):
    """The firmware on the simulator with one paired pod, pod-1: (RunResult, Device)."""
    device = make_device(str(root / "device"), make_custodian(str(root / "keys")))
    text = with_pods(scenario_toml(duration_s, steps, width=160, height=90, fps=fps, bitrate_bps=bitrate_bps,
                                   pre_event_s=pre_event_s, announce="suppressed",
                                   announce_suppress_reason="test", **policy), ["pod-1"])
    scenario = parse_scenario(text, "<pod>")
    policy_used = scenario.apply_policy(load_policy(device.directory + "/policy.toml"))
    result = run_scenario(scenario, load_identity(device.directory), policy_used, device.directory,
                          device.storage, trace=True)
    return result, device


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return run_with_pod(tmp_path_factory.mktemp("pod"), 22, STEPS)


def _record_led(lines):
    return [(l["monotonic_us"], l["on"]) for l in lines if l["kind"] == "led" and l["name"] == "record"]


def test_a_pod_double_press_starts_the_camera_with_the_pod_as_source(run):
    result, device = run
    entries = audit_entries(device.storage)
    starts = [e for e in entries if e["type"] == "activation"]
    assert [e["source"] for e in starts] == ["pod:pod-1"]
    assert [e["source"] for e in entries if e["type"] == "marker"] == ["pod:pod-1"]
    stops = [e for e in entries if e["type"] == "deactivation"]
    assert [e["source"] for e in stops] == ["pod:pod-1"]
    # Pressed at 2 s (second press at 2.27 s): the camera started within a few radio hops.
    t0 = result.start_us
    assert 2.27 * S <= starts[0]["monotonic_us"] - t0 <= 2.27 * S + 60_000


def test_the_pod_shows_recording_only_after_media_is_committed(run):
    result, _ = run
    t0 = result.start_us
    led_on = next(t for t, on in _record_led(result.trace.lines()) if on)
    pod = result.pods["pod-1"]
    rec = [t for pattern, t in pod.shown_changes if pattern == "recording"]
    assert rec and rec[0] >= led_on, (rec, led_on)
    assert rec[0] - led_on <= 150_000          # camera commit -> pod LED: one tick and a hop
    shown_before = [p for p, t in pod.shown_changes if t < led_on]
    assert "recording" not in shown_before
    assert shown_before[-1] == "buffering" and t0 < led_on


def test_a_dropped_link_is_shown_on_both_sides_within_2_s_and_the_recording_goes_on(run):
    result, device = run
    t0 = result.start_us
    drop_us, restore_us = t0 + 7 * S, t0 + 11 * S
    pod = result.pods["pod-1"]
    lost = [t for p, t in pod.shown_changes if p == "link_lost" and t > drop_us]
    assert lost and lost[0] - drop_us <= 2 * S
    felt = recognise(trace_pulses(result.trace.lines()))
    pod_lost = [t for t, name in felt if name == "pod_lost"]
    assert len(pod_lost) == 1 and 0 < pod_lost[0] - drop_us <= 2 * S
    entries = audit_entries(device.storage)
    links = [(e["status"], e["monotonic_us"]) for e in entries if e["type"] == "pod_link" and "pod" in e]
    assert [s for s, _ in links] == ["restored", "lost", "restored"]   # up at boot, lost, back
    assert drop_us < links[1][1] <= drop_us + 2 * S and restore_us < links[2][1] <= restore_us + 2 * S
    # The recording did not notice: the record LED stayed lit through the drop.
    assert [on for t, on in _record_led(result.trace.lines()) if drop_us <= t <= restore_us] == []
    back = [t for p, t in pod.shown_changes if p == "recording" and t > restore_us]
    assert back and back[0] - restore_us <= 2 * S


def test_what_was_recorded_verifies(run):
    _, device = run
    report = verify_storage(device.storage, read_device_public(device.pub_path))
    assert report.outcome == "authentic", report.to_json()


def test_the_pod_holds_as_long_as_the_camera(tmp_path):
    """Review finding: the pod decodes a hold with the camera's own hold_stop_s (link.json)."""
    steps = [{"t_s": 0.5, "do": "battery.drain", "rate_pct_per_min": 0.0},
             {"t_s": 2.0, "do": "pod.double_press", "target": "pod-1"},
             {"t_s": 5.0, "do": "pod.hold", "target": "pod-1", "hold_s": 3.5},    # short of 5 s: no stop
             {"t_s": 10.0, "do": "pod.hold", "target": "pod-1", "hold_s": 5.5}]   # a stop
    result, device = run_with_pod(tmp_path, 18, steps, hold_stop_s=5.0)
    entries = audit_entries(device.storage)
    stops = [e for e in entries if e["type"] == "deactivation"]
    assert [e["source"] for e in stops] == ["pod:pod-1"]
    t0 = result.start_us
    # Dated at the press edge, like the camera's own button: the hold began at 10 s.
    assert abs(stops[0]["monotonic_us"] - (t0 + 10 * S)) <= 50_000, stops[0]["monotonic_us"] - t0
    shown = [p for p, _ in result.pods["pod-1"].shown_changes]
    assert "recording" in shown and shown[-1] == "buffering"


@pytest.mark.parametrize("minutes", [float("inf"), float("nan"), -1.0, 1e9])
def test_a_battery_estimate_out_of_range_beacons_as_unknown(run, minutes):
    """Review finding: no measured drain (mains power, a stuck gauge) is infinite minutes,
    which once raised in every beacon and left the pod showing link_lost."""
    result, _ = run
    monitor = result.firmware.monitor
    monitor._battery_minutes = minutes
    assert monitor.pod_status()["battery_min"] is None
    from device.link.frame import Pairing
    from device.link.endpoint import ReservedCounter
    from device.link.roles import CameraRole

    class Store:
        value = None
        def read(self): return self.value
        def write(self, v): self.value = v
    role = CameraRole(Pairing("pod-1", bytes(32)), ReservedCounter(Store()))
    role.address = "pod"
    assert role.beacon(dict(monitor.pod_status(), battery_min=minutes), 0) is not None


def test_a_jammer_flapping_the_link_neither_fills_the_log_nor_keeps_buzzing(tmp_path):
    """Review finding: link changes are at most 10 audit entries a minute (the rest counted in
    the next), and the wearer is buzzed at most every 30 s."""
    steps = []
    for i in range(30):   # 2 s off the air, 2 s on, for two minutes
        steps.append({"t_s": 2.0 + 4 * i, "do": "link.drop", "target": "pod-1"})
        steps.append({"t_s": 4.0 + 4 * i, "do": "link.restore", "target": "pod-1"})
    result, device = run_with_pod(tmp_path, 124, steps, fps=5, bitrate_bps=100_000, pre_event_s=0)
    links = [e for e in audit_entries(device.storage) if e["type"] == "pod_link" and "pod" in e]
    per_minute = {}
    for e in links:
        minute = (e["monotonic_us"] - result.start_us) // (60 * S)
        per_minute[minute] = per_minute.get(minute, 0) + 1
    assert max(per_minute.values()) <= 10 and len(links) < 60
    assert any(e.get("changes_not_logged") for e in links)
    felt = [t for t, name in recognise(trace_pulses(result.trace.lines())) if name == "pod_lost"]
    assert 2 <= len(felt) <= 5 and all(b - a >= 30 * S for a, b in zip(felt, felt[1:]))
