"""Group activation on the simulator (ACT-3, docs/link.md §8): cameras of one group and a
vehicle's light-bar controller on one virtual clock. One press starts them all, with the peer
as source; spoofed and replayed starts are refused and logged, never acted on."""
from __future__ import annotations

import json

import pytest
from nacl.signing import SigningKey

from device import group_cert as gc
from device.config import load_identity, load_policy
from device.evidence.keys import read_device_public
from device.evidence.storage_verify import verify_storage
from scenario_support import audit_entries, make_custodian, make_device, scenario_toml
from simulator.runner import group_node
from simulator.scenario import parse_scenario
from simulator.world import CameraSetup, run_world
from tools.group import admit_device, init_group
from tools.vehicle import init_vehicle

pytestmark = pytest.mark.scenario
S = 1_000_000
SMALL = dict(width=160, height=90, fps=10, bitrate_bps=300_000, pre_event_s=1,
             announce="suppressed", announce_suppress_reason="test")


def world_text(duration_s, steps, cameras, vehicles=()):
    first, _, rest = scenario_toml(duration_s, steps, **SMALL).partition("\n")
    head = f"cameras = {json.dumps(list(cameras))}\n"
    if vehicles:
        head += f"vehicles = {json.dumps(list(vehicles))}\n"
    return first + "\n" + head + rest


def make_world(root, n, group_name="shift-a", admit=None):
    custodian = make_custodian(str(root / "keys"))
    group_dir = str(root / "group")
    init_group(group_name, group_dir)
    devices, setups = {}, {}
    for i in range(1, n + 1):
        name = f"cam-{i}"
        device = make_device(str(root / name), custodian, device_id=name)
        if admit is None or name in admit:
            admit_device(group_dir, device.directory)
        devices[name] = device
        setups[name] = CameraSetup(load_identity(device.directory), load_policy(device.directory + "/policy.toml"),
                                   device.directory, device.storage)
    return group_dir, devices, setups


def activations(device):
    return [e for e in audit_entries(device.storage) if e["type"] == "activation"]


def group_messages(device):
    return [e for e in audit_entries(device.storage) if e["type"] == "group_message"]


def test_one_press_starts_the_whole_group_within_500_ms(tmp_path):
    group_dir, devices, setups = make_world(tmp_path, 3)
    steps = [{"t_s": 2.0, "do": "button.double_press", "target": "cam-1"},
             {"t_s": 8.0, "do": "button.hold", "target": "cam-1"}]
    scenario = parse_scenario(world_text(12, steps, setups), "<group>")
    result = run_world(scenario, setups)
    first = activations(devices["cam-1"])
    assert [a["source"] for a in first] == ["button"]
    origin_us = first[0]["monotonic_us"]
    sender = load_identity(devices["cam-1"].directory).device_id
    for name in ("cam-2", "cam-3"):
        starts = activations(devices[name])
        assert [a["source"] for a in starts] == [f"peer:{sender}"], name
        latency_us = starts[0]["monotonic_us"] - origin_us
        assert 0 < latency_us <= 500_000, (name, latency_us)
        accepted = [m for m in group_messages(devices[name]) if m["status"] == "accepted"]
        assert len(accepted) == 1 and accepted[0]["from"] == sender
    # A peer started by the group does not announce again: cam-1 heard nothing back.
    assert group_messages(devices["cam-1"]) == []
    for device in devices.values():
        report = verify_storage(device.storage, read_device_public(device.pub_path))
        assert report.outcome == "authentic", report.to_json()
    assert result.ether.delivered >= 6   # 2 peers x 3 copies


def test_a_vehicle_light_bar_starts_the_group_as_vehicle_source(tmp_path):
    group_dir, devices, setups = make_world(tmp_path, 2)
    init_vehicle(group_dir, "car-1", str(tmp_path / "car-1"))
    steps = [{"t_s": 2.0, "do": "vehicle.lightbar_on", "target": "car-1"}]
    scenario = parse_scenario(world_text(6, steps, setups, ["car-1"]), "<vehicle>")
    result = run_world(scenario, setups, {"car-1": str(tmp_path / "car-1")})
    sent_us = result.vehicles["car-1"].sent[0][0]
    for device in devices.values():
        starts = activations(device)
        assert [a["source"] for a in starts] == ["vehicle:car-1"]
        assert 0 < starts[0]["monotonic_us"] - sent_us <= 500_000


