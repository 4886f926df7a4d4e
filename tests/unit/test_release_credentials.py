"""C2PA content credentials of a release copy (docs/release-credentials.md), on MP4s made here.

Each signed file goes through c2pa-python's own Reader (the stock reader) and through
tools.release.credentials.read; a private CA (private_ca.py) certifies the release keys
from the CSR `bwc release-csr` makes."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from fractions import Fraction
from pathlib import Path

import av
import c2pa
import nacl.signing
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from private_ca import make_root

from tools.release import credentials
from tools.release.certs import make_csr
from tools.release.credentials import CredentialsError

WIDTH, HEIGHT, FPS, FRAMES = 64, 48, 10, 12
OPERATIONS = [
    {"op": "region", "start_s": 0.2, "end_s": 0.8, "box": [8, 8, 16, 16], "style": "blur", "track": False,
     "label": "face"},
    {"op": "region", "start_s": 0.0, "end_s": 1.2, "box": [300, 180, 160, 90], "style": "mask", "track": False,
     "label": None},
    {"op": "audio", "start_s": 0.1, "end_s": 0.5, "mode": "tone", "tone_hz": 1000, "label": "a child's name"},
    {"op": "cut", "start_s": 0.9, "end_s": 1.1, "reason": "medical treatment"},
]
ENCODER = {"video": "libx264 crf 16", "audio": "aac 192k"}
RECORD_SHA256 = "5" * 64


def _write_mp4(path, shade: int) -> None:
    """A small H.264 + AAC MP4, as bwc redact writes one (a moov after mdat, not fragmented)."""
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        audio = out.add_stream("aac", rate=16000)
        audio.layout = "mono"
        for i in range(FRAMES):
            img = np.full((HEIGHT, WIDTH, 3), (shade + 17 * i) % 256, np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            out.mux(video.encode(frame))
        samples = (0.2 * np.sin(np.arange(16000 * FRAMES // FPS) * 0.05)).astype(np.float32)
        for start in range(0, len(samples), 1024):
            chunk = av.AudioFrame.from_ndarray(samples[None, start:start + 1024], format="flt", layout="mono")
            chunk.sample_rate, chunk.pts = 16000, start
            out.mux(audio.encode(chunk))
        out.mux(video.encode(None))
        out.mux(audio.encode(None))


class Release:
    def __init__(self, key, chain):
        self.key, self.chain = key, chain

    @property
    def pub_hex(self) -> str:
        return bytes(self.key.verify_key).hex()


def _release_key(ca, name="Records Unit") -> Release:
    key = nacl.signing.SigningKey.generate()
    return Release(key, ca.issue(make_csr(key, f"CN={name},O=City Police,C=US")))


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    base = tmp_path_factory.mktemp("credentials")
    original, release = base / "EVENT.mp4", base / "EVENT.release.unsigned.mp4"
    _write_mp4(original, 40)
    _write_mp4(release, 90)
    return base, original, release


@pytest.fixture(scope="module")
def ca():
    return make_root()


@pytest.fixture(scope="module")
def releaser(ca):
    return _release_key(ca)


def _embed(media, release: Release, out_name: str, **overrides):
    base, original, unsigned = media
    out = base / out_name
    if out.exists():
        out.unlink()
    kwargs = dict(original_mp4=str(original), record_sha256=RECORD_SHA256, record_name="EVENT.release.json",
                  actions=OPERATIONS, cert_chain_pem=release.chain, release_key=release.key, encoder=ENCODER)
    kwargs.update(overrides)
    credentials.embed(str(unsigned), str(out), **kwargs)
    return out


@pytest.fixture(scope="module")
def signed(media, releaser):
    return _embed(media, releaser, "EVENT.release.mp4")


def _decoded(path):
    with av.open(str(path)) as f:
        return [(frame.pts, frame.to_ndarray(format="rgb24")) for frame in f.decode(video=0)]


def test_stock_reader_with_the_test_anchor_trusts_the_manifest(signed, ca, media):
    context = c2pa.Context.from_dict({"trust": {"trust_anchors": ca.anchor_pem.decode()},
                                      "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}})
    with open(signed, "rb") as f, c2pa.Reader("video/mp4", f, context=context) as reader:
        assert reader.get_validation_state() == "Trusted"
        store = json.loads(reader.json())
    manifest = store["manifests"][store["active_manifest"]]
    assert manifest["title"] == "EVENT.release.mp4"
    assert manifest["claim_generator_info"][0]["name"] == "openbwc"
    assert manifest["signature_info"]["alg"] == "Ed25519"
    assert manifest["signature_info"]["common_name"] == "Records Unit"
    labels = [a["label"] for a in manifest["assertions"]]
    assert "c2pa.actions.v2" in labels and "org.openbwc.release" in labels
    [ingredient] = manifest["ingredients"]
    assert (ingredient["title"], ingredient["relationship"], ingredient["format"]) == \
        ("EVENT.mp4", "parentOf", "video/mp4")
    # Nothing of the unredacted original's pixels rides along: no thumbnail of it.
    assert "thumbnail" not in ingredient and "thumbnail" not in manifest


def test_read_gives_the_signer_key_assertion_actions_and_ingredient(signed, ca, releaser, media):
    _, original, _ = media
    creds = credentials.read(str(signed), ca.anchor_pem)
    assert creds.validation_state == "Trusted" and creds.validation_errors == ()
    assert creds.signer_public_key_hex == releaser.pub_hex
    assert creds.release_assertion == {"kind": "release", "record": "EVENT.release.json",
                                       "record_sha256": RECORD_SHA256,
                                       "original_sha256": hashlib.sha256(original.read_bytes()).hexdigest()}
    assert creds.ingredient_title == "EVENT.mp4" and creds.ingredient_relationship == "parentOf"
    assert creds.ingredient_sha256 == hashlib.sha256(original.read_bytes()).hexdigest()
    assert creds.claim_generator.startswith("openbwc/")
    names = [a["action"] for a in creds.actions]
    assert names == ["c2pa.opened", "c2pa.filtered", "c2pa.edited", "c2pa.edited", "c2pa.trimmed",
                     "c2pa.transcoded"]
    # c2pa.opened points at the ingredient by hashed URI; each redaction carries its operation.
    assert creds.actions[0]["parameters"]["ingredients"][0]["url"].endswith("c2pa.ingredient.v3")
    carried = [a["parameters"]["org.openbwc.operation"] for a in creds.actions[1:-1]]
    assert carried[0]["box"] == {"x": 8, "y": 8, "width": 16, "height": 16}
    assert carried[1]["box"] == {"x": 300, "y": 180, "width": 160, "height": 90}
    assert [dict(c, box=None) for c in carried[:2]] == [dict(o, box=None) for o in OPERATIONS[:2]]
    assert carried[2:] == OPERATIONS[2:]
    assert creds.actions[-1]["parameters"]["org.openbwc.encoder"] == ENCODER
    # ... and says where, in C2PA's regions of interest: media seconds, and pixels for a box.
    face, _, audio, cut = (a["changes"][0] for a in creds.actions[1:-1])
    assert face["region"] == [{"type": "temporal", "time": {"type": "npt", "start": "0.2", "end": "0.8"}},
                              {"type": "spatial", "shape": {"type": "rectangle", "unit": "pixel",
                                                            "origin": {"x": 8.0, "y": 8.0},
                                                            "width": 16.0, "height": 16.0}}]
    assert face["description"] == "face" and audio["description"] == "a child's name"
    assert cut["region"] == [{"type": "temporal", "time": {"type": "npt", "start": "0.9", "end": "1.1"}}]
    assert credentials.check(creds, releaser.pub_hex, RECORD_SHA256) == []


def test_the_signed_mp4_decodes_to_the_same_frames(signed, media):
    _, _, unsigned = media
    before, after = _decoded(unsigned), _decoded(signed)
    assert [pts for pts, _ in after] == [pts for pts, _ in before] and len(after) == FRAMES
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(before, after))


def test_another_release_key_with_its_own_valid_certificate_is_named(media, ca, releaser):
    other = _release_key(ca, "Someone Else")
    out = _embed(media, other, "other-key.release.mp4")
    creds = credentials.read(str(out), ca.anchor_pem)
    assert creds.validation_state == "Trusted"          # a valid credential, just not the release key's
    problems = credentials.check(creds, releaser.pub_hex, RECORD_SHA256)
    assert problems == [f"C2PA manifest signed by key {other.pub_hex}, not the release key {releaser.pub_hex}"]


def test_an_anchor_that_did_not_issue_the_certificate_is_not_trusted(signed, releaser):
    stranger = make_root("Another Agency Root")
    creds = credentials.read(str(signed), stranger.anchor_pem)
    assert creds.validation_state == "Valid" and "signingCredential.untrusted" in creds.validation_errors
    [problem] = credentials.check(creds, releaser.pub_hex, RECORD_SHA256)
    assert problem.startswith("C2PA manifest not trusted by the trust anchor: Valid (signingCredential.untrusted")


@pytest.mark.parametrize("anchors", [b"", b"garbage", "caf\u00e9".encode(), b"-----BEGIN CERTIFICATE-----\nAAAA\n"])
def test_anchors_that_are_not_pem_certificates_are_one_line(signed, anchors):
    with pytest.raises(CredentialsError, match="^the trust anchors are not PEM certificates$"):
        credentials.read(str(signed), anchors)


def test_without_an_anchor_the_manifest_is_at_best_valid(signed):
    assert credentials.read(str(signed), None).validation_state == "Valid"


def test_bytes_altered_after_signing_make_the_manifest_invalid(signed, ca, releaser, tmp_path):
    data = bytearray(signed.read_bytes())
    mdat = data.index(b"mdat")
    data[mdat + 200] ^= 0x01                       # one bit of the video
    altered = tmp_path / "altered.mp4"
    altered.write_bytes(bytes(data))
    creds = credentials.read(str(altered), ca.anchor_pem)
    assert creds.validation_state == "Invalid"
    assert "assertion.bmffHash.mismatch" in creds.validation_errors
    assert credentials.check(creds, releaser.pub_hex, RECORD_SHA256)[0].startswith("C2PA manifest not trusted")


def test_a_record_hash_or_kind_other_than_the_records_is_named(signed, ca, releaser):
    creds = credentials.read(str(signed), ca.anchor_pem)
    other = "6" * 64
    assert credentials.check(creds, releaser.pub_hex, other) == [
        f"C2PA org.openbwc.release assertion names record SHA-256 {RECORD_SHA256}, not this record's {other}"]
    wrong_kind = credentials.Credentials(**dict(creds.__dict__, release_assertion=dict(
        creds.release_assertion, kind="export")))
    assert credentials.check(wrong_kind, releaser.pub_hex, RECORD_SHA256) == [
        "C2PA org.openbwc.release assertion's kind is 'export', not 'release'"]


def test_check_holds_the_manifest_to_the_records_original_and_operations(signed, ca, releaser, media):
    _, original, _ = media
    creds = credentials.read(str(signed), ca.anchor_pem)
    original_sha256 = hashlib.sha256(original.read_bytes()).hexdigest()
    assert credentials.check(creds, releaser.pub_hex, RECORD_SHA256, original_sha256=original_sha256,
                             operations=OPERATIONS) == []
    assert credentials.check(creds, releaser.pub_hex, RECORD_SHA256, original_sha256="7" * 64) == [
        f"C2PA manifest names original SHA-256 {original_sha256}, not the record's {'7' * 64}"]
    fewer = OPERATIONS[:-1]
    assert credentials.check(creds, releaser.pub_hex, RECORD_SHA256, operations=fewer) == [
        "C2PA manifest's actions declare 4 redactions other than the record's 3 operations"]
    moved = [dict(OPERATIONS[0], start_s=0.3)] + OPERATIONS[1:]
    assert credentials.check(creds, releaser.pub_hex, RECORD_SHA256, operations=moved) == [
        "C2PA manifest's actions declare 4 redactions other than the record's 4 operations"]


def test_embed_refuses_a_chain_for_another_key_and_writes_nothing(media, ca, releaser):
    other = _release_key(ca, "Someone Else")
    with pytest.raises(CredentialsError, match="not for this release key"):
        _embed(media, Release(releaser.key, other.chain), "refused.mp4")
    assert not (media[0] / "refused.mp4").exists()


def test_embed_refuses_a_certificate_without_the_signing_eku(media, ca):
    key = nacl.signing.SigningKey.generate()
    release = Release(key, ca.issue(make_csr(key, "CN=No EKU"), ekus=()))
    with pytest.raises(CredentialsError) as info:
        _embed(media, release, "no-eku.mp4")
    assert str(info.value) == ("the release certificate cannot sign C2PA claims: ExtendedKeyUsage lacks "
                               "id-kp-emailProtection (1.3.6.1.5.5.7.3.4) (docs/release-credentials.md §3)")
    assert not (media[0] / "no-eku.mp4").exists()


def test_embed_never_replaces_an_existing_file(media, releaser, tmp_path):
    base, original, unsigned = media
    existing = tmp_path / "EVENT.release.mp4"
    existing.write_bytes(b"keep me")
    with pytest.raises(CredentialsError, match="cannot write"):
        credentials.embed(str(unsigned), str(existing), original_mp4=str(original), record_sha256=RECORD_SHA256,
                          record_name="r.json", actions=[], cert_chain_pem=releaser.chain,
                          release_key=releaser.key)
    assert existing.read_bytes() == b"keep me"


def test_the_signed_file_is_owner_only(signed):
    assert os.stat(signed).st_mode & 0o777 == 0o600


@pytest.mark.parametrize("content", [b"", b"not an mp4 at all", b"\x00\x00\x00\x08free"], ids=["empty", "text", "box"])
def test_garbage_is_one_line(tmp_path, content, ca):
    path = tmp_path / "garbage.mp4"
    path.write_bytes(content)
    with pytest.raises(CredentialsError) as info:
        credentials.read(str(path), ca.anchor_pem)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_an_mp4_without_a_manifest_is_one_line(media, ca):
    with pytest.raises(CredentialsError, match=r"no C2PA manifest$"):
        credentials.read(str(media[2]), ca.anchor_pem)


def test_a_missing_file_is_one_line(tmp_path):
    with pytest.raises(CredentialsError) as info:
        credentials.read(str(tmp_path / "absent.mp4"), None)
    assert "\n" not in str(info.value)


def test_a_truncated_signed_file_is_one_line_or_invalid(signed, ca, tmp_path):
    data = signed.read_bytes()
    for cut in (20, 100, len(data) // 2, len(data) - 10):
        path = tmp_path / f"cut-{cut}.mp4"
        path.write_bytes(data[:cut])
        try:
            creds = credentials.read(str(path), ca.anchor_pem)
        except CredentialsError as exc:
            assert "\n" not in str(exc)
        else:
            assert creds.validation_state != "Trusted"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=4096))
def test_random_bytes_are_a_credentials_error(tmp_path, content):
    path = tmp_path / "random.mp4"
    path.write_bytes(content)
    with pytest.raises(CredentialsError) as info:
        credentials.read(str(path), None)
    assert "\n" not in str(info.value)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_signed_file_with_random_damage_is_never_trusted_nor_a_traceback(signed, ca, tmp_path, data):
    raw = bytearray(signed.read_bytes())
    store_start = raw.index(b"uuid")
    # Damage the manifest store most of the time: that is where the parsers are.
    for _ in range(data.draw(st.integers(1, 8))):
        where = data.draw(st.integers(store_start, min(len(raw) - 1, store_start + 14000)))
        raw[where] = data.draw(st.integers(0, 255))
    path = tmp_path / "damaged.mp4"
    path.write_bytes(bytes(raw))
    if bytes(raw) == signed.read_bytes():
        return
    try:
        creds = credentials.read(str(path), ca.anchor_pem)
    except CredentialsError as exc:
        assert "\n" not in str(exc)
    else:
        # A change inside an excluded region (padding) may leave it trusted; then every
        # check still holds to the same key and record.
        if creds.validation_state == "Trusted":
            assert creds.signer_public_key_hex is not None


def test_a_copy_of_the_signed_file_reads_the_same(signed, ca, tmp_path):
    copy = tmp_path / "copy.mp4"
    shutil.copyfile(signed, copy)
    assert credentials.read(str(copy), ca.anchor_pem) == credentials.read(str(signed), ca.anchor_pem)


def test_the_manifest_definition_is_the_documented_vector():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "release-credentials.md").read_text(encoding="utf-8")
    block = doc.split("<!-- manifest-definition-vector -->\n```json\n", 1)[1].split("```", 1)[0]
    expected = json.loads(block.replace("<version>", credentials._tool_version()))
    operations = [
        {"op": "region", "start_s": 4.0, "end_s": 9.5, "box": [320, 180, 160, 90], "style": "blur", "track": False,
         "label": "house number"},
        {"op": "audio", "start_s": 12.0, "end_s": 14.5, "mode": "mute", "tone_hz": None, "label": "a child's name"},
        {"op": "cut", "start_s": 20.0, "end_s": 31.0, "reason": "medical treatment"},
    ]
    encoder = {"video": "libx264 crf 16 veryfast yuv420p", "audio": "aac 192k"}
    assert credentials.manifest_definition("EVENT.release.mp4", "EVENT.release.json", "1" * 64, "2" * 64,
                                           operations, encoder) == expected


VECTOR = Path(__file__).resolve().parents[1] / "vectors" / "release" / "credentials"


def test_the_vector_reads_trusted_signed_by_its_release_key():
    creds = credentials.read(str(VECTOR / "release.mp4"), (VECTOR / "anchor.pem").read_bytes())
    key_hex = bytes(nacl.signing.SigningKey(bytes(range(32))).verify_key).hex()
    assert creds.validation_state == "Trusted" and creds.signer_public_key_hex == key_hex
    assert creds.signer_subject == "Vector Records Unit"
    assert creds.release_assertion == {
        "kind": "release", "record": "EVENT.release.json", "record_sha256": "1" * 64,
        "original_sha256": "78d5b6916b542abc842d5a966df4a435d1083b7cee812ebff1bbb2bb59efea16"}
    assert [a["action"] for a in creds.actions] == ["c2pa.opened", "c2pa.edited", "c2pa.transcoded"]
    assert credentials.check(creds, key_hex, "1" * 64) == []
    assert credentials.read(str(VECTOR / "release.mp4"), None).validation_state == "Valid"


def test_the_vector_with_a_byte_of_its_mdat_changed_is_invalid(tmp_path):
    data = bytearray((VECTOR / "release.mp4").read_bytes())
    data[data.index(b"mdat") + 20] ^= 0x80
    (tmp_path / "changed.mp4").write_bytes(bytes(data))
    creds = credentials.read(str(tmp_path / "changed.mp4"), (VECTOR / "anchor.pem").read_bytes())
    assert creds.validation_state == "Invalid"
