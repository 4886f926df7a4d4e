"""`bwc release-csr` (docs/release-credentials.md §3): a certificate request for the release
key that a CA can issue the C2PA signing profile from, and a release signed under it."""
from __future__ import annotations

import os
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from device.evidence.keys import read_release_public, read_release_secret

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit"))

from private_ca import make_root  # noqa: E402

pytestmark = pytest.mark.tool
SUBJECT = "CN=Records Unit,O=City Police\\, Central,C=US"


@pytest.fixture(scope="module")
def release_key(bwc, tmp_path_factory):
    out = tmp_path_factory.mktemp("release-csr") / "key"
    assert bwc("keygen", "--release", "--out", out).returncode == 0
    return out / "release.key", out / "release.pub"


def test_the_request_is_for_the_release_key_and_subject(bwc, release_key, tmp_path):
    key, pub = release_key
    out = tmp_path / "release.csr"
    r = bwc("release-csr", "--key", key, "--subject", SUBJECT, "--out", out)
    assert r.returncode == 0, str(r)
    assert f"certificate request: {out}" in r.stdout
    csr = x509.load_pem_x509_csr(out.read_bytes())
    assert csr.is_signature_valid
    raw = csr.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert raw == bytes(read_release_public(str(pub)))
    assert csr.subject.rfc4514_string() == "C=US,O=City Police\\, Central,CN=Records Unit"
    eku = csr.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.EMAIL_PROTECTION in eku
    assert csr.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature


def test_a_ca_issues_from_it_and_the_release_signs_trusted(bwc, release_key, tmp_path):
    # The agency path end to end: CSR from the CLI, the CA's chain, a signed release read back.
    import av
    import numpy as np

    from tools.release import credentials
    key, pub = release_key
    out = tmp_path / "release.csr"
    assert bwc("release-csr", "--key", key, "--subject", "CN=Records Unit", "--out", out).returncode == 0
    ca = make_root()
    chain = ca.issue(out.read_bytes())
    for name in ("EVENT.mp4", "unsigned.mp4"):
        with av.open(str(tmp_path / name), "w", format="mp4") as f:
            s = f.add_stream("libx264", rate=10)
            s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
            for i in range(3):
                f.mux(s.encode(av.VideoFrame.from_ndarray(np.full((32, 32, 3), 60 * i, np.uint8), format="rgb24")))
            f.mux(s.encode(None))
    signed = tmp_path / "EVENT.release.mp4"
    credentials.embed(str(tmp_path / "unsigned.mp4"), str(signed), original_mp4=str(tmp_path / "EVENT.mp4"),
                      record_sha256="a" * 64, record_name="EVENT.release.json", actions=[],
                      cert_chain_pem=chain, release_key=read_release_secret(str(key)))
    creds = credentials.read(str(signed), ca.anchor_pem)
    assert credentials.check(creds, bytes(read_release_public(str(pub))).hex(), "a" * 64) == []


@pytest.mark.parametrize("subject, message", [
    ("O=No Common Name", "the subject needs a CN=..."),
    ("CN=x,XX=y", "subject part 'XX=y' is not one of"),
    ("CN=x,C=USA", "subject C='USA' must be a two-letter country code"),
    ("", "the subject must be 1..1024 characters"),
])
def test_a_bad_subject_is_one_line_and_writes_nothing(bwc, release_key, tmp_path, subject, message):
    out = tmp_path / "release.csr"
    r = bwc("release-csr", "--key", release_key[0], "--subject", subject, "--out", out)
    assert r.returncode == 2, str(r)
    assert r.stderr.startswith(f"bwc release-csr: {message}") and r.stderr.count("\n") == 1
    assert not out.exists()


def test_an_existing_out_is_never_replaced(bwc, release_key, tmp_path):
    out = tmp_path / "release.csr"
    out.write_text("keep")
    r = bwc("release-csr", "--key", release_key[0], "--subject", "CN=x", "--out", out)
    assert r.returncode == 2 and r.stderr == f"bwc release-csr: {out} already exists\n"
    assert out.read_text() == "keep"


def test_a_public_key_in_place_of_the_secret_is_refused(bwc, release_key, tmp_path):
    r = bwc("release-csr", "--key", release_key[1], "--subject", "CN=x", "--out", tmp_path / "x.csr")
    assert r.returncode == 2 and r.stderr.startswith("bwc release-csr: ") and r.stderr.count("\n") == 1
