"""The `bwc` command (docs/tools.md). Thin: parsing, messages and exit codes only."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

EXIT_OK, EXIT_INTEGRITY, EXIT_USAGE, EXIT_TRUNCATED, EXIT_BEFORE_SET = 0, 1, 2, 3, 4


class UsageError(Exception):
    pass


# Commands whose modules add their own parsers. A custodian's `bwc verify` / `bwc export`
# does not import them: they bring numpy, PyAV and the Pi backends (about 0.25 s a run).
_MODULE_COMMANDS = {"bench": "tools.bench.command", "offload": "tools.offload.command", "pod": "tools.pod_command", "world": "tools.world_command", "sim": "tools.sim_command",
                    "redact": "tools.release.command", "faces": "tools.release.faces_command",
                    "verify-release": "tools.release.verify_command",
                    "release-csr": "tools.release.csr_command",
                    "install-service": "tools.service", "doctor": "tools.doctor"}
_LIGHT_COMMANDS = ("verify", "export")


def _module(command: str):
    import importlib
    return importlib.import_module(_MODULE_COMMANDS[command])


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bwc", description="OpenBWC body-worn camera: firmware, simulator and custodian tools")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("keygen", help="make a custodian key pair (or, with --release, a release-signing key)")
    s.add_argument("--out", required=True, metavar="DIR")
    s.add_argument("--release", action="store_true",
                   help="an Ed25519 key that signs release records of redacted copies (docs/release.md)")

    s = sub.add_parser("provision", help="give a device its identity, signing key and custodian keys")
    s.add_argument("--device-id", required=True, metavar="ID")
    s.add_argument("--custodian", required=True, action="append", metavar="PUB")
    s.add_argument("--intake-pub", action="append", default=[], metavar="PUB",
                   help="an evidence intake whose custody receipts the device accepts")
    s.add_argument("--out", required=True, metavar="DEVICE_DIR")

    s = sub.add_parser("run", help="run the firmware")
    s.add_argument("--device", required=True, metavar="DEVICE_DIR")
    s.add_argument("--hal", required=True, choices=("sim", "pi"))
    s.add_argument("--scenario", metavar="FILE.toml", help="scripted inputs (sim); default: the built-in demo")
    s.add_argument("--source", metavar="VIDEO", help="play this video file through the simulated camera")
    s.add_argument("--realtime", action="store_true", help="run on the wall clock instead of the virtual clock")
    s.add_argument("--storage", metavar="DIR", help="evidence directory (default DEVICE_DIR/storage)")
    s.add_argument("--trace", metavar="FILE", help="(sim) write what the simulated world saw and heard, "
                   "one JSON line per LED change, vibration, tone, sound and state change")

    s = sub.add_parser("verify", help="check footage with the device's public key")
    s.add_argument("storage", metavar="STORAGE", help="a storage directory, or an intake store (file:// or s3://)")
    s.add_argument("--device-pub", required=True, metavar="PUB")
    s.add_argument("--json", action="store_true", help="print a JSON report")
    _store_options(s)

    s = sub.add_parser("export", help="decrypt footage to MP4 + JSON sidecar per event")
    s.add_argument("storage", metavar="STORAGE", help="a storage directory, or an intake store (file:// or s3://)")
    s.add_argument("--key", required=True, metavar="KEYFILE")
    s.add_argument("--out", required=True, metavar="DIR")
    s.add_argument("--device-pub", metavar="PUB", help="pin the device key (default: the key the footage names)")
    s.add_argument("--announce-dir", metavar="DIR",
                   help="the agency's announcement files (<lang>.wav/.flac), to find their cues in the audio")
    _store_options(s)

    s = sub.add_parser("intake", help="the evidence intake: init, enroll, serve (docs/offload.md)")
    intake = s.add_subparsers(dest="intake_command", required=True, metavar="ACTION")
    t = intake.add_parser("init", help="make an intake's signing key and config")
    t.add_argument("--out", required=True, metavar="INTAKE_DIR")
    t = intake.add_parser("enroll", help="admit a device")
    t.add_argument("intake_dir", metavar="INTAKE_DIR")
    t.add_argument("--device-pub", required=True, metavar="PUB")
    t = intake.add_parser("serve", help="serve the intake over HTTP")
    t.add_argument("intake_dir", metavar="INTAKE_DIR")
    t.add_argument("--listen", required=True, metavar="HOST:PORT")
    t.add_argument("--store", metavar="URL", help="file:///path or s3://bucket/prefix (default INTAKE_DIR/store)")
    t.add_argument("--s3-endpoint", metavar="URL", help="an S3-compatible endpoint (MinIO, Ceph RGW)")

    s = sub.add_parser("group", help="group activation: make a group authority, admit a camera (docs/link.md §8)")
    group = s.add_subparsers(dest="group_command", required=True, metavar="ACTION")
    t = group.add_parser("init", help="make a group authority's Ed25519 key")
    t.add_argument("--name", required=True, metavar="NAME")
    t.add_argument("--out", required=True, metavar="GROUP_DIR")
    t = group.add_parser("admit", help="give a provisioned camera its group membership (DEVICE_DIR/group.json)")
    t.add_argument("group_dir", metavar="GROUP_DIR")
    t.add_argument("--device", required=True, metavar="DEVICE_DIR")

    s = sub.add_parser("vehicle", help="a vehicle light-bar controller in a group (docs/link.md §8)")
    vehicle = s.add_subparsers(dest="vehicle_command", required=True, metavar="ACTION")
    t = vehicle.add_parser("init", help="make a vehicle controller's key and membership")
    t.add_argument("--group", required=True, metavar="GROUP_DIR")
    t.add_argument("--id", required=True, metavar="ID")
    t.add_argument("--out", required=True, metavar="VEHICLE_DIR")
    t = vehicle.add_parser("start", help="send one signed group start over UDP")
    t.add_argument("vehicle_dir", metavar="VEHICLE_DIR")
    t.add_argument("--peers", required=True, metavar="HOST:PORT[,...]")
    t.add_argument("--cause", default="lightbar", metavar="CAUSE")

    # `bwc offload` (the device side) is added here by tools/offload/command.py.

    s = sub.add_parser("demo", help="keygen, provision, record a scenario, verify, export")
    s.add_argument("--out", required=True, metavar="DIR")

    if command not in _LIGHT_COMMANDS:
        for name in _MODULE_COMMANDS:
            _module(name).add_parser(sub)
    return p


def _store_options(s) -> None:
    s.add_argument("--s3-endpoint", metavar="URL", help="with an s3:// store: an S3-compatible endpoint")
    s.add_argument("--device", metavar="ID", help="with an intake store: the device, by its device id")


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    args = _parser(words[0] if words else None).parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except (UsageError, *_loaded(_USAGE_ERRORS)) as exc:
        print(f"bwc {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except _loaded(_INTEGRITY_ERRORS) as exc:
        print(f"bwc {args.command}: {exc}", file=sys.stderr)
        return EXIT_INTEGRITY
    except OSError as exc:  # a full disk, a file where a directory should be ...
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"bwc {args.command}: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"bwc {args.command}: interrupted", file=sys.stderr)
        return 130


# The errors main() turns into one line, by module. An exception of one of these classes
# can only have been raised if its module is loaded, so main() matches only the loaded
# ones and imports none of them (device.chainstate alone brings in hal and numpy).
_USAGE_ERRORS = (("device.config", "ConfigError"), ("device.evidence.keys", "KeyFileError"),
                 ("hal.filekeystore", "KeyStoreError"), ("device.chainstate", "ChainStateError"),
                 ("tools.intake.config", "IntakeConfigError"), ("tools.intake.history", "HistoryError"),
                 ("tools.intake.store", "StoreURLError"), ("tools.intake.store", "StoreError"),
                 ("tools.bench.command", "BenchUsageError"))
_INTEGRITY_ERRORS = (("device.evidence.decrypt", "DecryptError"),)


def _loaded(names: tuple[tuple[str, str], ...]) -> tuple[type, ...]:
    return tuple(getattr(sys.modules[module], name) for module, name in names if module in sys.modules)


def _keygen(args) -> int:
    from tools.provision import ProvisionError, keygen, release_keygen
    try:
        secret, public = (release_keygen if args.release else keygen)(args.out)
    except ProvisionError as exc:
        raise UsageError(str(exc)) from None
    if args.release:
        print(f"release secret key: {secret} (keep it offline; mode 0600)")
        print(f"release public key: {public} (give it to whoever checks your release copies)")
        return EXIT_OK
    print(f"custodian secret key: {secret} (keep it offline; mode 0600)")
    print(f"custodian public key: {public} (give it to bwc provision)")
    return EXIT_OK


def _provision(args) -> int:
    from tools.provision import ProvisionError, provision
    try:
        device_pub = provision(args.device_id, args.custodian, args.out, args.intake_pub)
    except ProvisionError as exc:
        raise UsageError(str(exc)) from None
    print(f"provisioned {args.device_id!r} in {args.out}; device public key: {device_pub}")
    return EXIT_OK


def _run(args) -> int:
    from tools.run import run_command
    return run_command(args)


def _read_device_pub(path: str):
    from device.evidence.keys import read_device_public
    return read_device_public(path)


def _is_store_url(text: str) -> bool:
    return text.startswith(("file://", "s3://"))


def _from_intake(args, device_key_hex: str | None):
    """A context manager giving a directory with the device's history from an intake store."""
    from tools.intake.history import find_device, materialised
    from tools.intake.store import open_store
    store = open_store(args.storage, args.s3_endpoint)
    device = find_device(store, args.device) if args.device else device_key_hex
    if device is None:
        raise UsageError("with an intake store, name the device: --device ID or --device-pub PUB")
    if device_key_hex is not None and device != device_key_hex:
        raise UsageError(f"--device {args.device!r} is not the device of --device-pub")
    return materialised(store, device)


