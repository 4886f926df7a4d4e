"""The announced-recording cue through the whole firmware (ANN-1…4): the simulated speaker is
heard by the simulated microphone, and the export finds each logged notice in the audio.

The loud-soundtrack cases film a real source video (`--source`, docs/simulator.md): its
AAC soundtrack is decoded by simulator/source_audio.py into the simulated air, where the
microphone hears it mixed with the speaker's notice (OpenBWC issue 6)."""
from __future__ import annotations

import json
import os
import shutil
import sys
from fractions import Fraction
from typing import NamedTuple

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit"))

import simulator.board  # noqa: E402
from device.announce_assets import SHIPPED_DIR, load_assets  # noqa: E402
from device.config import load_identity, load_policy  # noqa: E402
from device.evidence.keys import read_custodian_secret, read_device_public  # noqa: E402
from notice_signals import RATE_HZ, soundtrack, speech_like, to_rate  # noqa: E402
from scenario_support import HEIGHT, START_US, WIDTH, bwc, make_device, read_sidecar, scenario_toml  # noqa: E402
from sim_source_clips import resample_linear, write_clip  # noqa: E402
from simulator.audio import SimAir  # noqa: E402
from simulator.runner import run_scenario  # noqa: E402
from simulator.scenario import parse_scenario  # noqa: E402
from tools.export import export_storage  # noqa: E402
from tools.notice import SCORE_THRESHOLD  # noqa: E402

pytestmark = pytest.mark.scenario

SHIPPED = load_assets(None, ["en", "es"])
START_T_S, STOP_T_S, RUN_S = 3.0, 14.0, 18.0
DEFAULT_SPEAKER_GAIN = SimAir().speaker_gain          # 0.5: how loud the cue is at the microphone
EN48 = to_rate(SHIPPED.get("en").samples, SHIPPED.get("en").sample_rate_hz)
ES48 = to_rate(SHIPPED.get("es").samples, SHIPPED.get("es").sample_rate_hz)
# The English notice as the microphone hears it at the default speaker gain: RMS 0.058
# (-24.8 dBFS; Spanish is within 0.1 dB). The loud soundtracks are made this loud, so at
# the default gain they are 0 dB relative to the notice, i.e. as loud as the notice itself.
CUE_AT_MIC_RMS = DEFAULT_SPEAKER_GAIN * float(np.std(EN48))
SCORE_MARGIN = 0.15     # every "found" here clears tools/notice.py's threshold by this much
CLIP_FPS, CLIP_AUDIO_HZ = 5, 44_100   # a phone video's audio rate; few frames keep the clip cheap
ROOM_TONE_HZ = 1000.0                 # the simulated microphone's own test tone (simulator/audio.py)


def soundtrack_clip(path, kind: str) -> str:
    """A source video (H.264 + stereo AAC at 44.1 kHz) whose soundtrack, music-like or
    speech-like (time-reversed syllables of both shipped voices: a talker the detector has
    every reason to confuse with the notice), is CUE_AT_MIC_RMS loud, and longer than the
    run, so it plays without a loop the whole time."""
    seconds = round(RUN_S) + 2
    if kind == "music":
        pcm = soundtrack(seconds, CUE_AT_MIC_RMS)
    else:
        pcm = speech_like(seconds, [EN48, ES48], CUE_AT_MIC_RMS)
    track = resample_linear(pcm.astype(np.float32), RATE_HZ, CLIP_AUDIO_HZ)
    write_clip(path, list(range(seconds * CLIP_FPS)), Fraction(1, CLIP_FPS), width=WIDTH, height=HEIGHT,
               audio=np.stack([track, track]), audio_rate_hz=CLIP_AUDIO_HZ, rate=CLIP_FPS)
    return str(path)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("soundtracks")
    return {kind: soundtrack_clip(directory / f"{kind}.mp4", kind) for kind in ("music", "speech")}


def steps(replay_t_s: float | None = None, world_steps: tuple[dict, ...] = ()) -> list[dict]:
    out = [{"t_s": START_T_S, "do": "button.double_press"}, *world_steps]
    if replay_t_s is not None:
        out.append({"t_s": replay_t_s, "do": "button.double_press"})
    return sorted(out, key=lambda step: step["t_s"]) + [{"t_s": STOP_T_S, "do": "button.hold", "hold_s": 3.0}]


