"""C2PA credentials on a real release copy (docs/release-credentials.md): `bwc redact` of the
session recording's export, the manifest embedded with a certificate from `bwc release-csr`
and a private CA, read back trusted, and the signed copy still an honest release for
`bwc verify-release` (embedding changes no frame and no sample)."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys

import av
import numpy as np
import pytest

from device.evidence.keys import read_release_public, read_release_secret
from tools.release import credentials

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit"))

from private_ca import make_root  # noqa: E402

pytestmark = pytest.mark.tool

HEAD = 'version = 1\n[release]\nreleased_by = "R. Officer"\nreason = "court order 17"\n'


@pytest.fixture(scope="module")
def signed(bwc, export_pinned, tmp_path_factory):
    base = tmp_path_factory.mktemp("credentials")
    assert bwc("keygen", "--release", "--out", base / "key").returncode == 0
    key, pub = base / "key" / "release.key", base / "key" / "release.pub"
    mp4 = sorted(export_pinned.out.glob("event-*.mp4"))[0]
    side = json.loads(mp4.with_suffix(".json").read_text())
    (base / "plan.toml").write_text(HEAD + f"[[region]]\nstart_s = 0\nend_s = {side['media_s'] / 2:.3f}\n"
                                           "box = [20, 20, 80, 60]\nstyle = \"mask\"\n")
    r = bwc("redact", mp4, "--plan", base / "plan.toml", "--release-key", key, "--out", base / "out")
    assert r.returncode == 0, str(r)
    assert bwc("release-csr", "--key", key, "--subject", "CN=Records Unit,O=Test Agency",
               "--out", base / "release.csr").returncode == 0
    ca = make_root()
    chain = ca.issue((base / "release.csr").read_bytes())
    unsigned = base / "out" / (mp4.stem + ".release.mp4")
    record_path = unsigned.with_suffix(".json")
    record = json.loads(record_path.read_text())
    (base / "signed").mkdir()
    out = base / "signed" / unsigned.name
    credentials.embed(str(unsigned), str(out), original_mp4=str(mp4),
                      record_sha256=hashlib.sha256(record_path.read_bytes()).hexdigest(),
                      record_name=record_path.name, actions=record["operations"],
                      cert_chain_pem=chain, release_key=read_release_secret(str(key)),
                      encoder=record["release"]["encoder"])
    shutil.copyfile(record_path, out.with_suffix(".json"))
    return out, unsigned, mp4, record_path, ca, pub


def test_the_release_reads_trusted_with_its_record_and_original(signed):
    out, _, mp4, record_path, ca, pub = signed
    creds = credentials.read(str(out), ca.anchor_pem)
    record_sha256 = hashlib.sha256(record_path.read_bytes()).hexdigest()
    record = json.loads(record_path.read_text())
    assert credentials.check(creds, bytes(read_release_public(str(pub))).hex(), record_sha256,
                             original_sha256=record["original"]["mp4_sha256"], operations=record["operations"]) == []
    assert creds.ingredient_title == mp4.name
    assert creds.ingredient_sha256 == json.loads(record_path.read_text())["original"]["mp4_sha256"]
    assert [a["action"] for a in creds.actions] == ["c2pa.opened", "c2pa.edited", "c2pa.transcoded"]


def test_embedding_changes_no_frame_and_no_sample(signed):
    out, unsigned, *_ = signed

    def decoded(path):
        with av.open(str(path)) as c:
            video = [(f.pts, f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
        with av.open(str(path)) as c:
            audio = [(f.pts, f.to_ndarray()) for f in c.decode(audio=0)]
        return video, audio

    (v0, a0), (v1, a1) = decoded(unsigned), decoded(out)
    assert [p for p, _ in v1] == [p for p, _ in v0] and [p for p, _ in a1] == [p for p, _ in a0]
    assert all(np.array_equal(x, y) for (_, x), (_, y) in zip(v0 + a0, v1 + a1))


def test_the_signed_release_is_still_honest_for_verify_release(bwc, signed, recording):
    out, _, mp4, _, _, pub = signed
    r = bwc("verify-release", out, "--original", mp4, "--device-pub", recording.device.pub, "--release-pub", pub)
    # The record names the release by file name, which the signed copy keeps.
    assert r.returncode == 3, str(r)
    assert "CHANGED" not in r.stdout