def _local_options(args) -> None:
    if not _is_store_url(args.storage) and (args.s3_endpoint or args.device):
        raise UsageError("--s3-endpoint and --device go with an intake store (file:// or s3://)")


def _verify(args) -> int:
    device_key = _read_device_pub(args.device_pub)
    _local_options(args)
    if _is_store_url(args.storage):
        with _from_intake(args, bytes(device_key).hex()) as directory:
            return _verify_dir(args, directory, device_key)
    return _verify_dir(args, args.storage, device_key)


def _verify_dir(args, storage: str, device_key) -> int:
    from device.evidence.storage_verify import verify_storage
    from tools.report import format_report, verify_exit_code
    args = argparse.Namespace(**dict(vars(args), storage=storage))
    if not os.path.isdir(args.storage):
        raise UsageError(f"{args.storage}: not a directory")
    if not [n for n in os.listdir(args.storage) if not n.startswith(".")]:
        raise UsageError(f"{args.storage} is empty: it holds no footage and no audit log to verify")
    try:
        report = verify_storage(args.storage, device_key)
    except OSError as exc:
        raise UsageError(f"{args.storage}: cannot read ({exc.strerror})") from None
    if args.json:
        print(json.dumps(report.to_json(), indent=2, sort_keys=True))
    else:
        print(format_report(report))
    return verify_exit_code(report)