class Run(NamedTuple):
    """One recorded, exported event, and the simulated world's truth about it."""
    sidecar: dict
    truth: list            # [(speaker tag: asset sha256 or "chime", true start in media s)]
    device: object
    export_dir: str
    result: object         # simulator.runner's result: the world, its air and speaker

    def soundtrack_db(self) -> float:
        """The level of everything but the speaker and the room tone at the microphone,
        from what it really captured (int16, after the source's AAC decode and resampling),
        relative to CUE_AT_MIC_RMS: the times the speaker played are left out, and the 1 kHz
        room tone is fitted and removed."""
        world = self.result.world
        air, rate = world.air, world.air.sample_rate_hz
        start_us = self.result.start_us + 200_000    # past the first microphone block
        heard = air.heard(start_us, self.result.start_us + round(RUN_S * 1e6)).astype(np.float64) / 32768.0
        keep = np.ones(len(heard), dtype=bool)
        for play_us, count, _ in world.board.speaker.history:
            lo = air.sample_index(play_us) - air.sample_index(start_us)
            keep[max(0, lo): max(0, lo + count)] = False
        t = (air.sample_index(start_us) + np.arange(len(heard))) / rate
        basis = np.stack([np.sin(2 * np.pi * ROOM_TONE_HZ * t), np.cos(2 * np.pi * ROOM_TONE_HZ * t)], axis=1)
        coef, *_ = np.linalg.lstsq(basis[keep], heard[keep], rcond=None)
        rest = (heard - basis @ coef)[keep]
        return 20 * np.log10(np.sqrt(np.mean(rest ** 2)) / CUE_AT_MIC_RMS)


def run(tmp_path, custodian, monkeypatch, *, speaker_gain: float = DEFAULT_SPEAKER_GAIN,
        source_path: str | None = None, replay_t_s: float | None = None, agency_wav: bool = False,
        world_steps: tuple[dict, ...] = (), **policy) -> Run:
    """Record one event with the shipped firmware (filming `source_path`, if given), export
    it, and return the sidecar and the truth from the speaker's trace: [(asset sha256, media s)]."""

    class Air(SimAir):   # the speaker's level at the microphone: a quieter (muffled, failing) speaker
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.speaker_gain = speaker_gain

    monkeypatch.setattr(simulator.board, "SimAir", Air)
    device = make_device(str(tmp_path / "device"), custodian)
    if agency_wav:
        os.makedirs(os.path.join(device.directory, "announce"))
        shutil.copy(os.path.join(SHIPPED_DIR, "es.flac"), os.path.join(device.directory, "announce", "en.flac"))
        _write_chirp_wav(os.path.join(device.directory, "announce", "es.wav"))
    scenario = parse_scenario(scenario_toml(RUN_S, steps(replay_t_s, world_steps), pre_event_s=2, segment_s=4, **policy),
                              "<test>")
    policy_obj = scenario.apply_policy(load_policy(os.path.join(device.directory, "policy.toml")))
    result = run_scenario(scenario, load_identity(device.directory), policy_obj, device.directory, device.storage,
                          source_path=source_path)
    assert result.firmware.failure is None
    export_dir = str(tmp_path / "export")
    report, exported = export_storage(device.storage, read_custodian_secret(custodian.secret_path),
                                      read_device_public(device.pub_path), export_dir, True)
    assert report.outcome == "authentic" and len(exported) == 1
    _, sidecar = read_sidecar(export_dir)
    origin_us = sidecar["origin_monotonic_us"]
    truth = [(tag, (start_us - origin_us) / 1e6) for start_us, _, tag in result.world.board.speaker.history]
    return Run(sidecar, truth, device, export_dir, result)


def _write_chirp_wav(path: str, seconds: float = 1.8, rate_hz: int = 22_050) -> None:
    import wave
    t = np.arange(round(seconds * rate_hz)) / rate_hz
    chirp = np.round(12000 * np.sin(2 * np.pi * (300 * t + 500 * t * t)) * np.sin(np.pi * t / seconds))
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate_hz)
        w.writeframes(chirp.astype(np.int16).tobytes())


