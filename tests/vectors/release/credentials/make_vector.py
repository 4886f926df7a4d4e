"""Makes this directory's C2PA vector (docs/release-credentials.md §6) with fixed keys:
`python tests/vectors/release/credentials/make_vector.py` from the repository root.
The signed MP4 differs at each run (c2pa draws the manifest's urn and instance ids)."""
from __future__ import annotations

import datetime
import sys
import tempfile
from pathlib import Path

import av
import nacl.signing
import numpy as np
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[3]))

from tools.release import credentials  # noqa: E402
from tools.release.certs import SIGNING_EKUS, make_csr  # noqa: E402

RELEASE_KEY = nacl.signing.SigningKey(bytes(range(32)))
ROOT_KEY = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
NOT_BEFORE = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
NOT_AFTER = datetime.datetime(2099, 12, 31, tzinfo=datetime.timezone.utc)
RECORD_SHA256 = "1" * 64
OPERATIONS = [{"op": "region", "start_s": 0.0, "end_s": 0.3, "box": [0, 0, 16, 16], "style": "mask",
               "track": False, "label": "vector"}]


def _mp4(path: Path, shade: int) -> None:
    with av.open(str(path), "w", format="mp4") as f:
        s = f.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
        for i in range(3):
            f.mux(s.encode(av.VideoFrame.from_ndarray(np.full((32, 32, 3), shade + 40 * i, np.uint8),
                                                      format="rgb24")))
        f.mux(s.encode(None))


def main() -> None:
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "OpenBWC Vector Root CA")])
    root = (x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name)
            .public_key(ROOT_KEY.public_key()).serial_number(1)
            .not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ROOT_KEY.public_key()), critical=False)
            .sign(ROOT_KEY, None))
    csr = x509.load_pem_x509_csr(make_csr(RELEASE_KEY, "CN=Vector Records Unit,O=OpenBWC vectors"))
    leaf = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(root_name)
            .public_key(csr.public_key()).serial_number(2)
            .not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(list(SIGNING_EKUS)), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(csr.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ROOT_KEY.public_key()), critical=False)
            .sign(ROOT_KEY, None))
    pem = serialization.Encoding.PEM
    (HERE / "anchor.pem").write_bytes(root.public_bytes(pem))
    (HERE / "chain.pem").write_bytes(leaf.public_bytes(pem) + root.public_bytes(pem))
    with tempfile.TemporaryDirectory() as tmp:
        original, unsigned = Path(tmp) / "EVENT.mp4", Path(tmp) / "unsigned.mp4"
        _mp4(original, 30)
        _mp4(unsigned, 130)
        out = HERE / "release.mp4"
        out.unlink(missing_ok=True)
        credentials.embed(str(unsigned), str(out), original_mp4=str(original), record_sha256=RECORD_SHA256,
                          record_name="EVENT.release.json", actions=OPERATIONS,
                          cert_chain_pem=(HERE / "chain.pem").read_bytes(), release_key=RELEASE_KEY,
                          encoder={"video": "libx264", "audio": "none"})
        out.chmod(0o644)
        print(credentials.read(str(out), (HERE / "anchor.pem").read_bytes()).release_assertion)


if __name__ == "__main__":
    main()