def _export(args) -> int:
    _local_options(args)
    if _is_store_url(args.storage):
        pinned = _read_device_pub(args.device_pub) if args.device_pub else None
        with _from_intake(args, bytes(pinned).hex() if pinned else None) as directory:
            return _export_dir(argparse.Namespace(**dict(vars(args), storage=directory)))
    return _export_dir(args)


def _export_dir(args) -> int:
    from device.evidence.keys import read_custodian_secret
    from tools.export import ExportError, export_events
    from tools.exportability import EXIT_BEFORE_SET, EXIT_CUT_SHORT, EXIT_TAMPERED
    from tools.report import storage_device_key
    from tools.staging import ExportInterrupted
    secret = read_custodian_secret(args.key)
    if not os.path.isdir(args.storage):
        raise UsageError(f"{args.storage}: not a directory")
    pinned = args.device_pub is not None
    try:
        device_key = _read_device_pub(args.device_pub) if pinned else storage_device_key(args.storage)
        result = export_events(args.storage, secret, device_key, args.out, pinned, args.announce_dir)
    except ExportError as exc:
        print(f"bwc export: {exc}", file=sys.stderr)
        return exc.exit_code
    except ExportInterrupted as exc:
        print(f"bwc export: interrupted ({exc}); nothing was exported", file=sys.stderr)
        return 128 + exc.signum
    for ev in result.exported:
        print(f"{ev.mp4_path}  ({ev.media_s:.1f} s; metadata in {os.path.basename(ev.sidecar_path)})")
    for ev in result.not_exported:
        names = ev.segments[0].name + (f" .. {ev.segments[-1].name}" if len(ev.segments) > 1 else "")
        print(f"not exported: event {ev.event_id[:8]} ({names}): {ev.refusal.code}: {ev.refusal.reason}")
    print(f"{len(result.exported)} of {len(result.events)} event(s) exported; summary in {result.summary_path}")
    if result.exit_code == EXIT_TAMPERED:
        problems = "; ".join(f"{f}: {r}" for f, r in result.report.problems[:3])
        print(f"warning: verification found integrity failures ({problems or 'see the summary'}); "
              f"only intact events were exported")
    elif result.exit_code == EXIT_CUT_SHORT or result.report.outcome == "truncated":
        print("note: some footage was cut short by power loss; see the sidecar's verification section")
    elif result.exit_code == EXIT_BEFORE_SET:
        print("note: this storage does not hold the device's earlier history; see the summary")
    return result.exit_code


