"""`bwc redact` (docs/release.md): a release copy hides what the plan names, changes
nothing else beyond the re-encoding tolerance, and carries a signed release record."""
from __future__ import annotations

import json
import os
import stat

import av
import numpy as np
import pytest

from device.evidence.keys import read_release_public
from tools.release.frame_ops import BLOCKS_ACROSS, MIN_BLOCK_PX
from tools.release.record import RecordError, check_signature, read_record

pytestmark = pytest.mark.tool

BLOCK_PX = 16            # the comparison's block (docs/release.md §5)
BLOCK_TOLERANCE = 8.0    # mean absolute difference per block, 0..255, outside every mask


@pytest.fixture(scope="module")
def release_key(bwc, tmp_path_factory):
    out = tmp_path_factory.mktemp("release-key") / "key"
    r = bwc("keygen", "--release", "--out", out)
    assert r.returncode == 0, str(r)
    assert "release public key" in r.stdout
    return out / "release.key", out / "release.pub"


@pytest.fixture(scope="module")
def event(export_pinned):
    assert export_pinned.result.returncode == 0, str(export_pinned.result)
    mp4 = sorted(export_pinned.out.glob("event-*.mp4"))[0]
    side = json.loads(mp4.with_suffix(".json").read_text())
    return mp4, side


def _plan(tmp_path, text: str):
    path = tmp_path / "plan.toml"
    path.write_text('version = 1\n[release]\nreleased_by = "R. Officer"\nreason = "court order 17"\n' + text)
    return path


def _frames(path):
    with av.open(str(path)) as c:
        return [(f.pts, f.to_ndarray(format="rgb24").astype(np.int16)) for f in c.decode(video=0)]


def _audio(path):
    with av.open(str(path)) as c:
        rate = c.streams.audio[0].rate
        chunks = [(f.pts, f.to_ndarray().reshape(-1)) for f in c.decode(audio=0)]
    start = chunks[0][0]
    return rate, start, np.concatenate([s for _, s in chunks])


