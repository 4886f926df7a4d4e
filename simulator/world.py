"""A world of several cameras and vehicles on one virtual clock (docs/simulator.md, ACT-3).

Each camera is the whole firmware on its own simulated board and SimFS, exactly as
simulator/runner.py runs one; they share the clock and the ether, over which their group
radios (and the vehicles' light-bar controllers) carry signed group starts (docs/link.md §8).
A scenario names its cameras (`cameras = [...]`) and vehicles (`vehicles = [...]`) and each
camera step its `target`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from nacl.signing import SigningKey

from device.config import Identity, Policy
from device.podlink import load_pairings
from device.group import GROUP_FILE, GroupLink, RecordCounterStore, read_member_record
from hal.filekeystore import FileKeyStore
from simulator.clock import VirtualClock
from simulator.ether import SimEther
from simulator.runner import RunResult, _Device, _schedule, _seconds, group_node
from simulator.scenario import Scenario
from simulator.simfs import SimFS
from simulator.trace import Trace
from simulator.wallclock import SteppableWallClock


@dataclass(frozen=True)
class CameraSetup:
    identity: Identity
    policy: Policy          # the device's own policy; the scenario's [policy] is applied on top
    device_dir: str
    storage_dir: str


class SimVehicle:
    """A vehicle's light-bar controller: a group member that only sends starts."""

    def __init__(self, clock, ether: SimEther, name: str, vehicle_dir: str, peers: list[str]) -> None:
        member = read_member_record(os.path.join(vehicle_dir, GROUP_FILE))
        store = FileKeyStore(vehicle_dir)
        self.name = name
        self.sent: list[tuple[int, int]] = []   # (monotonic_us, counter)
        self._clock = clock
        self.link = GroupLink(member, SigningKey(store.signing_seed()), RecordCounterStore(store),
                              ether.endpoint(group_node(name)), clock, peers,
                              on_start=lambda source, fields: None, log=lambda status, fields: None)

    def lightbar_on(self) -> None:
        self.sent.append((self._clock.monotonic_us(), self.link.announce("lightbar")))


def _pod_owners(scenario: Scenario, cameras: dict[str, CameraSetup]) -> dict[str, str]:
    """Each pod of the world belongs to the one camera it is paired with (bwc pod pair)."""
    paired = {name: {p.pod_id for p in load_pairings(FileKeyStore(setup.device_dir))}
              for name, setup in cameras.items()}
    owners = {}
    for pod_id in scenario.pods:
        found = [name for name, pods in paired.items() if pod_id in pods]
        if len(found) != 1:
            where = "no camera" if not found else f"{len(found)} cameras ({', '.join(found)})"
            raise ValueError(f"pod {pod_id} is paired with {where} of the world; pair it with one "
                             f"(bwc pod pair --device DEVICE_DIR --pod-id {pod_id})")
        owners[pod_id] = found[0]
    return owners


@dataclass
class WorldResult:
    cameras: dict[str, RunResult]
    vehicles: dict[str, SimVehicle]
    ether: SimEther
    start_us: int
    end_us: int


def run_world(scenario: Scenario, cameras: dict[str, CameraSetup], vehicles: dict[str, str] | None = None,
              trace: bool = False, actors: tuple = ()) -> WorldResult:
    """Run every camera and vehicle of `scenario` to its end. `cameras`: name -> setup, one per
    name in scenario.cameras; `vehicles`: name -> VEHICLE_DIR (bwc vehicle init); `actors`:
    callables given (clock, ether, start_us) once the cameras are up: anything else in radio
    range (a test's attacker)."""
    vehicles = vehicles or {}
    if set(cameras) != set(scenario.cameras) or set(vehicles) != set(scenario.vehicles):
        raise ValueError("the world's cameras and vehicles must be exactly the scenario's")
    owners = _pod_owners(scenario, cameras)
    clock = VirtualClock()
    ether = SimEther(clock)
    group_nodes = {name: group_node(name) for name in scenario.cameras}
    devices: dict[str, _Device] = {}
    traces: dict[str, Trace] = {}
    for name in scenario.cameras:
        setup = cameras[name]
        world_clock = SteppableWallClock(clock)
        tr = None
        if trace:
            tr = traces[name] = Trace()
            tr.use_clock(world_clock)
        group_path = os.path.join(setup.device_dir, GROUP_FILE)
        member = read_member_record(group_path) if os.path.exists(group_path) else None
        peers = tuple(node for other, node in group_nodes.items() if other != name)
        devices[name] = _Device(world_clock, SimFS(), scenario, setup.identity,
                                scenario.apply_policy(setup.policy), setup.device_dir, setup.storage_dir,
                                None, tr, ether=ether, node=name, group=member, group_peers=peers,
                                pods=tuple(p for p in scenario.pods if owners[p] == name))
    sim_vehicles = {name: SimVehicle(clock, ether, name, path, list(group_nodes.values()))
                    for name, path in vehicles.items()}
    for device in devices.values():
        device.boot()
    start_us = clock.monotonic_us()
    for tr in traces.values():
        tr.origin_us = start_us
    for actor in actors:
        actor(clock, ether, start_us)
    end_us = start_us + _seconds(scenario.duration_s)
    try:
        for step in scenario.steps:
            if step.action.startswith("vehicle."):
                clock.call_at(start_us + _seconds(step.t_s), sim_vehicles[step.target].lightbar_on)
            else:
                device = devices[owners[step.target] if step.action.startswith(("pod.", "link.")) else step.target]
                _schedule(device, device.clock, start_us, step)
        clock.wait_until(end_us)
    finally:
        for device in devices.values():
            device.finish()
    results = {name: RunResult(d.instances, d.fs, start_us, end_us, d.battery, traces.get(name), d.pods)
               for name, d in devices.items()}
    return WorldResult(results, sim_vehicles, ether, start_us, end_us)
