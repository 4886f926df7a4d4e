"""`bwc release-csr` (docs/release-credentials.md §3): parsing, messages and exit codes only."""
from __future__ import annotations

import os
import sys

from tools.cli import EXIT_OK, EXIT_USAGE


def add_parser(subparsers) -> None:
    s = subparsers.add_parser("release-csr", help="a certificate request for the release key, for the agency's CA "
                                                  "(C2PA content credentials, docs/release-credentials.md)")
    s.add_argument("--key", required=True, metavar="KEYFILE", help="release.key, made by bwc keygen --release")
    s.add_argument("--subject", required=True, metavar="DN", help='e.g. "CN=Records Unit,O=City Police,C=US"')
    s.add_argument("--out", required=True, metavar="FILE.csr", help="the PEM request to write (must not exist)")


def run(args) -> int:
    from device.evidence.keys import KeyFileError, read_release_secret
    from tools.release.certs import CertificateError, make_csr
    try:
        key = read_release_secret(args.key)
        csr = make_csr(key, args.subject)
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except (KeyFileError, CertificateError) as exc:
        print(f"bwc release-csr: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FileExistsError:
        print(f"bwc release-csr: {args.out} already exists", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"bwc release-csr: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    with os.fdopen(fd, "wb") as f:
        f.write(csr)
    print(f"certificate request: {args.out} (Ed25519 release key {bytes(key.verify_key).hex()})")
    print("have the agency's CA issue it with the C2PA signing profile (docs/release-credentials.md §3)")
    return EXIT_OK
