"""`bwc world --scenario FILE --camera NAME=DEVICE_DIR … [--vehicle NAME=VEHICLE_DIR …]`: several
cameras and vehicles in one simulated world on one virtual clock (docs/simulator.md, ACT-3)."""
from __future__ import annotations

import os
import sys

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_parser(subparsers) -> None:
    s = subparsers.add_parser("world", help="(sim) several cameras and vehicles on one virtual clock")
    s.add_argument("--scenario", required=True, metavar="FILE.toml", help="lists cameras = [...] (and vehicles)")
    s.add_argument("--camera", action="append", default=[], metavar="NAME=DEVICE_DIR",
                   help="one per camera the scenario lists (its storage: DEVICE_DIR/storage)")
    s.add_argument("--vehicle", action="append", default=[], metavar="NAME=VEHICLE_DIR",
                   help="one per vehicle the scenario lists (bwc vehicle init)")


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--{what} {item!r}: give NAME=DIR")
        if name in out:
            raise ValueError(f"--{what} {name}: given twice")
        if not os.path.isdir(path):
            raise ValueError(f"--{what} {name}: {path} is not a directory")
        out[name] = path
    return out


def run(args) -> int:
    from device.config import load_identity, load_policy
    from device.group import GroupConfigError
    from hal.devicelock import DeviceLock, DeviceLockError
    from simulator.scenario import load_scenario
    from simulator.world import CameraSetup, run_world
    from tools.run import check_signing_key
    try:
        cameras, vehicles = _pairs(args.camera, "camera"), _pairs(args.vehicle, "vehicle")
    except ValueError as exc:
        print(f"bwc world: {exc}", file=sys.stderr)
        return EXIT_USAGE
    scenario = load_scenario(args.scenario)
    if not scenario.cameras:
        print(f"bwc world: {args.scenario} lists no cameras = [...]; use bwc run for one camera", file=sys.stderr)
        return EXIT_USAGE
    missing = sorted(set(scenario.cameras) - set(cameras)) + sorted(set(scenario.vehicles) - set(vehicles))
    extra = sorted(set(cameras) - set(scenario.cameras)) + sorted(set(vehicles) - set(scenario.vehicles))
    if missing or extra:
        print(f"bwc world: the scenario's cameras and vehicles need one --camera / --vehicle each "
              f"(missing: {', '.join(missing) or 'none'}; not in the scenario: {', '.join(extra) or 'none'})",
              file=sys.stderr)
        return EXIT_USAGE
    setups, locks = {}, []
    try:
        for name, directory in cameras.items():
            identity = load_identity(directory)
            check_signing_key(directory, identity)
            lock = DeviceLock(directory)
            lock.acquire()          # never beside a bwc run on the same device
            locks.append(lock)
            setups[name] = CameraSetup(identity, load_policy(os.path.join(directory, "policy.toml")),
                                       directory, os.path.join(directory, "storage"))
        result = run_world(scenario, setups, vehicles)
    except (DeviceLockError, GroupConfigError, ValueError) as exc:
        print(f"bwc world: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        for lock in locks:
            lock.release()
    print(f"ran {scenario.source} ({scenario.duration_s:g} s simulated): {len(cameras)} cameras, "
          f"{len(vehicles)} vehicles")
    for name, res in result.cameras.items():
        starts = [(fw.recorder.events_started) for fw in res.firmwares if fw.recorder is not None]
        print(f"  {name}: {sum(starts)} event(s) recorded to {setups[name].storage_dir}")
    failed = any(i.failure is not None for res in result.cameras.values() for i in res.instances)
    return EXIT_FAILED if failed else EXIT_OK
