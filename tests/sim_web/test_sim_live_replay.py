"""An interactive run becomes a regression test (docs/sim-live.md, "The saved scenario"): the
scenario the page saves replays, on the virtual clock, to the same audit events."""
from __future__ import annotations

import os
import shutil

import pytest
from nacl.signing import VerifyKey

from device.config import load_identity, load_policy
from device.evidence.storage_verify import verify_storage
from simulator.runner import run_scenario
from simulator.scenario import parse_scenario
from sim_helpers import Sim
from tools.bench.devices import make_device

pytestmark = pytest.mark.scenario

# What a comparison keeps of an entry: its type and the facts a person would read in it
# (not ids, hashes or exact times, which differ between any two runs).
_KEPT = ("source", "reason", "kind", "pattern", "track", "phase", "alert", "cue")


def audit_events(storage_dir: str, device_key: bytes) -> list[tuple]:
    report = verify_storage(storage_dir, VerifyKey(device_key))
    assert report.outcome in ("authentic", "truncated"), report.problems
    return [(entry["type"], *[(k, entry[k]) for k in _KEPT if k in entry]) for entry in report.audit.entries]


def contact(sim: Sim, seconds: float) -> None:
    sim.post("/api/input", {"name": "record", "active": True})
    sim.advance(seconds)
    sim.post("/api/input", {"name": "record", "active": False})


def test_a_run_driven_through_the_page_replays_to_the_same_audit_events(tmp_path):
    device = make_device(str(tmp_path / "live"))
    # The device as it was at the start, for the replay (the live run changes its chain state).
    replay_dir = str(tmp_path / "replay-device")
    shutil.copytree(device[0], replay_dir)
    sim = Sim(str(tmp_path / "live"), triggers=("holster",), device=device)
    try:
        sim.advance(11)
        contact(sim, 0.12)
        sim.advance(0.15)
        contact(sim, 0.12)                         # a double press, as two mouse clicks
        sim.advance(4)
        contact(sim, 0.1)                          # a marker
        sim.advance(2)
        sim.post("/api/step", {"do": "camera.disconnect"})
        sim.advance(3)
        sim.post("/api/step", {"do": "camera.reconnect"})
        sim.advance(3)
        sim.post("/api/step", {"do": "clock.jump", "delta_s": 120})
        sim.advance(2)
        contact(sim, 3.3)                          # a hold: stop
        sim.advance(3)
        sim.post("/api/input", {"name": "holster", "active": True})
        sim.advance(4)
        sim.post("/api/step", {"do": "battery.set", "percent": 30})
        sim.advance(1)
        sim.post("/api/step", {"do": "power.cut"})
        sim.advance(2)
        sim.post("/api/step", {"do": "power.restore"})
        sim.advance(5)
        sim.post("/api/input", {"name": "holster", "active": False})
        sim.advance(3)
        sim.post("/api/end")
        text = sim.client.get("/api/scenario").text
    finally:
        sim.close()
    identity = load_identity(sim.device_dir)
    live_events = audit_events(sim.live.storage_dir, identity.device_public_key)

    scenario = parse_scenario(text, "sim-run.toml")
    assert [s.action for s in scenario.steps].count("button.hold") == 4   # every contact, as a hold
    replay_storage = os.path.join(replay_dir, "storage")
    result = run_scenario(scenario, load_identity(replay_dir), scenario.apply_policy(
        load_policy(os.path.join(replay_dir, "policy.toml"))), replay_dir, replay_storage)
    assert all(i.failure is None for i in result.instances)
    replay_events = audit_events(replay_storage, identity.device_public_key)

    kinds = [e[0] for e in live_events]
    for expected in ("activation", "marker", "deactivation", "media_gap", "time_sync", "recovery"):
        assert expected in kinds, (expected, " ".join(sorted(set(kinds))))
    assert replay_events == live_events