def assert_all_found_where_played(sidecar: dict, truth: list, expected: list[tuple[str, str]]) -> None:
    logged = sidecar["announcements"]
    assert [(a["cause"], a["language"]) for a in logged] == expected
    played = [(tag, at_s) for tag, at_s in truth if tag != "chime"]
    assert [tag for tag, _ in played] == [a["asset_sha256"] for a in logged]
    for entry, (_, true_s) in zip(logged, played):
        assert entry["status"] == "played"
        assert abs(entry["media_s"] - true_s) < 0.001, entry          # the log dates the real start
        assert entry["found"] is True, entry
        assert abs(entry["found_media_s"] - true_s) <= 0.050, entry   # and the audio agrees
        assert abs(entry["error_ms"]) <= 50, entry
        assert entry["result"].startswith("found at "), entry
        assert entry["score"] >= SCORE_THRESHOLD + SCORE_MARGIN, entry
    # The signed audit log says the same.
    audit = [e for e in sidecar["audit"] if e["type"] == "announcement"]
    assert [(e["language"], e["asset_sha256"]) for e in audit] == [(a["language"], a["asset_sha256"]) for a in logged]


START = [("event_start", "en"), ("event_start", "es")]


def test_the_start_notice_is_found_in_the_recorded_audio(tmp_path, custodian, monkeypatch):
    sidecar, truth, _, _, _ = run(tmp_path, custodian, monkeypatch)
    assert_all_found_where_played(sidecar, truth, START)
    activation_s = sidecar["activation"]["media_us"] / 1e6
    assert 0 < sidecar["announcements"][0]["media_s"] - activation_s < 1.0   # right after the start chime
    assert sidecar["media_gaps"] == []


def test_a_camera_gap_is_in_the_sidecars_media_gaps(tmp_path, custodian, monkeypatch):
    # The cord is pulled 8 s into the run and back at 10 s, during the event.
    recorded = run(tmp_path, custodian, monkeypatch, world_steps=({"t_s": 8.0, "do": "camera.disconnect"},
                                                                  {"t_s": 10.0, "do": "camera.reconnect"}))
    origin_s = (recorded.sidecar["origin_monotonic_us"] - START_US) / 1e6   # scenario time of media 0
    [gap] = recorded.sidecar["media_gaps"]
    assert gap["track"] == "video"
    assert abs(gap["start_s"] - (8.0 - origin_s)) <= 0.1, gap        # the last frame before the cord went
    assert abs(gap["end_s"] - (10.0 - origin_s)) <= 0.1, gap         # the first frame after it came back
    assert abs(gap["duration_s"] - 2.0) <= 0.2, gap


@pytest.mark.parametrize("kind", ["music", "speech"])
def test_found_under_a_loud_source_soundtrack(tmp_path, custodian, monkeypatch, clips, kind):
    # The source video's soundtrack is as loud at the microphone as the notice: measured
    # from the captured audio, music -0.4 dB and speech +0.3 dB relative to the English
    # notice (scores measured: music en 0.70 / es 0.76, speech en 0.84 / es 0.64; found
    # 0.7 ms before the true start, the AAC round trip).
    recorded = run(tmp_path, custodian, monkeypatch, source_path=clips[kind])
    assert abs(recorded.soundtrack_db()) <= 1.0
    assert_all_found_where_played(recorded.sidecar, recorded.truth, START)


def test_found_at_a_tenth_of_the_speaker_gain(tmp_path, custodian, monkeypatch):
    sidecar, truth, _, _, _ = run(tmp_path, custodian, monkeypatch, speaker_gain=0.1)
    assert_all_found_where_played(sidecar, truth, START)


QUIET_GAIN = 0.1


@pytest.mark.xfail(strict=True, reason=(
    "OpenBWC issue 6, open: with the speaker at 0.1 (-14 dB) under the loud soundtrack, "
    "the notice is no longer found. The best match is at the right time (-0.7 ms) but its "
    "score falls below SCORE_THRESHOLD 0.35: music en 0.23 / es 0.29, speech en 0.35 / es 0.18 "
    "(measured). Remove this mark when tools/notice.py finds it."))
@pytest.mark.parametrize("kind", ["music", "speech"])
def test_found_at_a_tenth_of_the_speaker_gain_under_the_loud_soundtrack(tmp_path, custodian, monkeypatch,
                                                                       clips, kind):
    # The same loud scene, with a speaker at a fifth of its default level (0.1 vs 0.5): the
    # soundtrack is now about 14 dB louder than the notice at the microphone (measured:
    # music +13.6 dB, speech +14.3 dB).
    recorded = run(tmp_path, custodian, monkeypatch, speaker_gain=QUIET_GAIN, source_path=clips[kind])
    assert 13.0 <= recorded.soundtrack_db() - 20 * np.log10(QUIET_GAIN / DEFAULT_SPEAKER_GAIN) <= 15.0
    assert_all_found_where_played(recorded.sidecar, recorded.truth, START)


