"""`bwc verify-release` (docs/release.md §5): parsing, messages and exit codes only."""
from __future__ import annotations

import sys

from tools.release.verify import EXIT_USAGE

_WORDS = {0: "HONEST: the original minus exactly the declared redactions",
          1: "INTEGRITY FAILURE",
          3: "HONEST against the export: the original minus exactly the declared redactions, "
             "but the export's link to the camera's signatures was not checked"}


def add_parser(subparsers) -> None:
    s = subparsers.add_parser("verify-release", help="prove a release copy is its original minus the declared redactions")
    s.add_argument("release_mp4", metavar="RELEASE.mp4", help="written by bwc redact (its release record beside it)")
    s.add_argument("--original", required=True, metavar="STORAGE_OR_EXPORT",
                   help="the evidence storage (with --key), or the export MP4 or directory it was made from")
    s.add_argument("--device-pub", required=True, metavar="PUB")
    s.add_argument("--release-pub", required=True, metavar="PUB")
    s.add_argument("--key", metavar="KEYFILE", help="with evidence storage: a custodian key that decrypts it")
    s.add_argument("--trust-anchor", metavar="ROOTS.pem", help="the agency's root certificate(s): the release's C2PA "
                   "manifest must be signed under a certificate they issued (docs/release-credentials.md)")


def run(args) -> int:
    from device.evidence.keys import KeyFileError, read_device_public, read_release_public
    from tools.release.files import read_pem_certificates
    from tools.release.verify import VerifyReleaseError, verify_release
    try:
        anchors = (read_pem_certificates(args.trust_anchor, "--trust-anchor", VerifyReleaseError)
                   if args.trust_anchor else None)
        report = verify_release(args.release_mp4, args.original, read_device_public(args.device_pub),
                                read_release_public(args.release_pub), args.key, anchors)
    except (VerifyReleaseError, KeyFileError) as exc:
        print(f"bwc verify-release: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"  release record     {report.record_signature}")
    print(f"  original           {report.original_identity} ({report.original_kind or 'not reached'})")
    print(f"  device signatures  {report.device_signatures}")
    print(f"  credentials        {report.credentials}")
    c = report.comparison
    if c is not None:
        print(f"  video              {c.frames_compared} of {c.frames} frames compared; worst block outside the "
              f"masks {c.worst_block:.1f} of tolerance 8.0")
        print(f"  audio              {c.audio_windows} windows compared; worst difference "
              f"{c.worst_audio_ratio:.3f} of tolerance 0.100")
        if c.frames_cut or c.marker_frames:
            print(f"  cuts               {c.frames_cut} frames cut as declared, {c.marker_frames} cut-marker frames")
        for line in c.differences:
            print(f"  CHANGED            {line}")
        if c.count > len(c.differences):
            print(f"  CHANGED            ... {c.count - len(c.differences)} more")
    for problem in report.problems:
        print(f"  FAILED             {problem}")
    print(f"Result: {_WORDS[report.exit_code]}")
    return report.exit_code

