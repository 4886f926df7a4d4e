"""`bwc pod pair | unpair | list` (docs/link.md §1): a pod and a camera share a fresh secret on
the provisioning station; it never crosses the radio. The camera's side goes into its key
store (`state/pods.json`, 0600); the pod's side is POD_DIR/link.json (0600), to copy onto the
pod's flash over USB (`mpremote cp POD_DIR/link.json :link.json`)."""
from __future__ import annotations

import json
import os
import sys

from device.config import load_identity, load_policy
from device.link.frame import Pairing, check_pod_id
from device.podlink import MAX_PAIRINGS, PAIRINGS_RECORD, PairingError, load_pairings, pairings_record
from hal.devicelock import DeviceLock, DeviceLockError
from hal.filekeystore import FileKeyStore, write_private_file

EXIT_OK, EXIT_USAGE = 0, 2
DEFAULT_CAMERA_PORT = 4770


def add_parser(subparsers) -> None:
    s = subparsers.add_parser("pod", help="pair a control pod with a camera (docs/link.md)")
    sub = s.add_subparsers(dest="pod_command", required=True)
    t = sub.add_parser("pair", help="make a fresh pairing secret for a pod and this camera")
    t.add_argument("--device", required=True, metavar="DEVICE_DIR")
    t.add_argument("--pod-id", required=True, metavar="ID", help="1-16 of a-z 0-9 -, starting with a letter")
    t.add_argument("--out", required=True, metavar="POD_DIR", help="where the pod's link.json goes (new or empty)")
    t.add_argument("--camera-address", metavar="HOST:PORT",
                   help=f"where the pod sends (the camera's address on its Wi-Fi; default CAMERA:{DEFAULT_CAMERA_PORT})")
    t = sub.add_parser("unpair", help="forget a pod: its frames are refused from the next boot")
    t.add_argument("--device", required=True, metavar="DEVICE_DIR")
    t.add_argument("--pod-id", required=True, metavar="ID")
    t = sub.add_parser("list", help="the pods paired with a camera")
    t.add_argument("--device", required=True, metavar="DEVICE_DIR")


def _fail(message: str) -> int:
    print(f"bwc pod: {message}", file=sys.stderr)
    return EXIT_USAGE


def run(args) -> int:
    try:
        identity = load_identity(args.device)   # a provisioned camera, or a one-line error
        keystore = FileKeyStore(args.device)
        with DeviceLock(args.device):           # never while the camera runs from this directory
            pairings = load_pairings(keystore)
            if args.pod_command == "list":
                for p in pairings:
                    print(f"{p.pod_id}  link {p.link_id.hex()}")
                return EXIT_OK
            if args.pod_command == "unpair":
                kept = [p for p in pairings if p.pod_id != args.pod_id]
                if len(kept) == len(pairings):
                    return _fail(f"no pod {args.pod_id!r} is paired with this camera")
                keystore.write_record(PAIRINGS_RECORD, pairings_record(kept))
                print(f"unpaired {args.pod_id}: its frames are refused from the camera's next boot")
                return EXIT_OK
            return _pair(args, identity, keystore, pairings)
    except (PairingError, DeviceLockError) as exc:
        return _fail(str(exc))


def _pair(args, identity, keystore, pairings) -> int:
    problem = check_pod_id(args.pod_id)
    if problem:
        return _fail(f"--pod-id: {problem}")
    if any(p.pod_id == args.pod_id for p in pairings):
        return _fail(f"pod {args.pod_id!r} is already paired; unpair it first to make a new secret")
    if len(pairings) >= MAX_PAIRINGS:
        return _fail(f"this camera already has {MAX_PAIRINGS} pods")
    address = args.camera_address or f"{identity.device_id}:{DEFAULT_CAMERA_PORT}"
    from pod.pairing import PairingError as PodPairingError, parse, record_text
    if os.path.exists(args.out) and (not os.path.isdir(args.out) or os.listdir(args.out)):
        return _fail(f"{args.out} exists and is not an empty directory; refusing to overwrite a pairing")
    pairing = Pairing(args.pod_id, os.urandom(32))
    while any(p.link_id == pairing.link_id for p in pairings):   # 4 bytes: a collision is rare, not impossible
        pairing = Pairing(args.pod_id, os.urandom(32))
    policy = load_policy(os.path.join(args.device, "policy.toml"))
    text = record_text(pairing.pod_id, pairing.secret, identity.device_id, address, policy.gesture_timings())
    try:
        parse(text)
    except PodPairingError as exc:
        return _fail(f"--camera-address: {exc}")
    os.makedirs(args.out, mode=0o700, exist_ok=True)
    # The pod's side first: a failure leaves the camera unchanged.
    write_private_file(os.path.join(args.out, "link.json"), text.encode())
    keystore.write_record(PAIRINGS_RECORD, pairings_record([*pairings, pairing]))
    line = ":".join(["obwc-pair:1", pairing.pod_id, pairing.link_id.hex(), pairing.secret.hex(), identity.device_id])
    print(f"paired {pairing.pod_id} with {identity.device_id} (link {pairing.link_id.hex()})")
    print(f"pod side: {os.path.join(args.out, 'link.json')} (secret, 0600): copy it to the pod over USB:")
    print(f"  mpremote cp {os.path.join(args.out, 'link.json')} :link.json")
    print(f"or move it by QR code (a secret, like the file): {line}")
    return EXIT_OK