def test_a_wearer_replay_is_logged_and_found_like_the_first(tmp_path, custodian, monkeypatch):
    sidecar, truth, _, _, _ = run(tmp_path, custodian, monkeypatch, replay_t_s=9.0)
    assert_all_found_where_played(sidecar, truth, START + [("wearer", "en"), ("wearer", "es")])


def test_deferred_notice_is_found_later(tmp_path, custodian, monkeypatch):
    sidecar, truth, _, _, _ = run(tmp_path, custodian, monkeypatch, announce="deferred", announce_defer_s=4.0)
    assert_all_found_where_played(sidecar, truth, [("deferred", "en"), ("deferred", "es")])
    activation_s = sidecar["activation"]["media_us"] / 1e6
    assert sidecar["announcements"][0]["media_s"] - activation_s > 4.0


def test_suppressed_says_why_and_nothing_is_played_or_claimed(tmp_path, custodian, monkeypatch):
    sidecar, truth, _, _, _ = run(tmp_path, custodian, monkeypatch, announce="suppressed",
                               announce_suppress_reason="officer safety: armed suspect")
    assert truth == []
    [entry] = sidecar["announcements"]
    assert entry["status"] == "suppressed" and entry["found"] is None
    assert entry["result"] == "suppressed: officer safety: armed suspect"
    [audit] = [e for e in sidecar["audit"] if e["type"] == "announcement"]
    assert audit["reason"] == "officer safety: armed suspect" and audit["event_id"] == sidecar["event_id"]


def test_a_logged_notice_the_microphone_never_heard_is_reported_not_found(tmp_path, custodian, monkeypatch):
    # The speaker is dead (gain 0): the device still logs what it asked for; the export
    # must not vouch for it.
    sidecar, _, _, _, _ = run(tmp_path, custodian, monkeypatch, speaker_gain=0.0)
    logged = sidecar["announcements"]
    assert len(logged) == 2
    for entry in logged:
        assert entry["found"] is False, entry
        assert entry["result"].startswith("NOT found in the audio"), entry


def test_agency_assets_are_played_and_found_given_announce_dir(tmp_path, custodian, monkeypatch):
    sidecar, truth, device, _, _ = run(tmp_path, custodian, monkeypatch, agency_wav=True)
    agency = load_assets(device.directory, ["en", "es"])
    assert [a["asset_sha256"] for a in sidecar["announcements"]] == [agency.get("en").sha256,
                                                                     agency.get("es").sha256]
    # en.flac is a shipped file under another name: known by its hash; es.wav is the agency's own.
    en, es = sidecar["announcements"]
    assert en["found"] is True
    assert es["found"] is None and es["result"].startswith("asset unknown")
    # The custodian supplies the agency's files: now both are found where they played.
    again = tmp_path / "export-again"
    r = bwc("export", device.storage, "--key", custodian.secret_path, "--out", str(again),
            "--device-pub", device.pub_path, "--announce-dir", os.path.join(device.directory, "announce"))
    assert r.returncode == 0, r.stderr
    _, sidecar2 = read_sidecar(str(again))
    assert_all_found_where_played(sidecar2, truth, START)


def test_export_with_a_bad_announce_dir_is_a_usage_error(tmp_path, custodian, monkeypatch):
    sidecar, _, device, _, _ = run(tmp_path, custodian, monkeypatch)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "en.wav").write_bytes(b"not audio at all")
    for announce_dir in (str(tmp_path / "missing"), str(bad)):
        out = tmp_path / f"out-{os.path.basename(announce_dir)}"
        r = bwc("export", device.storage, "--key", custodian.secret_path, "--out", str(out),
                "--announce-dir", announce_dir)
        assert r.returncode == 2, r
        assert r.stderr.startswith("bwc export: ") and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert not out.exists()
    del sidecar


def test_sidecar_is_plain_json_a_reader_can_check(tmp_path, custodian, monkeypatch):
    _, _, _, export_dir, _ = run(tmp_path, custodian, monkeypatch)
    mp4, _ = read_sidecar(export_dir)
    with open(mp4[:-4] + ".json", encoding="utf-8") as f:
        entry = json.load(f)["announcements"][0]
    assert set(entry) >= {"status", "cause", "language", "asset_sha256", "media_s", "utc", "found",
                          "found_media_s", "error_ms", "score", "result"}
    assert entry["utc"].endswith("Z") and 0.35 <= entry["score"] <= 1.0