def _intake(args) -> int:
    from tools.intake.config import enroll_device, init_intake
    if args.intake_command == "init":
        key_path, pub_path = init_intake(args.out)
        print(f"intake key: {key_path} (mode 0600; every replica needs it)")
        print(f"intake public key: {pub_path} (give it to bwc provision --intake-pub)")
        return EXIT_OK
    if args.intake_command == "enroll":
        device, new = enroll_device(args.intake_dir, args.device_pub)
        print(f"device {device[:16]}… {'enrolled' if new else 'was already enrolled'} at {args.intake_dir}")
        return EXIT_OK
    from tools.intake.serve import parse_listen, serve
    try:
        parse_listen(args.listen)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return serve(args.intake_dir, args.listen, args.store, args.s3_endpoint)


def _group(args) -> int:
    from device.group import GroupConfigError
    from tools.group import GroupError, admit_device, init_group
    try:
        if args.group_command == "init":
            pub = init_group(args.name, args.out)
            print(f"group {args.name!r} authority in {args.out}; group.key is secret (mode 0600), "
                  f"public key {pub}")
        else:
            path = admit_device(args.group_dir, args.device)
            print(f"admitted {args.device} to the group: {path}")
    except (GroupError, GroupConfigError) as exc:
        raise UsageError(str(exc)) from None
    return EXIT_OK


def _vehicle(args) -> int:
    from device.group import GroupConfigError
    from tools.group import GroupError
    from tools.vehicle import init_vehicle, parse_peers, start_vehicle
    try:
        if args.vehicle_command == "init":
            path = init_vehicle(args.group, args.id, args.out)
            print(f"vehicle controller {args.id!r} in {args.out}; membership {path}")
        else:
            peers = parse_peers(args.peers)
            counter = start_vehicle(args.vehicle_dir, peers, args.cause)
            print(f"group start {counter} sent to {len(peers)} peer(s)")
    except (GroupError, GroupConfigError) as exc:
        raise UsageError(str(exc)) from None
    return EXIT_OK


def _demo(args) -> int:
    from tools.demo import run_demo
    return run_demo(args.out)


_COMMANDS = {"keygen": _keygen, "provision": _provision, "run": _run, "verify": _verify,
             "export": _export, "demo": _demo, "intake": _intake, "group": _group, "vehicle": _vehicle,
             **{name: (lambda args, name=name: _module(name).run(args)) for name in _MODULE_COMMANDS}}

if __name__ == "__main__":
    sys.exit(main())
