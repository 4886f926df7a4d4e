"""`bwc redact --cert` and `bwc verify-release --trust-anchor` (docs/release-credentials.md):
the release carries a C2PA manifest under the release key's certificate; verify-release
accepts it only when the release key signed it under a certificate the anchor issued."""
from __future__ import annotations

import functools
import json
import os
import subprocess
import sys

import pytest

from device.evidence.keys import read_release_secret
from tools.release import credentials
from tools.release.plan import read_plan
from tools.release.redact import load_original, redact

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit"))

from private_ca import make_root  # noqa: E402

pytestmark = pytest.mark.tool

HEAD = 'version = 1\n[release]\nreleased_by = "R. Officer"\nreason = "court order 17"\n'


@pytest.fixture(scope="module")
def agency(bwc, tmp_path_factory):
    """Two release keys, each with a certificate from the agency's (test) CA."""
    base = tmp_path_factory.mktemp("agency")
    ca = make_root()
    (base / "root.pem").write_bytes(ca.anchor_pem)
    keys = {}
    for name in ("ours", "theirs"):
        assert bwc("keygen", "--release", "--out", base / name).returncode == 0
        r = bwc("release-csr", "--key", base / name / "release.key", "--subject", f"CN={name},O=Test Agency",
                "--out", base / name / "release.csr")
        assert r.returncode == 0, str(r)
        (base / name / "chain.pem").write_bytes(ca.issue((base / name / "release.csr").read_bytes()))
        keys[name] = base / name
    return base, keys


@pytest.fixture(scope="module")
def release(bwc, export_pinned, agency, tmp_path_factory):
    base, keys = agency
    mp4 = sorted(export_pinned.out.glob("event-*.mp4"))[0]
    side = json.loads(mp4.with_suffix(".json").read_text())
    plan = tmp_path_factory.mktemp("c2pa-plan") / "plan.toml"
    plan.write_text(HEAD + f"[[region]]\nstart_s = 0\nend_s = {side['media_s'] / 2:.3f}\nbox = [20, 20, 80, 60]\n")
    out = base / "release"
    r = bwc("redact", mp4, "--plan", plan, "--release-key", keys["ours"] / "release.key", "--out", out,
            "--cert", keys["ours"] / "chain.pem")
    assert r.returncode == 0, str(r)
    assert "content credentials: a C2PA manifest" in r.stdout
    return mp4, out / (mp4.stem + ".release.mp4"), plan


def _verify(bwc, release_mp4, mp4, recording, pub, *extra):
    return bwc("verify-release", release_mp4, "--original", mp4, "--device-pub", recording.device.pub,
               "--release-pub", pub, *extra)


def test_a_release_with_credentials_is_trusted_under_the_agency_root(bwc, release, agency, recording):
    mp4, release_mp4, _ = release
    base, keys = agency
    record = json.loads(release_mp4.with_suffix(".json").read_text())
    assert record["release"]["credentials"] == "c2pa"
    creds = credentials.read(str(release_mp4), (base / "root.pem").read_bytes())
    assert creds.validation_state == "Trusted" and creds.ingredient_title == mp4.name
    r = _verify(bwc, release_mp4, mp4, recording, keys["ours"] / "release.pub", "--trust-anchor", base / "root.pem")
    assert r.returncode == 3, str(r)
    assert "credentials        valid C2PA manifest, trusted: ours" in r.stdout and "FAILED" not in r.stdout
    r = _verify(bwc, release_mp4, mp4, recording, keys["ours"] / "release.pub")
    assert r.returncode == 3 and "issuer not checked (give --trust-anchor)" in r.stdout, str(r)


def test_an_anchor_that_did_not_issue_the_certificate_is_a_failure(bwc, release, agency, recording, tmp_path):
    mp4, release_mp4, _ = release
    _, keys = agency
    (tmp_path / "other-root.pem").write_bytes(make_root("Another Agency Root").anchor_pem)
    r = _verify(bwc, release_mp4, mp4, recording, keys["ours"] / "release.pub", "--trust-anchor",
                tmp_path / "other-root.pem")
    assert r.returncode == 1, str(r)
    assert "content credentials: C2PA manifest not trusted by the trust anchor" in r.stdout


