"""The storage-fault sweep (issue 5): for one short recorded event, ENOSPC and EIO are
injected at every write, every fsync and every create the card sees in turn — all of
them, not a sample — each followed by a retry in the same boot, a reboot, and another
event. Every case verifies as authentic (0) or cut short (3) with the fault named in a
signed entry, never as tampered, and every event that has media exports.

On SimFS (simulator/simfs.py), so a fault is a real OSError from the file system under
DirectoryStorage, with the short write landing on the card as a real card's would.
"""
from __future__ import annotations

import os
from collections import Counter

import pytest

from device.config import load_identity, load_policy
from device.evidence.keys import read_custodian_secret, read_device_public
from device.evidence.storage_verify import verify_storage
from scenario_support import audit_entries, make_custodian, make_device, scenario_toml
from simulator.runner import run_scenario
from simulator.scenario import parse_scenario
from simulator.simfs import SimFS
from tools.export import export_events

pytestmark = pytest.mark.scenario

# Event 1 (the one swept): 1 s pre-event, stopped by a hold; event 2 retries in the same
# boot; then a power cut, a reboot and event 3.
SHIFT = scenario_toml(9.0, [
    {"t_s": 0.5, "do": "button.double_press"},
    {"t_s": 1.6, "do": "button.hold", "hold_s": 1.0},
    {"t_s": 3.2, "do": "button.double_press"},
    {"t_s": 4.3, "do": "button.hold", "hold_s": 1.0},
    {"t_s": 5.6, "do": "power.cut"},
    {"t_s": 5.8, "do": "power.restore"},
    {"t_s": 6.4, "do": "button.double_press"},
    {"t_s": 7.5, "do": "button.hold", "hold_s": 1.0},
], width=160, height=96, fps=10, keyframe_interval_s=0.5, bitrate_bps=100_000,
    pre_event_s=1, segment_s=1, hold_stop_s=1)
EVENT_1_END_S = 3.0


def _shift(device, simfs: SimFS):
    scenario = parse_scenario(SHIFT, "<fault sweep>")
    policy = scenario.apply_policy(load_policy(os.path.join(device.directory, "policy.toml")))
    return run_scenario(scenario, load_identity(device.directory), policy, device.directory, device.storage,
                        simfs=simfs)


def _ops_through_event_1(tmp_path) -> dict:
    """How many writes, fsyncs and creates the card sees from boot to event 1's end."""
    custodian = make_custodian(str(tmp_path / "count-custodian"))
    device = make_device(str(tmp_path / "count-device"), custodian)
    simfs = SimFS()
    counts: dict[str, int] = {}
    text = scenario_toml(EVENT_1_END_S, [{"t_s": 0.5, "do": "button.double_press"},
                                         {"t_s": 1.6, "do": "button.hold", "hold_s": 1.0}],
                         width=160, height=96, fps=10, keyframe_interval_s=0.5, bitrate_bps=100_000,
                         pre_event_s=1, segment_s=1, hold_stop_s=1)
    scenario = parse_scenario(text, "<count>")
    policy = scenario.apply_policy(load_policy(os.path.join(device.directory, "policy.toml")))
    run_scenario(scenario, load_identity(device.directory), policy, device.directory, device.storage, simfs=simfs)
    for op in ("write", "fsync", "create"):
        counts[op] = simfs.op_count(op, under=device.storage)
    # The card's own directory (made at first boot) is not the event's: a card whose
    # mount point cannot be made is a board that cannot boot, tested elsewhere.
    skip = {op: [k for k, (kind, path) in enumerate((o for o in simfs.ops if o[0] == op and
                                                     o[1].startswith(device.storage)), start=1)
                 if path == device.storage and op == "create"] for op in counts}
    return {"counts": counts, "skip": skip}


@pytest.fixture(scope="module")
def op_counts(tmp_path_factory) -> dict:
    return _ops_through_event_1(tmp_path_factory.mktemp("count"))


def _cases(plan: dict) -> list[tuple[str, str, int, int | None]]:
    cases = []
    counts = plan["counts"]
    for op, n in counts.items():
        for nth in range(1, n + 1):
            if nth in plan["skip"][op]:
                continue
            for errno in ("ENOSPC", "EIO"):
                cases.append((errno, op, nth, None))
    # Short writes: a fault that lands part of the write first.
    for nth in range(1, counts["write"] + 1):
        cases.append(("ENOSPC", "write", nth, 7))
    return cases


def _check_case(tmp_path, errno: str, op: str, nth: int, after_bytes: int | None) -> str:
    custodian = make_custodian(str(tmp_path / "custodian"))
    device = make_device(str(tmp_path / "device"), custodian)
    simfs = SimFS(seed=nth)
    simfs.fail(errno=errno, op=op, nth=nth, count=1, after_bytes=after_bytes, under=device.storage)
    result = _shift(device, simfs)
    faulted = any(i.failure is not None for i in result.instances)
    key = read_device_public(device.pub_path)
    report = verify_storage(device.storage, key)
    where = (errno, op, nth, after_bytes)
    assert report.outcome in ("authentic", "truncated"), (where, report.to_json())
    if faulted:
        faults = [e for e in audit_entries(device.storage) if e["type"] == "fault"]
        assert faults and faults[0]["errno"] == errno, (where, faults)
    # The retry in the same boot and the event after the reboot both recorded.
    assert len(result.instances) == 2
    activations = [e for e in audit_entries(device.storage) if e["type"] == "activation"]
    assert len(activations) >= 2, (where, [e["type"] for e in audit_entries(device.storage)])
    result = export_events(device.storage, read_custodian_secret(custodian.secret_path), key,
                           str(tmp_path / "out"), True)
    # Every event exports, unless it holds no media at all (a fault right at its start).
    refused = {ev.event_id: ev.refusal.code for ev in result.events if ev.refusal is not None}
    assert set(refused.values()) <= {"empty"}, (where, refused)
    assert {ev.event_id for ev in result.exported} == set(report.events()) - set(refused), where
    return report.outcome


def test_every_write_fsync_and_create_of_an_event_can_fail(tmp_path_factory, op_counts):
    cases = _cases(op_counts)
    counts = op_counts["counts"]
    assert counts["write"] >= 5 and counts["fsync"] >= 5 and counts["create"] >= 2, counts
    outcomes: Counter = Counter()
    for i, (errno, op, nth, after_bytes) in enumerate(cases):
        outcomes[_check_case(tmp_path_factory.mktemp(f"case{i}"), errno, op, nth, after_bytes)] += 1
    print(f"\nfault sweep: {len(cases)} cases over {counts} (skipped {op_counts['skip']}): {dict(outcomes)}")
