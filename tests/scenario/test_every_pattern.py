"""Every pattern of the indicator table (IND-4, docs/indicators.md) is produced by the
firmware in one scripted shift, written in the scenario language, and read back from the
trace as a person next to the camera would feel and hear it. The table itself proves the
patterns distinct (device/patterns.check_table); here each one is also recognised
unambiguously among all the others in a real run."""
from __future__ import annotations

import pytest

from device.config import load_identity, load_policy
from device.evidence.keys import read_device_public
from device.evidence.storage_verify import verify_storage
from device.patterns import PATTERNS, check_table, recognise, score
from scenario_support import make_custodian, make_device, scenario_toml, trace_pulses
from simulator.runner import run_scenario
from simulator.scenario import parse_scenario

pytestmark = pytest.mark.scenario

SHIFT = [
    {"t_s": 0.5, "do": "button.press"},                                  # status_buffering
    {"t_s": 1.5, "do": "clock.set", "utc": "2000-01-01T00:00:00Z"},     # clock_unset
    {"t_s": 2.5, "do": "clock.set", "utc": "2026-06-01T08:00:00Z"},
    {"t_s": 3.0, "do": "button.double_press"},                           # start, announcement
    {"t_s": 9.0, "do": "button.press"},                                  # marker, status_recording
    {"t_s": 10.5, "do": "link.drop", "target": "pod-1"},                 # pod_lost
    # reminder 10 s after the activation
    {"t_s": 15.0, "do": "camera.disconnect"},                            # camera_lost
    {"t_s": 16.0, "do": "button.press"},                                 # status_fault
    {"t_s": 18.0, "do": "camera.reconnect"},                             # camera_back
    {"t_s": 20.0, "do": "mic.fail"},                                     # mic_lost
    {"t_s": 21.0, "do": "mic.heal"},                                     # mic_back (reopened)
    {"t_s": 24.0, "do": "button.hold", "hold_s": 3.0},                   # stop_pending
    # nobody confirms                                                      stop_cancelled
    {"t_s": 32.0, "do": "button.hold", "hold_s": 3.0},
    {"t_s": 36.0, "do": "button.press"},                                 # stop_counted, then stop
    {"t_s": 40.0, "do": "storage.fill", "free_bytes": 5_000_000},         # storage_low
    {"t_s": 52.0, "do": "button.double_press"},
    {"t_s": 56.0, "do": "storage.fill", "free_bytes": 300_000},           # storage_full
    {"t_s": 58.0, "do": "storage.heal"},
    {"t_s": 60.0, "do": "button.double_press"},
    {"t_s": 64.0, "do": "storage.fail", "errno": "EIO", "op": "write"},   # fault
    {"t_s": 66.0, "do": "storage.heal"},
    {"t_s": 68.0, "do": "button.double_press"},
    {"t_s": 70.0, "do": "battery.set", "percent": 10},                   # battery_low
    {"t_s": 70.0, "do": "battery.drain", "rate_pct_per_min": 3.0},        # battery_critical
]


@pytest.fixture(scope="module")
def shift(tmp_path_factory):
    root = tmp_path_factory.mktemp("shift")
    custodian = make_custodian(str(root / "keys"))
    device = make_device(str(root / "device"), custodian)
    text = scenario_toml(240, SHIFT, width=160, height=90, fps=10, bitrate_bps=300_000,
                         pre_event_s=1, segment_s=20, reminder_interval_s=10,
                         stop_confirm=True, stop_confirm_s=3)
    first, _, rest = text.partition("\n")
    text = first + '\npods = ["pod-1"]\n' + rest   # a paired control pod, for pod_lost
    scenario = parse_scenario(text, "<every pattern>")
    policy = scenario.apply_policy(load_policy(device.directory + "/policy.toml"))
    result = run_scenario(scenario, load_identity(device.directory), policy, device.directory,
                          device.storage, trace=True)
    pulses = trace_pulses(result.trace.lines())
    felt = recognise(pulses)
    return result, pulses, felt, device


def test_the_table_is_distinct():
    check_table()
    assert len({score(name) for name in PATTERNS}) == len(PATTERNS)


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_the_firmware_produces_every_pattern(shift, name):
    _, _, felt, _ = shift
    assert name in [n for _, n in felt], sorted({n for _, n in felt})


def test_every_pulse_the_wearer_felt_belongs_to_a_pattern(shift):
    _, pulses, felt, _ = shift
    explained = sum(len(PATTERNS[name][0]) for _, name in felt)
    assert explained == len(pulses)


def test_the_shift_ends_with_a_clean_battery_shutdown_and_verifies(shift):
    result, _, felt, device = shift
    assert result.firmware.shutdown_source == "battery_critical"
    assert felt[-1][1] == "battery_critical"
    report = verify_storage(device.storage, read_device_public(device.pub_path))
    # The storage fault at 64 s cut one event short, explained by its fault entry (exit 3).
    assert report.outcome == "truncated" and report.problems == [], report.to_json()
    assert [g["kind"] for g in report.to_json()["gaps"]] == ["storage_fault"]