def test_a_manifest_from_another_key_is_a_failure(bwc, release, agency, recording, tmp_path, monkeypatch):
    """The record signed by our release key, the MP4's manifest by another (with a valid
    certificate from the same agency): the manifest is not the releaser's."""
    mp4, _, plan = release
    base, keys = agency
    real_embed = credentials.embed

    def embed_as_theirs(*args, **kwargs):
        kwargs.update(release_key=read_release_secret(str(keys["theirs"] / "release.key")),
                      cert_chain_pem=(keys["theirs"] / "chain.pem").read_bytes())
        return real_embed(*args, **kwargs)

    monkeypatch.setattr(credentials, "embed", embed_as_theirs)
    out = tmp_path / "forged"
    made = redact(load_original(str(mp4)), read_plan(str(plan)), str(plan),
                  read_release_secret(str(keys["ours"] / "release.key")), str(out),
                  (keys["ours"] / "chain.pem").read_bytes())
    r = _verify(bwc, made.mp4_path, mp4, recording, keys["ours"] / "release.pub", "--trust-anchor",
                base / "root.pem")
    assert r.returncode == 1, str(r)
    assert "release record     valid" in r.stdout and "not the release key" in r.stdout, str(r)


@pytest.mark.parametrize("case", ["another key's certificate", "not a certificate"])
def test_a_certificate_that_cannot_sign_for_the_key_is_refused_before_any_work(bwc, release, agency, tmp_path,
                                                                                 case):
    mp4, _, plan = release
    _, keys = agency
    cert = keys["theirs"] / "chain.pem"
    if case == "not a certificate":
        cert = tmp_path / "junk.pem"
        cert.write_text("hello")
    r = bwc("redact", mp4, "--plan", plan, "--release-key", keys["ours"] / "release.key", "--out", tmp_path / "o",
            "--cert", cert)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, str(r)
    assert ("not for this release key" if case != "not a certificate" else "not PEM certificates") in r.stderr
    assert not (tmp_path / "o").exists()


OPENSSL_EXTENSIONS = ("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                      "extendedKeyUsage=emailProtection,1.3.6.1.5.5.7.3.36\nsubjectKeyIdentifier=hash\n"
                      "authorityKeyIdentifier=keyid\n")


def test_a_certificate_from_an_openssl_ca_as_the_readme_makes_it_is_trusted(bwc, release, agency, recording,
                                                                             tmp_path):
    """The README's throwaway CA (openssl, Ed25519): the profile docs/release-credentials.md §3
    asks of an agency's CA is one that openssl issues with these extensions."""
    mp4, _, plan = release
    _, keys = agency
    run = functools.partial(subprocess.run, check=True, capture_output=True, cwd=tmp_path)
    run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", "ca.key"])
    run(["openssl", "req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=Test Agency Root CA", "-days", "3650",
         "-out", "root.pem", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    (tmp_path / "c2pa.ext").write_text(OPENSSL_EXTENSIONS)
    assert bwc("release-csr", "--key", keys["ours"] / "release.key", "--subject", "CN=Records Unit,O=Test Agency",
               "--out", tmp_path / "release.csr").returncode == 0
    run(["openssl", "x509", "-req", "-in", "release.csr", "-CA", "root.pem", "-CAkey", "ca.key", "-days", "365",
         "-extfile", "c2pa.ext", "-out", "release.crt"])
    (tmp_path / "chain.pem").write_bytes((tmp_path / "release.crt").read_bytes() + (tmp_path / "root.pem").read_bytes())
    r = bwc("redact", mp4, "--plan", plan, "--release-key", keys["ours"] / "release.key", "--out", tmp_path / "out",
            "--cert", tmp_path / "chain.pem")
    assert r.returncode == 0, str(r)
    r = _verify(bwc, tmp_path / "out" / (mp4.stem + ".release.mp4"), mp4, recording, keys["ours"] / "release.pub",
                "--trust-anchor", tmp_path / "root.pem")
    assert r.returncode == 3 and "trusted: Records Unit" in r.stdout, str(r)
