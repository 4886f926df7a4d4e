"""`bwc verify-release` (docs/release.md §5): an honest release is accepted; a release with
an edit its record does not declare, a forged record or another key's record is not."""
from __future__ import annotations

import json
import shutil
from fractions import Fraction

import av
import pytest

from tools.release.media import redact_media
from tools.release.plan import parse_plan

from tests.tool.release_helpers import resign_record

pytestmark = pytest.mark.tool

HEAD = 'version = 1\n[release]\nreleased_by = "R. Officer"\nreason = "court order 17"\n'


@pytest.fixture(scope="module")
def keys(bwc, tmp_path_factory):
    base = tmp_path_factory.mktemp("release-keys")
    for name in ("ours", "theirs"):
        assert bwc("keygen", "--release", "--out", base / name).returncode == 0
    return {name: (base / name / "release.key", base / name / "release.pub") for name in ("ours", "theirs")}


@pytest.fixture(scope="module")
def honest(bwc, export_pinned, keys, tmp_path_factory):
    """An honest release of the session recording's first event: a region blurred, a span muted."""
    mp4 = sorted(export_pinned.out.glob("event-*.mp4"))[0]
    side = json.loads(mp4.with_suffix(".json").read_text())
    with av.open(str(mp4)) as c:
        audio_start_s = float(next(c.decode(audio=0)).time)
    base = tmp_path_factory.mktemp("honest")
    plan_text = HEAD + (f"[[region]]\nstart_s = 0\nend_s = {side['media_s'] / 2:.3f}\nbox = [20, 20, 80, 60]\n"
                        f"[[audio]]\nstart_s = {audio_start_s + 0.2:.3f}\nend_s = {audio_start_s + 0.6:.3f}\n")
    (base / "plan.toml").write_text(plan_text)
    r = bwc("redact", mp4, "--plan", base / "plan.toml", "--release-key", keys["ours"][0], "--out", base / "out")
    assert r.returncode == 0, str(r)
    release = base / "out" / (mp4.stem + ".release.mp4")
    return mp4, release, plan_text, audio_start_s


def _verify(bwc, release, original, recording, keys, which="ours", *extra):
    return bwc("verify-release", release, "--original", original, "--device-pub", recording.device.pub,
               "--release-pub", keys[which][1], *extra)


def test_an_honest_release_is_accepted_against_the_export_and_the_storage(bwc, honest, recording, keys):
    mp4, release, _, _ = honest
    r = _verify(bwc, release, mp4, recording, keys)
    assert r.returncode == 3, str(r)
    assert "HONEST against the export" in r.stdout and "CHANGED" not in r.stdout
    r = _verify(bwc, release, recording.storage, recording, keys, "ours", "--key", recording.custodian.key)
    assert r.returncode == 0, str(r)
    assert "Result: HONEST: the original minus exactly the declared redactions" in r.stdout
    assert "device signatures  valid" in r.stdout


def _tampered(honest, tmp_path, make) -> object:
    """A file under the release's own name, beside the honest release record."""
    mp4, release, plan_text, audio_start_s = honest
    out = tmp_path / "tampered"
    out.mkdir()
    target = out / release.name
    make(mp4, target, plan_text, audio_start_s)
    shutil.copy(release.with_suffix(".json"), out / release.with_suffix(".json").name)
    return target


def _with_plan(extra: str):
    def make(mp4, target, plan_text, audio_start_s):
        # a_late: 0.3 s of sound muted after the declared span (audio_start_s + 0.2 .. 0.6)
        text = plan_text + extra.format(a_late=audio_start_s + 0.9, a_late_end=audio_start_s + 1.2)
        redact_media(str(mp4), str(target), parse_plan(text, "p"))
    return make


def _drop_frame(mp4, target, plan_text, audio_start_s):
    """The honest redaction, then frame 12 left out of the file."""
    honest_copy = target.with_name("full.mp4")
    redact_media(str(mp4), str(honest_copy), parse_plan(plan_text, "p"))
    with av.open(str(honest_copy)) as src, av.open(str(target), "w", format="mp4") as dst:
        vin = src.streams.video[0]
        vout = dst.add_stream("libx264", rate=vin.average_rate)
        vout.width, vout.height, vout.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
        vout.time_base = vout.codec_context.time_base = Fraction(1, 1_000_000)
        for index, frame in enumerate(src.decode(vin)):
            if index != 12:
                for packet in vout.encode(frame):
                    dst.mux(packet)
        for packet in vout.encode(None):
            dst.mux(packet)
    honest_copy.unlink()


@pytest.mark.parametrize("edit, expected", [
    ("a patch painted outside every mask",
     _with_plan("[[region]]\nstart_s = 0.3\nend_s = 0.6\nbox = [200, 100, 40, 40]\nstyle = \"mask\"\n")),
    ("an audio span muted that the record does not name",
     _with_plan("[[audio]]\nstart_s = {a_late:.3f}\nend_s = {a_late_end:.3f}\n")),
    ("a frame dropped", _drop_frame),
], ids=["patch", "audio", "frame"])
def test_an_undeclared_edit_is_an_integrity_failure(bwc, honest, recording, keys, tmp_path, edit, expected):
    target = _tampered(honest, tmp_path, expected)
    r = _verify(bwc, target, honest[0], recording, keys)
    assert r.returncode == 1, (edit, str(r))
    assert "Result: INTEGRITY FAILURE" in r.stdout and "CHANGED" in r.stdout, (edit, str(r))