def test_spoofed_out_of_group_and_replayed_starts_are_refused_and_logged(tmp_path):
    group_dir, devices, setups = make_world(tmp_path, 2)
    target = group_node("cam-2")
    heard = []

    def attacker(clock, ether, start_us):
        radio = ether.endpoint("attacker")
        # A stranger who made its own group of the same name, and signs as a member of it.
        stranger, stranger_group = SigningKey(bytes(range(32))), SigningKey(bytes(range(32, 64)))
        cert = gc.sign_cert(stranger_group, "shift-a", "intruder", "camera", bytes(stranger.verify_key))
        ether._nodes[target].subscribe(   # listening in on the genuine start
            lambda data, sender, at: heard.append(data) if sender != "attacker" else None)

        def spoof():
            radio.send(gc.encode_start(stranger, "shift-a", "intruder", "camera", cert, 1,
                                       clock.wall_time_us(), None, "button"), target)

        def replay():
            radio.send(heard[0], target)
        clock.call_at(start_us + 1 * S, spoof)
        clock.call_at(start_us + 7 * S, replay)     # 4 s after the genuine start: in its window
        clock.call_at(start_us + 13 * S, replay)    # 10 s after: outside it

    steps = [{"t_s": 3.0, "do": "button.double_press", "target": "cam-1"},
             {"t_s": 4.0, "do": "button.hold", "target": "cam-2"},     # cam-2 stops what the peer started
             {"t_s": 4.0, "do": "button.hold", "target": "cam-1"}]
    scenario = parse_scenario(world_text(16, steps, setups), "<attack>")
    run_world(scenario, setups, actors=(attacker,))
    starts = activations(devices["cam-2"])
    assert [a["source"] for a in starts] == ["peer:cam-1"]     # only the genuine start, never again
    rejected = [m for m in group_messages(devices["cam-2"]) if m["status"] == "rejected"]
    reasons = [m["reason"] for m in rejected]
    assert reasons == ["not_member", "replay", "replay"], reasons


def test_a_pod_starts_its_camera_and_the_group_follows_with_a_vehicle_in_the_same_world(tmp_path):
    from tools.cli import main
    group_dir, devices, setups = make_world(tmp_path, 3)
    init_vehicle(group_dir, "car-1", str(tmp_path / "car-1"))
    assert main(["pod", "pair", "--device", devices["cam-2"].directory, "--pod-id", "pod-1",
                 "--out", str(tmp_path / "pod-1")]) == 0
    steps = [{"t_s": 2.0, "do": "pod.double_press", "target": "pod-1"},
             {"t_s": 5.0, "do": "link.drop", "target": "pod-1"},
             {"t_s": 6.0, "do": "vehicle.lightbar_on", "target": "car-1"}]   # all recording already
    text = world_text(9, steps, setups, ["car-1"])
    first, _, rest = text.partition("\n")
    scenario = parse_scenario(first + '\npods = ["pod-1"]\n' + rest, "<world>")
    result = run_world(scenario, setups, {"car-1": str(tmp_path / "car-1")})
    assert [a["source"] for a in activations(devices["cam-2"])] == ["pod:pod-1"]
    for name in ("cam-1", "cam-3"):
        assert [a["source"] for a in activations(devices[name])] == ["peer:cam-2"]
    pod = result.cameras["cam-2"].pods["pod-1"]
    assert [p for p, _ in pod.shown_changes][-2:] == ["recording", "link_lost"]
    # The light bar's start reached cameras already recording: accepted, and nothing split.
    for device in devices.values():
        accepted = [m for m in group_messages(device) if m["status"] == "accepted" and m["from"] == "car-1"]
        assert len(accepted) == 1 and len(activations(device)) == 1


def test_a_pod_paired_with_no_camera_of_the_world_is_a_clear_error(tmp_path):
    _, devices, setups = make_world(tmp_path, 2)
    text = world_text(3, [{"t_s": 1.0, "do": "pod.press", "target": "pod-9"}], setups)
    first, _, rest = text.partition("\n")
    scenario = parse_scenario(first + '\npods = ["pod-9"]\n' + rest, "<world>")
    with pytest.raises(ValueError, match="pod pod-9 is paired with no camera"):
        run_world(scenario, setups)