def test_a_region_and_an_audio_span_are_hidden_and_nothing_else_changes(bwc, event, release_key, tmp_path):
    mp4, side = event
    media_s = side["media_s"]
    blur = (20, 20, 96, 64)
    masked = (200, 100, 80, 60)
    t0, t1 = round(media_s * 0.2, 3), round(media_s * 0.7, 3)
    a_rate, a_start, a_orig = _audio(mp4)
    audio_start_s = a_start / a_rate
    m0 = round(audio_start_s + 0.3, 3)
    m1 = round(m0 + 0.4, 3)
    plan = _plan(tmp_path, f"""
[[region]]
start_s = {t0}
end_s = {t1}
box = {list(blur)}
[[region]]
start_s = {t0}
end_s = {t1}
box = {list(masked)}
style = "mask"
[[audio]]
start_s = {m0}
end_s = {m1}
""")
    out = tmp_path / "release"
    r = bwc("redact", mp4, "--plan", plan, "--release-key", release_key[0], "--out", out)
    assert r.returncode == 0, str(r)
    release = out / (mp4.stem + ".release.mp4")
    record_path = out / (mp4.stem + ".release.json")
    assert sorted(p.name for p in out.iterdir()) == sorted([release.name, record_path.name])
    for p in (release, record_path):
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o600

    original, redacted = _frames(mp4), _frames(release)
    assert [p for p, _ in original] == [p for p, _ in redacted], "a frame was added, dropped or moved"
    hidden_frames = 0
    for (pts, a), (_, b) in zip(original, redacted):
        diff = np.abs(a - b).mean(axis=2)
        keep = np.ones(diff.shape, bool)
        t_s = pts / 1e6
        if t0 <= t_s < t1:
            hidden_frames += 1
            for x, y, w, h in (blur, masked):
                keep[max(0, y - BLOCK_PX):y + h + BLOCK_PX, max(0, x - BLOCK_PX):x + w + BLOCK_PX] = False
            x, y, w, h = masked
            assert b[y + 4:y + h - 4, x + 4:x + w - 4].max() <= 24, "the masked box is not black"
            x, y, w, h = blur
            edge = max(MIN_BLOCK_PX, min(w, h) // BLOCKS_ACROSS)      # one mosaic block, its inside
            block = b[y + 2:y + edge - 2, x + 2:x + edge - 2]
            assert block.std(axis=(0, 1)).max() < 6, "the blurred box still has detail inside a mosaic block"
        rows, cols = diff.shape[0] // BLOCK_PX, diff.shape[1] // BLOCK_PX
        blocks = diff[:rows * BLOCK_PX, :cols * BLOCK_PX].reshape(rows, BLOCK_PX, cols, BLOCK_PX).mean(axis=(1, 3))
        keep_blocks = keep[:rows * BLOCK_PX, :cols * BLOCK_PX].reshape(rows, BLOCK_PX, cols, BLOCK_PX).all(axis=(1, 3))
        assert blocks[keep_blocks].max() <= BLOCK_TOLERANCE, f"an unmasked block changed at {t_s:.3f} s"
    assert hidden_frames > 0

    rate, start, audio = _audio(release)
    assert rate == a_rate
    # Paired by timestamp (the AAC encoder's priming frame may start the release earlier).
    audio = audio[a_start - start:][:len(a_orig)]
    first, last = round((m0 - audio_start_s) * rate), round((m1 - audio_start_s) * rate)
    # AAC's window smears the edges by a frame (1024 samples); inside, silence.
    assert np.abs(audio[first + 2048:last - 2048]).max() < 1e-3
    assert np.abs(a_orig[first + 2048:last - 2048]).max() > 1e-3, "the original is silent there: no test"
    # Outside the span the sound is the original's, re-encoded: within 20 dB of it.
    outside = np.r_[0:max(0, first - 2048), last + 2048:len(audio)]
    error = audio[outside] - a_orig[outside]
    assert np.sqrt(np.mean(error ** 2)) < 0.1 * np.sqrt(np.mean(a_orig[outside] ** 2))

    record = read_record(str(record_path))
    check_signature(record, read_release_public(str(release_key[1])), "record")
    assert record["original"]["event_id"] == side["event_id"]
    assert [s["hash"] for s in record["original"]["segments"]] == [s["hash"] for s in side["segments"]]
    assert record["released_by"] == "R. Officer" and record["reason"] == "court order 17"
    assert [op["op"] for op in record["operations"]] == ["region", "region", "audio"]
    assert len(record["masks"]) == hidden_frames
    assert record["context"]["events"][0]["what"] == "activation"
    forged = dict(record, reason="nothing to see")
    with pytest.raises(RecordError, match="signature does not hold"):
        check_signature(forged, read_release_public(str(release_key[1])), "record")


@pytest.mark.parametrize("case", ["after the event", "outside the frame", "review missing", "inside storage",
                                  "a release as input", "public key"])
def test_a_release_that_cannot_be_right_is_refused_and_nothing_written(bwc, event, release_key, recording,
                                                                        tmp_path, case):
    mp4, side = event
    w, h = side["video"]["width"], side["video"]["height"]
    region = f'[[region]]\nstart_s = 0\nend_s = 0.5\nbox = [0, 0, 10, 10]\n'
    text = {"after the event": f'[[audio]]\nstart_s = 0\nend_s = {side["media_s"] + 1}\n',
            "outside the frame": f'[[region]]\nstart_s = 0\nend_s = 0.5\nbox = [{w - 5}, 0, 10, 10]\n',
            "review missing": '[faces]\nreview_required = true\n'}.get(case, region)
    plan = _plan(tmp_path, text)
    out = tmp_path / "release"
    key = release_key[1] if case == "public key" else release_key[0]
    if case == "inside storage":
        out = recording.storage / "release"
    if case == "a release as input":
        first = bwc("redact", mp4, "--plan", plan, "--release-key", key, "--out", tmp_path / "first")
        assert first.returncode == 0, str(first)
        mp4 = tmp_path / "first" / (mp4.stem + ".release.mp4")
        (tmp_path / "first" / (mp4.stem[:-len('.release')] + ".json")).write_text(json.dumps(side))
    r = bwc("redact", mp4, "--plan", plan, "--release-key", key, "--out", out)
    assert r.returncode == 2, str(r)
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("bwc redact: ")
    expected = {"after the event": "ends after the event", "outside the frame": "reaches outside the",
                "review missing": "review_required is set but no review_file", "inside storage": "inside evidence storage",
                "a release as input": "already a release copy", "public key": "release-secret"}[case]
    assert expected in r.stderr
    assert not out.exists()