def test_a_forged_or_foreign_record_is_refused(bwc, honest, recording, keys, tmp_path):
    mp4, release, _, _ = honest
    record = json.loads(release.with_suffix(".json").read_text())
    record["masks"][0][2].append([0, 0, 320, 180, "mask", "region"])   # declare more, unsigned
    out = tmp_path / "forged"
    out.mkdir()
    shutil.copy(release, out / release.name)
    (out / release.with_suffix(".json").name).write_text(json.dumps(record))
    r = _verify(bwc, out / release.name, mp4, recording, keys)
    assert r.returncode == 1 and "signature does not hold" in r.stdout, str(r)
    r = _verify(bwc, release, mp4, recording, keys, "theirs")
    assert r.returncode == 1 and "another release key" in r.stdout, str(r)


def _unredacted(mp4, target, plan_text, audio_start_s):
    """Everything the honest plan does but the region: the box the record declares is not hidden."""
    kept = plan_text[:plan_text.index("[[region]]")] + plan_text[plan_text.index("[[audio]]"):]
    redact_media(str(mp4), str(target), parse_plan(kept, "p"))


def test_a_release_that_does_not_hide_what_its_record_declares_is_refused(bwc, honest, recording, keys, tmp_path):
    """Inside a declared mask anything may differ from the original, even nothing at all: the
    release itself must show the box hidden (docs/release.md §5)."""
    target = _tampered(honest, tmp_path, _unredacted)
    r = _verify(bwc, target, honest[0], recording, keys)
    assert r.returncode == 1, str(r)
    assert "is not hidden in the release" in r.stdout and "[20, 20, 80, 60] (region)" in r.stdout, str(r)


def test_an_edit_hidden_under_a_mask_no_operation_explains_is_found(bwc, honest, recording, keys, tmp_path):
    """The releaser's own key signs a record that declares a box no operation made, over a
    patch painted into the release: the signature holds, the patch is inside a declared
    mask, and the record is still refused for the box."""
    mp4, release, plan_text, audio_start_s = honest
    target = _tampered(honest, tmp_path, _with_plan(
        "[[region]]\nstart_s = 0.3\nend_s = 0.6\nbox = [200, 100, 40, 40]\nstyle = \"mask\"\n"))
    record = json.loads(release.with_suffix(".json").read_text())
    by_index = {m[0]: m for m in record["masks"]}
    with av.open(str(mp4)) as c:
        times = [float(f.time) for f in c.decode(video=0)]
    for index, t_s in enumerate(times):
        if 0.3 <= t_s < 0.6:
            by_index.setdefault(index, [index, round(t_s, 6), []])[2].append([200, 100, 40, 40, "mask", "region"])
    record["masks"] = [by_index[i] for i in sorted(by_index)]
    target.with_suffix(".json").write_bytes(resign_record(record, keys["ours"][0]))
    r = _verify(bwc, target, mp4, recording, keys)
    assert r.returncode == 1, str(r)
    assert "CHANGED" not in r.stdout and "which no operation explains" in r.stdout, str(r)


def test_a_record_that_is_not_one_is_an_integrity_failure(bwc, honest, recording, keys, tmp_path):
    mp4, release, _, _ = honest
    shutil.copy(release, tmp_path / release.name)
    (tmp_path / release.with_suffix(".json").name).write_text('{"format": "openbwc-release-record", "version": 1}')
    r = _verify(bwc, tmp_path / release.name, mp4, recording, keys)
    assert r.returncode == 1 and "unexpected or missing members" in r.stdout, str(r)


def test_the_wrong_original_is_named_as_such(bwc, honest, export_pinned, recording, keys):
    _, release, _, _ = honest
    other = sorted(export_pinned.out.glob("event-*.mp4"))[1]
    r = _verify(bwc, release, other, recording, keys)
    assert r.returncode == 1 and "not the one the release record names" in r.stdout, str(r)


@pytest.mark.parametrize("case", ["no record", "no such release", "storage without key", "public key as release key"])
def test_what_cannot_be_checked_is_one_line_and_exit_2(bwc, honest, recording, keys, tmp_path, case):
    mp4, release, _, _ = honest
    if case == "no record":
        shutil.copy(release, tmp_path / release.name)
        release = tmp_path / release.name
    if case == "no such release":
        release = tmp_path / "nothing.release.mp4"
    original = recording.storage if case == "storage without key" else mp4
    args = ["verify-release", release, "--original", original, "--device-pub", recording.device.pub,
            "--release-pub", keys["ours"][0] if case == "public key as release key" else keys["ours"][1]]
    r = bwc(*args)
    assert r.returncode == 2, str(r)
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("bwc verify-release: "), str(r)
