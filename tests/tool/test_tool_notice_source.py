"""`bwc run --source` with a loud soundtrack, then `bwc export`: the custodian's sidecar
finds both notices in the recorded audio (OpenBWC issue 6, through the real command line)."""
from __future__ import annotations

import json
import os
import sys
from fractions import Fraction

import av
import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit"))

from device.announce_assets import load_assets  # noqa: E402
from notice_signals import RATE_HZ, soundtrack, to_rate  # noqa: E402
from sim_source_clips import resample_linear, write_clip  # noqa: E402
from tools.notice import SCORE_THRESHOLD  # noqa: E402

pytestmark = pytest.mark.tool

CLIP_S, CLIP_FPS, CLIP_AUDIO_HZ = 12, 5, 44_100
ASSETS = load_assets(None, ["en", "es"])
EN, ES = ASSETS.get("en"), ASSETS.get("es")
# The English notice at the microphone (the simulated speaker's default gain, 0.5): RMS 0.058.
# The soundtrack is made as loud (0 dB relative to the notice; the scenario tier measures
# -0.4 dB at the microphone for this signal).
CUE_AT_MIC_RMS = 0.5 * float(np.std(to_rate(EN.samples, EN.sample_rate_hz)))


def export_audio_rms(mp4_path: str, start_s: float, end_s: float) -> float:
    chunks = []
    with av.open(mp4_path) as container:
        for frame in container.decode(audio=0):
            at_s = float(frame.pts * frame.time_base)
            if start_s <= at_s and at_s + frame.samples / frame.sample_rate <= end_s:
                chunks.append(frame.to_ndarray().reshape(-1))
    return float(np.sqrt(np.mean(np.concatenate(chunks).astype(np.float64) ** 2)))


def test_run_with_a_loud_source_soundtrack_then_export_finds_each_notice(bwc, fresh_device, custodian, tmp_path,
                                                                         tiny_scenario):
    clip = tmp_path / "scene.mp4"
    track = resample_linear(soundtrack(CLIP_S, CUE_AT_MIC_RMS).astype(np.float32), RATE_HZ, CLIP_AUDIO_HZ)
    write_clip(clip, list(range(CLIP_S * CLIP_FPS)), Fraction(1, CLIP_FPS),
               audio=np.stack([track, track]), audio_rate_hz=CLIP_AUDIO_HZ, rate=CLIP_FPS)
    # The tier's one-event scenario (an activation at 1 s), run long enough for the chime,
    # both notices and a second of the scene after them.
    text = tiny_scenario.read_text(encoding="utf-8")
    assert text.startswith("duration_s = 3\n")
    scenario = tmp_path / "scene.toml"
    scenario.write_text(text.replace("duration_s = 3\n", "duration_s = 9\n", 1), encoding="utf-8")

    r = bwc("run", "--device", fresh_device.dir, "--hal", "sim", "--scenario", scenario, "--source", clip)
    assert r.returncode == 0 and "1 event(s) recorded" in r.stdout, str(r)
    out = tmp_path / "export"
    r = bwc("export", fresh_device.storage, "--key", custodian.key, "--out", out,
            "--device-pub", fresh_device.pub)
    assert r.returncode == 0, str(r)
    [sidecar_path] = sorted(out.glob("event-*.json"))
    sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))

    logged = sidecar["announcements"]
    # The soundtrack really is in the recording: after the notices, before the stop, the
    # audio is as loud as the notice (measured +0.2 dB, room tone included; the room tone
    # alone would be -8 dB). The pre-event part holds no audio by default.
    quiet_from_s = logged[-1]["media_s"] + ES.duration_us / 1e6 + 0.1
    level = export_audio_rms(str(sidecar_path)[:-5] + ".mp4", quiet_from_s, quiet_from_s + 1.2)
    assert -1.5 <= 20 * np.log10(level / CUE_AT_MIC_RMS) <= 2.0, level

    assert [(a["cause"], a["language"], a["status"]) for a in logged] == [("event_start", "en", "played"),
                                                                         ("event_start", "es", "played")]
    for entry in logged:   # measured: en score 0.71, es 0.74, both -0.3 ms from the logged time
        assert entry["found"] is True, entry
        assert abs(entry["error_ms"]) <= 50, entry
        assert entry["score"] >= SCORE_THRESHOLD + 0.15, entry
        assert entry["result"].startswith("found at "), entry
