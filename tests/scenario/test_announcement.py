"""The announced-recording cue through the whole firmware (ANN-1…4): the simulated speaker is
heard by the simulated microphone, and the export finds each logged notice in the audio."""
from __future__ import annotations

import json
import os
import shutil
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit"))

import simulator.board  # noqa: E402
from device.announce_assets import SHIPPED_DIR, load_assets  # noqa: E402
from device.config import load_identity, load_policy  # noqa: E402
from device.evidence.keys import read_custodian_secret, read_device_public  # noqa: E402
from notice_signals import soundtrack  # noqa: E402
from scenario_support import bwc, make_device, read_sidecar, scenario_toml  # noqa: E402
from simulator.audio import SimAir  # noqa: E402
from simulator.runner import run_scenario  # noqa: E402
from simulator.scenario import parse_scenario  # noqa: E402
from tools.export import export_storage  # noqa: E402

pytestmark = pytest.mark.scenario

SHIPPED = load_assets(None, ["en", "es"])
START_T_S, STOP_T_S = 3.0, 14.0


def steps(replay_t_s: float | None = None) -> list[dict]:
    out = [{"t_s": START_T_S, "do": "button.double_press"}]
    if replay_t_s is not None:
        out.append({"t_s": replay_t_s, "do": "button.double_press"})
    return out + [{"t_s": STOP_T_S, "do": "button.hold", "hold_s": 3.0}]


def run(tmp_path, custodian, monkeypatch, *, speaker_gain: float = 0.5, soundtrack_db: float | None = None,
        replay_t_s: float | None = None, agency_wav: bool = False, **policy):
    """Record one event with the shipped firmware, export it, and return
    (sidecar, {asset sha256: [true start, media s]}) — the truth from the speaker's trace."""
    en_rms = np.std(SHIPPED.get("en").samples / 32768.0)

    class Air(SimAir):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.speaker_gain = speaker_gain
            if soundtrack_db is not None:   # a loud soundtrack all along, as loud as the notice
                level = 0.5 * en_rms * 10 ** (soundtrack_db / 20)
                self.emit(0, soundtrack(40, level).astype(np.float32))

    monkeypatch.setattr(simulator.board, "SimAir", Air)
    device = make_device(str(tmp_path / "device"), custodian)
    if agency_wav:
        os.makedirs(os.path.join(device.directory, "announce"))
        shutil.copy(os.path.join(SHIPPED_DIR, "es.flac"), os.path.join(device.directory, "announce", "en.flac"))
        _write_chirp_wav(os.path.join(device.directory, "announce", "es.wav"))
    scenario = parse_scenario(scenario_toml(18.0, steps(replay_t_s), pre_event_s=2, segment_s=4, **policy), "<test>")
    policy_obj = scenario.apply_policy(load_policy(os.path.join(device.directory, "policy.toml")))
    result = run_scenario(scenario, load_identity(device.directory), policy_obj, device.directory, device.storage)
    assert result.firmware.failure is None
    export_dir = str(tmp_path / "export")
    report, exported = export_storage(device.storage, read_custodian_secret(custodian.secret_path),
                                      read_device_public(device.pub_path), export_dir, True)
    assert report.outcome == "authentic" and len(exported) == 1
    _, sidecar = read_sidecar(export_dir)
    origin_us = sidecar["origin_monotonic_us"]
    truth = [(tag, (start_us - origin_us) / 1e6) for start_us, _, tag in result.world.board.speaker.history]
    return sidecar, truth, device, export_dir


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
    # The signed audit log says the same.
    audit = [e for e in sidecar["audit"] if e["type"] == "announcement"]
    assert [(e["language"], e["asset_sha256"]) for e in audit] == [(a["language"], a["asset_sha256"]) for a in logged]


START = [("event_start", "en"), ("event_start", "es")]


def test_the_start_notice_is_found_in_the_recorded_audio(tmp_path, custodian, monkeypatch):
    sidecar, truth, _, _ = run(tmp_path, custodian, monkeypatch)
    assert_all_found_where_played(sidecar, truth, START)
    activation_s = sidecar["activation"]["media_us"] / 1e6
    assert 0 < sidecar["announcements"][0]["media_s"] - activation_s < 1.0   # right after the start chime
    assert sidecar["media_gaps"] == []


def test_found_under_a_loud_soundtrack(tmp_path, custodian, monkeypatch):
    sidecar, truth, _, _ = run(tmp_path, custodian, monkeypatch, soundtrack_db=0.0)
    assert_all_found_where_played(sidecar, truth, START)


def test_found_at_a_tenth_of_the_speaker_gain(tmp_path, custodian, monkeypatch):
    sidecar, truth, _, _ = run(tmp_path, custodian, monkeypatch, speaker_gain=0.1)
    assert_all_found_where_played(sidecar, truth, START)


def test_a_wearer_replay_is_logged_and_found_like_the_first(tmp_path, custodian, monkeypatch):
    sidecar, truth, _, _ = run(tmp_path, custodian, monkeypatch, replay_t_s=9.0)
    assert_all_found_where_played(sidecar, truth, START + [("wearer", "en"), ("wearer", "es")])


def test_deferred_notice_is_found_later(tmp_path, custodian, monkeypatch):
    sidecar, truth, _, _ = run(tmp_path, custodian, monkeypatch, announce="deferred", announce_defer_s=4.0)
    assert_all_found_where_played(sidecar, truth, [("deferred", "en"), ("deferred", "es")])
    activation_s = sidecar["activation"]["media_us"] / 1e6
    assert sidecar["announcements"][0]["media_s"] - activation_s > 4.0


def test_suppressed_says_why_and_nothing_is_played_or_claimed(tmp_path, custodian, monkeypatch):
    sidecar, truth, _, _ = run(tmp_path, custodian, monkeypatch, announce="suppressed",
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
    sidecar, _, _, _ = run(tmp_path, custodian, monkeypatch, speaker_gain=0.0)
    logged = sidecar["announcements"]
    assert len(logged) == 2
    for entry in logged:
        assert entry["found"] is False, entry
        assert entry["result"].startswith("NOT found in the audio"), entry


def test_agency_assets_are_played_and_found_given_announce_dir(tmp_path, custodian, monkeypatch):
    sidecar, truth, device, _ = run(tmp_path, custodian, monkeypatch, agency_wav=True)
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
    sidecar, _, device, _ = run(tmp_path, custodian, monkeypatch)
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
    _, _, _, export_dir = run(tmp_path, custodian, monkeypatch)
    mp4, _ = read_sidecar(export_dir)
    with open(mp4[:-4] + ".json", encoding="utf-8") as f:
        entry = json.load(f)["announcements"][0]
    assert set(entry) >= {"status", "cause", "language", "asset_sha256", "media_s", "utc", "found",
                          "found_media_s", "error_ms", "score", "result"}
    assert entry["utc"].endswith("Z") and 0.35 <= entry["score"] <= 1.0
