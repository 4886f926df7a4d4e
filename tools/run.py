"""`bwc run`: build a board (simulator or Raspberry Pi) and run the firmware on it."""
from __future__ import annotations

import logging
import os
import sys
from importlib import resources

from nacl.signing import SigningKey

from device.config import ConfigError, Identity, load_identity, load_policy
from hal.devicelock import DeviceLock, DeviceLockError
from hal.filekeystore import SIGNING_KEY_FILE, FileKeyStore
from simulator.scenario import Scenario, load_scenario, parse_scenario

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def builtin_scenario(name: str = "demo") -> Scenario:
    text = resources.files("simulator").joinpath("scenarios", f"{name}.toml").read_text(encoding="utf-8")
    return parse_scenario(text, f"<built-in {name} scenario>")


def check_signing_key(device_dir: str, identity: Identity) -> None:
    """ConfigError unless device.key is the key device.json names (checked before the
    firmware is built, so a mismatch is a one-line usage error, not a crash)."""
    seed = FileKeyStore(device_dir).signing_seed()
    if bytes(SigningKey(seed).verify_key) != identity.device_public_key:
        raise ConfigError(f"{os.path.join(device_dir, SIGNING_KEY_FILE)} does not match the "
                          f"device_public_key in {os.path.join(device_dir, 'device.json')}")


def _log_to_stderr(command: str = "run") -> None:
    """Firmware log lines (a storage fault and what the device did about it) reach the
    operator as one plain line each, not as Python's default format."""
    logging.basicConfig(level=logging.WARNING, format=f"bwc {command}: %(message)s", stream=sys.stderr)


def run_command(args) -> int:
    _log_to_stderr()
    identity = load_identity(args.device)
    # Before anything reads chain state or opens storage: a second firmware on this
    # device must change nothing (hal/devicelock.py).
    lock = DeviceLock(args.device)
    try:
        lock.acquire()
    except DeviceLockError as exc:
        print(f"bwc run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        check_signing_key(args.device, identity)
        policy = load_policy(os.path.join(args.device, "policy.toml"))
        if args.hal == "pi":
            if getattr(args, "trace", None):
                print("bwc run: --trace is for --hal sim (the simulated world is what it traces)", file=sys.stderr)
                return EXIT_USAGE
            return _run_pi(args, identity, policy)
        return _run_sim(args, identity, policy)
    finally:
        lock.release()


def _run_sim(args, identity: Identity, policy) -> int:
    storage = args.storage or os.path.join(args.device, "storage")
    scenario = load_scenario(args.scenario) if args.scenario else builtin_scenario()
    policy = scenario.apply_policy(policy)
    if args.source and not os.path.isfile(args.source):
        what = "is a directory, not a video file" if os.path.isdir(args.source) else "no such file"
        print(f"bwc run: --source {args.source}: {what}", file=sys.stderr)
        return EXIT_USAGE
    from simulator.camera import SourceVideoError
    from simulator.runner import run_scenario
    from simulator.trace import Trace
    trace_path = getattr(args, "trace", None)
    trace_file = None
    if trace_path:
        # Opened before the run: a path that cannot be written is a usage error now, not
        # after a long --realtime session.
        try:
            trace_file = open(trace_path, "w", encoding="utf-8")
        except OSError as exc:
            print(f"bwc run: --trace {trace_path}: cannot write ({exc.strerror or exc})", file=sys.stderr)
            return EXIT_USAGE
    try:
        try:
            result = run_scenario(scenario, identity, policy, args.device, storage, args.source, args.realtime,
                                  trace=Trace() if trace_file else None)
        except SourceVideoError as exc:
            print(f"bwc run: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if trace_file is not None:
            try:
                count = result.trace.write(trace_file)
            except OSError as exc:
                print(f"bwc run: --trace {trace_path}: cannot write ({exc.strerror or exc})", file=sys.stderr)
                return EXIT_FAILED
    finally:
        if trace_file is not None:
            trace_file.close()
    _report(result, scenario, storage)
    if trace_file is not None:
        print(f"trace: {count} line{'s' * (count != 1)} written to {trace_path}")
    return EXIT_FAILED if any(i.failure is not None for i in result.instances) else EXIT_OK


def _report(result, scenario: Scenario, storage: str) -> None:
    """One summary line; a line for a device left without power; one error line per failed boot."""
    boots = result.instances
    events = sum(fw.recorder.events_started for fw in result.firmwares if fw.recorder is not None)
    cuts = sum(i.power_lost_us is not None for i in boots)
    extra = (f"; {len(boots)} boot{'s' * (len(boots) != 1)}, {cuts} power cut{'s' * (cuts != 1)}"
             if len(boots) > 1 or cuts else "")
    print(f"ran {scenario.source} ({scenario.duration_s:g} s simulated); "
          f"{events} event(s) recorded to {storage}{extra}")
    if not result.powered_at_end:
        cut_s = round((boots[-1].power_lost_us - result.start_us) / 1e6, 3)
        print(f"power was cut at {cut_s:g} s and not restored: storage is left as a pulled battery leaves it")
    if any(getattr(fw, "storage_full", False) for fw in result.firmwares):
        print("the card filled up: the running event was closed cleanly (stop reason storage_full)")
    if any(getattr(fw, "shutdown_source", None) == "battery_critical" for fw in result.firmwares):
        print("the battery reached its critical level: the event was closed cleanly and the camera shut down")
    for pod_id, pod in (result.pods or {}).items():
        shown = [p for i, (p, _) in enumerate(pod.shown_changes) if i == 0 or p != pod.shown_changes[i - 1][0]]
        print(f"pod {pod_id}: showed {' -> '.join(shown)}")
    for number, inst in enumerate(boots, start=1):
        if inst.failure is not None:
            which = f" (boot {number})" if len(boots) > 1 else ""
            print(f"bwc run: recording failed{which}: {inst.failure}", file=sys.stderr)


def _run_pi(args, identity: Identity, policy) -> int:
    from hal.pi import BackendUnavailable
    try:
        from tools.pi_main import run_on_pi
    except BackendUnavailable as exc:
        print(f"bwc run --hal pi: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return run_on_pi(args, identity, policy)
    except BackendUnavailable as exc:
        print(f"bwc run --hal pi: {exc}", file=sys.stderr)
        return EXIT_USAGE
