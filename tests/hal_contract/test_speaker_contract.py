"""Speaker: the spoken recording notice (ANN-*) is queued, never blocks, never overlaps.

Clips are flat tones at distinct levels, so what a bystander heard can be read back as a
sequence of clips however the backend resamples or pads with silence.
"""
from __future__ import annotations

import numpy as np
import pytest

from backends import PI_SPEAKER_RATE_HZ

RATE_HZ = PI_SPEAKER_RATE_HZ
# A generous bound on the time a backend needs beyond the clips' own length (aplay's start-up).
SLACK_S = 5.0


def clip(level: int, duration_s: float) -> np.ndarray:
    return np.full(round(duration_s * RATE_HZ), level, dtype=np.int16)


def heard_clips(rig) -> list[tuple[int, float]]:
    """(level, duration in s) of each stretch of sound heard, in order; silence is left out."""
    samples, rate_hz = rig.heard()
    runs: list[tuple[int, float]] = []
    edges = np.flatnonzero(np.diff(samples.astype(np.int32))) + 1
    for chunk in np.split(samples, edges):
        if len(chunk) and chunk[0] != 0:
            runs.append((int(chunk[0]), len(chunk) / rate_hz))
    return runs


def test_play_returns_at_once_and_is_playing_until_the_clip_is_out(speaker_rig):
    rig = speaker_rig
    rig.speaker.play(clip(1_000, 0.2), RATE_HZ, tag="notice-en")
    assert rig.speaker.is_playing()
    rig.wait_quiet(0.2 + SLACK_S)
    assert not rig.speaker.is_playing()
    assert heard_clips(rig) == [(1_000, pytest.approx(0.2, abs=0.002))]


def test_clips_queue_behind_each_other_in_order_and_whole(speaker_rig):
    # The notice in English then Spanish: one after the other, never mixed, never cut.
    rig = speaker_rig
    rig.speaker.play(clip(1_000, 0.15), RATE_HZ, tag="notice-en")
    rig.speaker.play(clip(-2_000, 0.1), RATE_HZ, tag="notice-es")
    rig.speaker.play(clip(3_000, 0.05), RATE_HZ)
    assert rig.speaker.is_playing()
    rig.wait_quiet(0.3 + SLACK_S)
    assert not rig.speaker.is_playing()
    assert heard_clips(rig) == [(1_000, pytest.approx(0.15, abs=0.002)),
                                (-2_000, pytest.approx(0.1, abs=0.002)),
                                (3_000, pytest.approx(0.05, abs=0.002))]


def test_a_clip_played_after_silence_plays_again(speaker_rig):
    rig = speaker_rig
    rig.speaker.play(clip(1_000, 0.05), RATE_HZ)
    rig.wait_quiet(0.05 + SLACK_S)
    rig.speaker.play(clip(2_000, 0.05), RATE_HZ)
    assert rig.speaker.is_playing()
    rig.wait_quiet(0.05 + SLACK_S)
    assert [level for level, _ in heard_clips(rig)] == [1_000, 2_000]


def test_nothing_plays_before_anything_is_queued(speaker_rig):
    assert not speaker_rig.speaker.is_playing()


@pytest.mark.parametrize("samples", [np.zeros(100, np.float32), np.zeros((100, 2), np.int16)],
                         ids=["float", "stereo"])
def test_anything_but_mono_int16_is_refused(speaker_rig, samples):
    rig = speaker_rig
    # The simulator raises TypeError, the Pi ValueError; the firmware catches neither, and
    # both name what is wrong, so the contract is "refused, saying int16".
    with pytest.raises((TypeError, ValueError), match="int16"):
        rig.speaker.play(samples, RATE_HZ)
    assert not rig.speaker.is_playing()


def test_a_non_positive_sample_rate_is_refused(speaker_rig):
    rig = speaker_rig
    with pytest.raises(ValueError, match="sample.rate"):
        rig.speaker.play(clip(1_000, 0.01), 0)
    assert not rig.speaker.is_playing()
