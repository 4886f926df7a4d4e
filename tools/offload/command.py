"""`bwc offload --device DEVICE_DIR --to URL` (docs/offload.md §8, docs/tools.md): arguments,
the device lock, one-line errors and exit codes; the run itself is tools/offload/session.py."""
from __future__ import annotations

import os
import sys

from device.offload.protocol import PART_BYTES_DEFAULT, PART_BYTES_MAX, PART_BYTES_MIN
from tools.offload.session import EXIT_USAGE

RETRY_FOR_DEFAULT_S = 600.0


def add_parser(subparsers) -> None:
    s = subparsers.add_parser("offload", help="send closed segments and the audit log to an evidence intake")
    s.add_argument("--device", required=True, metavar="DEVICE_DIR")
    s.add_argument("--to", required=True, metavar="URL", help="the intake's base URL, http://HOST:PORT")
    s.add_argument("--storage", metavar="DIR", help="evidence directory (default DEVICE_DIR/storage)")
    s.add_argument("--rate-limit", metavar="RATE", help="bytes per second to send at most: 500k, 2M, 1.5M")
    s.add_argument("--json", action="store_true", help="JSON lines on standard output instead of a progress bar")
    s.add_argument("--part-kib", type=int, metavar="N",
                   help=f"upload part size in KiB ({PART_BYTES_MIN // 1024}..{PART_BYTES_MAX // 1024}; "
                        f"a dropped connection costs at most one part); default: about 0.25 s of the link, "
                        f"64 KiB..4 MiB, halved after a drop")
    s.add_argument("--retry-for", type=float, default=RETRY_FOR_DEFAULT_S, metavar="S",
                   help="keep retrying a failing network this many seconds (default 600)")


def _usage(message: str) -> int:
    print(f"bwc offload: {message}", file=sys.stderr)
    return EXIT_USAGE


def run(args) -> int:
    from device.config import ConfigError, load_identity
    from device.chainstate import ChainStateError
    from hal.devicelock import DeviceLock, DeviceLockError
    from hal.filekeystore import KeyStoreError
    from tools.offload.client import IntakeClient, UrlError
    from tools.offload.progress import make_progress
    from tools.offload.ratelimit import RateError, TokenBucket, Unlimited, parse_rate
    from tools.offload.part_sizer import PartSizer
    from tools.offload.session import Session, signing_key

    if args.part_kib is not None and not PART_BYTES_MIN // 1024 <= args.part_kib <= PART_BYTES_MAX // 1024:
        return _usage(f"--part-kib must be {PART_BYTES_MIN // 1024}..{PART_BYTES_MAX // 1024}, got {args.part_kib}")
    if not args.retry_for >= 0:
        return _usage(f"--retry-for must be 0 or more seconds, got {args.retry_for}")
    try:
        limiter = TokenBucket(parse_rate(args.rate_limit)) if args.rate_limit else Unlimited()
        identity = load_identity(args.device)
    except (RateError, ConfigError) as exc:
        return _usage(str(exc))
    if not identity.intake_public_keys:
        return _usage(f"device {args.device} trusts no evidence intake, so it could never accept a receipt: "
                      f"provision it with --intake-pub INTAKE_DIR/intake.pub")
    lock = DeviceLock(args.device)
    try:
        lock.acquire()
    except DeviceLockError as exc:
        return _usage(f"{exc}: offload runs only while the camera is idle or docked")
    try:
        storage = args.storage or os.path.join(args.device, "storage")
        if not os.path.isdir(storage):
            return _usage(f"{storage}: no evidence storage (not a directory)")
        try:
            key = signing_key(args.device, identity)
            client = IntakeClient(args.to, key, identity.intake_public_keys, limiter)
        except (UrlError, KeyStoreError, ValueError) as exc:
            return _usage(str(exc))
        progress = make_progress(args.json)
        fixed = args.part_kib is not None
        session = Session(identity, args.device, storage, client, progress,
                          args.part_kib * 1024 if fixed else PART_BYTES_DEFAULT, args.retry_for,
                          sizer=None if fixed else PartSizer())
        try:
            return session.run()
        except (ChainStateError, KeyStoreError) as exc:
            progress.close()
            return _usage(str(exc))
        finally:
            progress.close()
    finally:
        lock.release()
