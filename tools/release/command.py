"""`bwc redact` (docs/release.md): parsing, messages and exit codes only."""
from __future__ import annotations

import sys

from tools.cli import EXIT_OK, EXIT_USAGE


def add_parser(subparsers) -> None:
    s = subparsers.add_parser("redact", help="make a redacted release copy of an exported event (docs/release.md)")
    s.add_argument("export_mp4", metavar="EVENT.mp4", help="an MP4 that bwc export wrote (its sidecar beside it)")
    s.add_argument("--plan", required=True, metavar="PLAN.toml", help="what to hide (docs/release.md §2)")
    s.add_argument("--release-key", required=True, metavar="KEYFILE", help="made by bwc keygen --release")
    s.add_argument("--out", required=True, metavar="DIR", help="where the release goes (never evidence storage)")
    s.add_argument("--cert", metavar="CHAIN.pem", help="the release key's certificate chain (PEM, its own first): "
                   "the release carries a C2PA manifest signed under it (docs/release-credentials.md)")


def run(args) -> int:
    from device.evidence.keys import KeyFileError, read_release_secret
    from tools.release.plan import PlanError, read_plan
    from tools.release.files import read_pem_certificates
    from tools.release.redact import RedactError, load_original, redact
    try:
        original = load_original(args.export_mp4)
        plan = read_plan(args.plan)
        key = read_release_secret(args.release_key)
        cert = read_pem_certificates(args.cert, "--cert", RedactError) if args.cert else None
        released = redact(original, plan, args.plan, key, args.out, cert)
    except (RedactError, PlanError, KeyFileError) as exc:
        print(f"bwc redact: {exc}", file=sys.stderr)
        return EXIT_USAGE
    cut = f", {released.frames_cut} cut" if released.frames_cut else ""
    print(f"release copy: {released.mp4_path} ({released.frames} frames of the original{cut}, "
          f"{released.masked_frames} with something hidden)")
    if released.tracks_lost_frames:
        # The mask stayed where the target was last seen: a reviewer should look at those frames.
        print(f"note: a tracked region lost its target in {released.tracks_lost_frames} frames and kept its last "
              "box there; check the release's masks")
    print(f"release record: {released.record_path} (signed with the release key)")
    if args.cert:
        print("content credentials: a C2PA manifest signed under the --cert chain, naming the record")
    else:
        print("content credentials: none (no --cert): stock C2PA readers will show nothing")
    return EXIT_OK

