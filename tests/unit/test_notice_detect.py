"""The proof-of-notice detector (tools/notice.py) on AAC-encoded MP4s: the notice is found
where it was played, through room tone, a loud soundtrack and a quiet speaker, and never
found where it was not played."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from device.announce_assets import load_assets
from notice_signals import RATE_HZ, room_tone, soundtrack, speech_like, to_rate, write_aac_mp4
from tools.notice import SCORE_THRESHOLD, Cue, detect_cues, resample, score_curve

ASSETS = load_assets(None, ["en", "es"])
EN, ES = ASSETS.get("en"), ASSETS.get("es")
EN48, ES48 = to_rate(EN.samples, EN.sample_rate_hz), to_rate(ES.samples, ES.sample_rate_hz)
MARGIN = 0.15      # every verdict below clears the threshold by at least this much


def cue(asset, media_s: float) -> Cue:
    return Cue(media_s, asset.samples, asset.sample_rate_hz)


def recording(tmp_path, seconds: float, plays: list[tuple[np.ndarray, float]], gain: float = 0.5,
              soundtrack_db: float | None = None) -> str:
    """An AAC MP4 of room tone, with each (clip, at_s) played at `gain`, and optionally a
    soundtrack `soundtrack_db` relative to the English notice's level as heard."""
    pcm = room_tone(round(seconds * RATE_HZ))
    for clip, at_s in plays:
        start = round(at_s * RATE_HZ)
        pcm[start:start + len(clip)] += gain * clip
    if soundtrack_db is not None:
        pcm += soundtrack(seconds, gain * np.std(EN48) * 10 ** (soundtrack_db / 20))
    path = str(tmp_path / "audio.mp4")
    write_aac_mp4(path, pcm)
    return path


@pytest.mark.parametrize("gain, soundtrack_db", [(0.5, None), (0.5, 0.0), (0.1, None), (0.1, 0.0)],
                         ids=["room-tone", "loud-soundtrack", "quiet-speaker", "quiet-speaker-loud-soundtrack"])
def test_each_language_is_found_where_it_was_played(tmp_path, gain, soundtrack_db):
    en_at, es_at = 4.25, 4.25 + EN.duration_us / 1e6
    path = recording(tmp_path, 14, [(EN48, en_at), (ES48, es_at)], gain, soundtrack_db)
    # Logged times a little off the truth, within the timing tolerance (±100 ms): found.
    found_en, found_es = detect_cues(path, [cue(EN, en_at + 0.08), cue(ES, es_at - 0.06)])
    for found, truth_s in ((found_en, en_at), (found_es, es_at)):
        assert found.found, found
        assert abs(found.found_media_s - truth_s) <= 0.050, found
        assert found.score >= SCORE_THRESHOLD + MARGIN, found


def test_a_cue_logged_but_not_in_the_audio_is_not_found(tmp_path):
    # As if the speaker were muted or broken: the log says it played, the audio says no.
    path = recording(tmp_path, 12, [], soundtrack_db=0.0)
    for found in detect_cues(path, [cue(EN, 3.0), cue(ES, 5.0)]):
        assert not found.found and found.score <= SCORE_THRESHOLD - MARGIN, found


def test_the_other_language_is_not_mistaken_for_the_logged_one(tmp_path):
    path = recording(tmp_path, 12, [(ES48, 3.0)])
    [found] = detect_cues(path, [cue(EN, 3.0)])
    assert not found.found and found.score <= SCORE_THRESHOLD - MARGIN, found


def test_a_cue_outside_the_audio_is_not_found_and_says_why(tmp_path):
    path = recording(tmp_path, 6, [(EN48, 1.0)])
    before, after, edge = detect_cues(path, [cue(EN, -30.0), cue(EN, 60.0), cue(EN, 5.0)])
    assert not before.found and not after.found and not edge.found
    assert "ends before" in after.problem
    assert before.problem and "cover" in before.problem


def test_no_false_detection_in_ten_minutes_of_speech_like_audio_without_a_cue(tmp_path):
    """10 min with English absent (reversed, shuffled syllables of both notices, whole
    Spanish notices every 20 s, noise, room tone), searched for English at every lag;
    and 3 min the other way round. The highest score anywhere stays well below the threshold."""
    worst = {}
    for asset, other, seconds in ((EN, ES48, 600), (ES, EN48, 180)):
        pcm = speech_like(seconds, [EN48, ES48], 0.5 * np.std(EN48), forward=[other]) + room_tone(seconds * RATE_HZ)
        path = str(tmp_path / f"no-{asset.language}.mp4")
        write_aac_mp4(path, pcm)
        # Windows every 4 s: each searches lags from 1 s before to 3 s after its logged time.
        results = detect_cues(path, [cue(asset, t) for t in np.arange(1.0, seconds - 3, 4.0)])
        assert not any(r.found for r in results)
        worst[asset.language] = max(r.score for r in results)
    assert max(worst.values()) <= SCORE_THRESHOLD - MARGIN, worst


def test_the_score_ignores_gain_and_a_steady_tone():
    rng = np.random.default_rng(3)
    template = resample(EN.samples / 32768.0, EN.sample_rate_hz, 16_000)
    window = np.concatenate([0.001 * rng.standard_normal(8000), template, 0.001 * rng.standard_normal(8000)])
    tone = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(len(window)) / 16_000)   # 20 dB above the notice
    loud, quiet = score_curve(window + tone, template), score_curve(0.01 * window + 0.01 * tone, template)
    assert int(np.argmax(loud)) == int(np.argmax(quiet)) == 8000
    assert abs(loud.max() - quiet.max()) < 1e-6 and loud.max() > 0.9


@settings(max_examples=40, deadline=None)
@given(window=st.lists(st.floats(-1, 1, allow_nan=False), min_size=0, max_size=3000),
       template=st.lists(st.floats(-1, 1, allow_nan=False), min_size=0, max_size=1000))
def test_score_curve_is_bounded_for_any_input(window, template):
    curve = score_curve(np.array(window, dtype=float), np.array(template, dtype=float))
    assert len(curve) == (max(0, len(window) - len(template) + 1) if template else 0)
    assert np.all(np.isfinite(curve)) and np.all(np.abs(curve) <= 1.0)


def test_a_cue_heard_seconds_away_from_its_logged_time_is_not_proof_of_it():
    # One notice in the audio at 3.0 s; a record that claims it started at 0.6 s must not
    # be "found" by it (the window reaches it, but a replay is not the start cue).
    from tools.notice import Cue, TIMING_TOLERANCE_MS, detect_in_window, template_of
    from device.announce_assets import load_assets
    asset = load_assets(None, ["en"]).get("en")
    rate = 16_000
    template = template_of(Cue(0.0, asset.samples, asset.sample_rate_hz))
    rng = np.random.default_rng(3)
    audio = rng.normal(0, 0.01, rate * 8).astype(np.float64)
    at = 3 * rate
    audio[at:at + len(template)] += 0.3 * template
    heard = detect_in_window(audio, 0.0, Cue(3.0, asset.samples, asset.sample_rate_hz), template)
    assert heard.found and abs(heard.error_ms) < 2
    elsewhere = detect_in_window(audio, 0.0, Cue(0.6, asset.samples, asset.sample_rate_hz), template)
    assert not elsewhere.found and elsewhere.score >= 0.35
    assert abs(elsewhere.error_ms - 2400) < TIMING_TOLERANCE_MS
