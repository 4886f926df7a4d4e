"""verify-release's comparison (docs/release.md §5) on files made here: an honest re-encode
passes whatever the sound's first timestamp; a shifted or changed sound does not."""
from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from tools.release.compare import Comparison, compare_audio, compare_video
from tools.release.media import redact_media
from tools.release.plan import parse_plan

RATE = 48_000
PLAN = 'version = 1\n[release]\nreleased_by = "t"\nreason = "t"\n'


def _original(path, audio_start: int, seconds: float = 3.0, seed: int = 1):
    """64x48 video at 10 fps and band-limited noise starting at sample `audio_start`."""
    rng = np.random.default_rng(seed)
    with av.open(str(path), "w", format="mp4") as out:
        v = out.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        v.time_base = v.codec_context.time_base = Fraction(1, 1_000_000)
        a = out.add_stream("aac", rate=RATE)
        a.layout = "mono"
        for i in range(round(seconds * 10)):
            img = np.full((48, 64, 3), 40 + 5 * i, np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = i * 100_000, Fraction(1, 1_000_000)
            for p in v.encode(frame):
                out.mux(p)
        sound = np.convolve(rng.standard_normal(round(seconds * RATE)), np.ones(8) / 8, "same") * 0.2
        for k in range(0, len(sound) - 1024, 1024):
            frame = av.AudioFrame.from_ndarray(sound[None, k:k + 1024].astype(np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = RATE, audio_start + k, Fraction(1, RATE)
            for p in a.encode(frame):
                out.mux(p)
        for stream in (v, a):
            for p in stream.encode(None):
                out.mux(p)


@pytest.mark.parametrize("audio_start", [0, 59392, 107648, 12345])
def test_an_honest_reencode_matches_whatever_the_first_audio_timestamp(tmp_path, audio_start):
    _original(tmp_path / "o.mp4", audio_start)
    redact_media(str(tmp_path / "o.mp4"), str(tmp_path / "r.mp4"), parse_plan(PLAN, "p"))
    result = Comparison()
    compare_video(str(tmp_path / "o.mp4"), str(tmp_path / "r.mp4"), [], result)
    compare_audio(str(tmp_path / "o.mp4"), str(tmp_path / "r.mp4"), [], result)
    assert result.count == 0, result.differences
    assert result.audio_windows >= 20 and result.worst_audio_ratio < 0.05


def test_sound_moved_by_more_than_an_aac_frame_is_a_change(tmp_path):
    _original(tmp_path / "o.mp4", 107648)
    _original(tmp_path / "moved.mp4", 107648 + 4800)      # the same sound, 0.1 s later
    result = Comparison()
    compare_audio(str(tmp_path / "o.mp4"), str(tmp_path / "moved.mp4"), [], result)
    assert result.count > 0


def test_other_sound_is_a_change(tmp_path):
    _original(tmp_path / "o.mp4", 107648)
    _original(tmp_path / "other.mp4", 107648, seed=2)
    result = Comparison()
    compare_audio(str(tmp_path / "o.mp4"), str(tmp_path / "other.mp4"), [], result)
    assert result.count > 0 and "changed outside every declared span" in result.differences[0]


# The span ends at 0.96 s, its guard at 1.0027 s, just past a 0.1 s grid line: a grid would
# skip 1.0-1.1 s whole, and a mute in 1.003-1.075 s (its codec smear short of 1.1) with it.
@pytest.mark.parametrize("mute_s", [(0.96 + 2048 / RATE + 0.001, 1.075), (0.5, 0.53)])
def test_a_short_undeclared_mute_beside_a_span_or_anywhere_is_a_change(tmp_path, mute_s):
    """Every sample outside the spans and their guards is compared: 78 ms muted right after a
    declared span's guard (where a fixed 0.1 s window grid left sound unlooked at), or 30 ms
    anywhere."""
    _original(tmp_path / "o.mp4", 0)
    declared = "[[audio]]\nstart_s = 0.8\nend_s = 0.96\n"
    redact_media(str(tmp_path / "o.mp4"), str(tmp_path / "r.mp4"), parse_plan(PLAN + declared, "p"))
    extra = f"[[audio]]\nstart_s = {mute_s[0]:.6f}\nend_s = {mute_s[1]:.6f}\n"
    redact_media(str(tmp_path / "o.mp4"), str(tmp_path / "t.mp4"), parse_plan(PLAN + declared + extra, "p"))
    spans = [[0.8, 0.96, "mute"]]
    honest, tampered = Comparison(), Comparison()
    compare_audio(str(tmp_path / "o.mp4"), str(tmp_path / "r.mp4"), spans, honest)
    compare_audio(str(tmp_path / "o.mp4"), str(tmp_path / "t.mp4"), spans, tampered)
    assert honest.count == 0, honest.differences
    assert tampered.count > 0


def test_sound_whose_timestamps_leap_far_past_it_is_refused_not_laid_out(tmp_path):
    """A hostile release whose audio timestamps jump by hours would have the layout allocate
    gigabytes: refused as a file that cannot be compared (verify-release: exit 1)."""
    with av.open(str(tmp_path / "leap.mp4"), "w", format="mp4") as out:
        a = out.add_stream("aac", rate=RATE)
        a.layout = "mono"
        for k, at in enumerate((0, 1024, 3 * 3600 * RATE)):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = RATE, at, Fraction(1, RATE)
            for p in a.encode(frame):
                out.mux(p)
        for p in a.encode(None):
            out.mux(p)
    _original(tmp_path / "o.mp4", 0)
    with pytest.raises(ValueError, match="timestamps run to"):
        compare_audio(str(tmp_path / "o.mp4"), str(tmp_path / "leap.mp4"), [], Comparison())
