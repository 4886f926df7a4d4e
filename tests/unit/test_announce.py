"""The announced-recording cue (ANN-1, ANN-3, ANN-4): what the speaker plays, when, and
what the device logs about it, on the virtual clock with the simulated speaker."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from device.announce import CHIME_TAG, Announcer
from device.announce_assets import SHIPPED_DIR, chime_duration_us, load_assets
from device.config import Policy
from device.writer import AuditEntry, Metadata
from simulator.audio import SimAir, SimSpeaker
from simulator.clock import VirtualClock

EVENT = "e" * 32
SHIPPED = load_assets(None, ["en", "es"])
EN, ES = SHIPPED.get("en"), SHIPPED.get("es")


def sha256_of(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Rig:
    def __init__(self, **policy) -> None:
        self.clock = VirtualClock()
        self.air = SimAir()
        self.speaker = SimSpeaker(self.clock, self.air)
        self.items: list[object] = []
        self.policy = Policy(**policy)
        self.announcer = Announcer(self.clock, self.speaker, self.items.append, self.policy)

    def start(self, at_us: int | None = None) -> int:
        now = self.clock.monotonic_us()
        self.announcer.event_started(EVENT, now if at_us is None else at_us, self.clock.wall_time_us())
        return now

    def run(self, seconds: float) -> None:
        self.clock.advance_s(seconds)

    def played(self) -> list[tuple[int, str | None]]:
        """(start_us, tag) of every clip the speaker started, as a listener could time them."""
        return [(start_us, tag) for start_us, _, tag in self.speaker.history]

    def records(self) -> list[Metadata]:
        return [i for i in self.items if isinstance(i, Metadata)]

    def entries(self) -> list[AuditEntry]:
        return [i for i in self.items if isinstance(i, AuditEntry)]


def test_shipped_assets_are_the_committed_files_and_logged_by_their_hash():
    for language in ("en", "es"):
        asset = SHIPPED.get(language)
        assert asset.sha256 == sha256_of(f"{SHIPPED_DIR}/{language}.flac")
        assert asset.samples.dtype == np.int16 and asset.samples.ndim == 1
        assert 1.0 < asset.duration_us / 1e6 < 5.0       # a short spoken sentence
        assert np.abs(asset.samples.astype(float)).max() > 20_000   # loud enough to hear
    assert EN.sha256 != ES.sha256


def test_start_cue_is_chime_then_each_language_in_order_back_to_back():
    rig = Rig(announce_languages=["es", "en"])
    t0 = rig.start()
    rig.run(10)
    chime_us = chime_duration_us()
    assert rig.played() == [(t0, CHIME_TAG), (t0 + chime_us, ES.sha256), (t0 + chime_us + ES.duration_us, EN.sha256)]
    records = rig.records()
    assert [(r.record_type, r.monotonic_us) for r in records] == [
        ("announcement", t0 + chime_us), ("announcement", t0 + chime_us + ES.duration_us)]
    assert records[0].fields == {"status": "played", "cause": "event_start", "language": "es",
                                 "asset_sha256": ES.sha256, "duration_us": ES.duration_us}
    assert records[1].fields["language"] == "en" and records[1].fields["asset_sha256"] == EN.sha256
    # The audit entry mirrors the record, with the event and the wall-clock time.
    for record, entry in zip(records, rig.entries()):
        assert entry.entry_type == "announcement"
        assert entry.fields == {"event_id": EVENT, **record.fields}
        assert entry.monotonic_us == record.monotonic_us
        assert entry.utc_us - entry.monotonic_us == rig.clock.wall_time_us() - rig.clock.monotonic_us()


def test_the_speaker_really_emits_the_asset_into_the_air():
    rig = Rig(announce_languages=["en"])
    t0 = rig.start()
    rig.run(5)
    start = rig.air.sample_index(t0 + chime_duration_us())
    heard = rig.air.mix(start, 3 * len(EN.samples))     # 16 kHz asset, 48 kHz air
    source = EN.samples.astype(np.float64) / 32768.0
    expected = np.interp(np.arange(3 * len(source)) / 3, np.arange(len(source)), source) * rig.air.speaker_gain
    assert np.abs(heard - expected).max() < 1e-4


def test_records_date_the_start_of_playback_not_the_press():
    # The recorder passes the press edge (earlier than now); playback can only start now.
    rig = Rig(announce_languages=["en"])
    rig.run(1)
    now = rig.start(at_us=rig.clock.monotonic_us() - 170_000)
    rig.run(5)
    assert rig.played()[0] == (now, CHIME_TAG)
    assert rig.records()[0].monotonic_us == now + chime_duration_us()


def test_suppressed_logs_the_reason_and_plays_nothing():
    rig = Rig(announce="suppressed", announce_suppress_reason="covert operation, order 17")
    t0 = rig.start()
    rig.run(30)
    assert rig.played() == []
    [record] = rig.records()
    assert record.monotonic_us == t0
    assert record.fields == {"status": "suppressed", "cause": "event_start", "reason": "covert operation, order 17"}
    [entry] = rig.entries()
    assert entry.fields == {"event_id": EVENT, **record.fields}


def test_deferred_plays_after_the_delay_with_cause_deferred():
    rig = Rig(announce="deferred", announce_defer_s=8)
    t0 = rig.start()
    rig.run(7.9)
    assert rig.played() == [] and rig.records() == []
    rig.run(10)
    assert rig.played()[0] == (t0 + 8_000_000, CHIME_TAG)
    assert [r.fields["cause"] for r in rig.records()] == ["deferred", "deferred"]
    assert [r.fields["language"] for r in rig.records()] == ["en", "es"]


def test_a_stop_before_a_deferred_cue_drops_it():
    rig = Rig(announce="deferred", announce_defer_s=8)
    rig.start()
    rig.run(3)
    rig.announcer.event_stopped()
    rig.run(30)
    assert rig.played() == [] and rig.items == []


def test_a_stop_during_the_cue_drops_the_languages_not_begun():
    rig = Rig()
    t0 = rig.start()
    rig.run((chime_duration_us() + 500_000) / 1e6)     # half a second into English
    rig.announcer.event_stopped()
    rig.run(10)
    assert [tag for _, tag in rig.played()] == [CHIME_TAG, EN.sha256]
    assert [r.fields["language"] for r in rig.records()] == ["en"]
    assert rig.records()[0].monotonic_us == t0 + chime_duration_us()


def test_replay_plays_the_whole_notice_again_logged_as_the_wearers():
    rig = Rig()
    rig.start()
    rig.run(20)
    t1 = rig.clock.monotonic_us()
    rig.announcer.replay(EVENT, t1, rig.clock.wall_time_us())
    rig.run(10)
    replayed = rig.records()[2:]
    assert [(r.fields["cause"], r.fields["language"]) for r in replayed] == [("wearer", "en"), ("wearer", "es")]
    assert replayed[0].monotonic_us == t1 + chime_duration_us()
    assert rig.played()[3] == (t1, CHIME_TAG)


def test_replay_during_a_cue_waits_for_it_to_finish():
    rig = Rig()
    t0 = rig.start()
    rig.run(1)
    rig.announcer.replay(EVENT, rig.clock.monotonic_us(), rig.clock.wall_time_us())
    rig.run(20)
    end_of_first = t0 + chime_duration_us() + EN.duration_us + ES.duration_us
    starts = rig.played()
    assert starts[3] == (end_of_first, CHIME_TAG)
    # Nothing overlaps: each clip starts where the one before it ends.
    for (start, length, _), (next_start, _, _) in zip(rig.speaker.history, rig.speaker.history[1:]):
        assert next_start == rig.air.time_us(rig.air.sample_index(start) + length)


def test_replay_plays_even_when_the_policy_suppressed_the_start_cue():
    rig = Rig(announce="suppressed", announce_suppress_reason="officer safety")
    rig.start()
    rig.run(5)
    rig.announcer.replay(EVENT, rig.clock.monotonic_us(), rig.clock.wall_time_us())
    rig.run(10)
    assert [r.fields["status"] for r in rig.records()] == ["suppressed", "played", "played"]
    assert {r.fields["cause"] for r in rig.records()[1:]} == {"wearer"}


def test_replay_stands_in_for_a_deferred_cue_not_yet_played():
    rig = Rig(announce="deferred", announce_defer_s=30)
    rig.start()
    rig.run(2)
    rig.announcer.replay(EVENT, rig.clock.monotonic_us(), rig.clock.wall_time_us())
    rig.run(60)
    assert [r.fields["cause"] for r in rig.records()] == ["wearer", "wearer"]


def test_next_event_announces_again():
    rig = Rig(announce_languages=["en"])
    rig.start()
    rig.run(5)
    rig.announcer.event_stopped()
    rig.run(5)
    rig.start()
    rig.run(5)
    assert [r.fields["cause"] for r in rig.records()] == ["event_start", "event_start"]


def test_agency_assets_replace_the_shipped_ones(tmp_path):
    rig_assets = _agency_dir(tmp_path, "en")
    assets = load_assets(str(rig_assets.parent), ["en", "es"])
    assert assets.get("en").sha256 == sha256_of(str(rig_assets / "en.wav"))
    assert assets.get("es").sha256 == ES.sha256      # not supplied: the shipped one
    clock, air = VirtualClock(), SimAir()
    speaker, items = SimSpeaker(clock, air), []
    Announcer(clock, speaker, items.append, Policy(), assets).event_started(EVENT, clock.monotonic_us(), 0)
    clock.advance_s(10)
    assert [m.fields["asset_sha256"] for m in items if isinstance(m, Metadata)] == [
        assets.get("en").sha256, ES.sha256]


def _agency_dir(tmp_path, language: str, seconds: float = 1.5):
    directory = tmp_path / "announce"
    directory.mkdir(exist_ok=True)
    _write_wav(directory / f"{language}.wav", _chirp(seconds))
    return directory


def _chirp(seconds: float, rate_hz: int = 22_050) -> np.ndarray:
    t = np.arange(round(seconds * rate_hz)) / rate_hz
    return np.round(16000 * np.sin(2 * np.pi * (300 * t + 400 * t * t))).astype(np.int16)


def _write_wav(path, samples: np.ndarray, rate_hz: int = 22_050) -> None:
    import wave
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate_hz)
        w.writeframes(samples.tobytes())


@pytest.mark.parametrize("make, message", [
    (lambda d: None, "no announcement audio for language 'fr'"),
    (lambda d: (d / "fr.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really"), "cannot decode"),
    (lambda d: (d / "fr.flac").write_bytes(b""), "cannot decode"),
    (lambda d: _write_wav(d / "fr.wav", _chirp(21)), "longer than 20 s"),
    (lambda d: _write_wav(d / "fr.wav", np.zeros(22050, np.int16)), "silent"),
    (lambda d: (_write_wav(d / "fr.wav", _chirp(1)), _write_wav(d / "fr.flac", _chirp(1))), "both exist"),
])
def test_a_bad_agency_asset_is_a_one_line_config_error_naming_the_file(tmp_path, make, message):
    from device.config import ConfigError
    directory = tmp_path / "announce"
    directory.mkdir()
    make(directory)
    with pytest.raises(ConfigError) as caught:
        load_assets(str(tmp_path), ["en", "fr"])
    text = str(caught.value)
    assert message in text and "\n" not in text
    assert "fr." in text or "'fr'" in text


def test_an_agency_file_in_flac_loads_too(tmp_path):
    import shutil
    directory = tmp_path / "announce"
    directory.mkdir()
    shutil.copy(f"{SHIPPED_DIR}/es.flac", directory / "pt-BR.flac")
    assets = load_assets(str(tmp_path), ["pt-BR"])
    assert assets.get("pt-BR").sha256 == ES.sha256
    assert np.array_equal(assets.get("pt-BR").samples, ES.samples)


# -- parsers: an asset file and logged records, whatever they hold ----------------------

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from device.announce_assets import decode_audio  # noqa: E402
from device.config import ConfigError  # noqa: E402

with open(f"{SHIPPED_DIR}/en.flac", "rb") as _f:
    _FLAC = _f.read()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(
    st.binary(max_size=4096),
    st.tuples(st.integers(0, len(_FLAC) - 1), st.binary(min_size=1, max_size=64)).map(
        lambda c: _FLAC[:c[0]] + c[1] + _FLAC[c[0] + len(c[1]):]),       # a corrupted FLAC
    st.integers(0, len(_FLAC)).map(lambda n: _FLAC[:n]),                 # a cut-short FLAC
))
def test_any_asset_bytes_decode_or_fail_with_a_config_error(data):
    try:
        samples, rate_hz = decode_audio(data, "x.flac")
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("x.flac: ")
        return
    assert samples.dtype == np.int16 and samples.ndim == 1 and 8000 <= rate_hz <= 192_000
    assert 0 < len(samples) <= 20 * rate_hz


_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63), st.integers(-10**9, 10**9), st.text(max_size=20),
                   st.floats(allow_nan=True), st.lists(st.integers(), max_size=2))
_RECORD = st.fixed_dictionaries({}, optional={
    "type": st.sampled_from(["announcement", "announcement", "media_gap", "marker", 7]), "status": _VALUE | st.sampled_from(
        ["played", "suppressed"]), "cause": _VALUE, "language": _VALUE, "asset_sha256": _VALUE,
    "media_us": _VALUE, "reason": _VALUE, "track": _VALUE | st.sampled_from(["audio", "video"]),
    "phase": _VALUE | st.sampled_from(["lost", "back"]), "gap_start_monotonic_us": _VALUE,
    "gap_end_monotonic_us": _VALUE})


@settings(max_examples=200, deadline=None)
@given(records=st.lists(_RECORD, max_size=8))
def test_sidecar_sections_accept_any_logged_records(records, tmp_path_factory):
    from tools.export import _utc, media_gaps
    from tools.notice import KnownAssets, announcements
    gaps = media_gaps(records, 1_000_000)
    assert all(set(g) == {"track", "start_s", "end_s", "duration_s"} for g in gaps)
    # Unknown assets only: nothing is searched, so no MP4 is needed.
    shipped = {EN.sha256, ES.sha256}
    records = [r for r in records if not (isinstance(r.get("asset_sha256"), str) and r["asset_sha256"] in shipped)]
    entries = announcements("/nonexistent.mp4", records, 1_767_225_600_000_000, KnownAssets(), _utc)
    assert len(entries) == sum(r.get("type") == "announcement" for r in records)
    assert all(isinstance(e["result"], str) and e["found"] is None for e in entries)


def test_a_speaker_that_fails_is_not_claimed_to_have_played():
    rig = Rig(announce_languages=["en"])

    def broken(*args, **kwargs):
        raise OSError("aplay: no such device")

    rig.speaker.play = broken
    rig.start()
    rig.run(10)
    assert rig.records() == [] and rig.entries() == []


def test_many_replays_leave_no_timers_behind():
    rig = Rig(announce_languages=["en"])
    rig.start()
    for _ in range(50):
        rig.run(5)
        rig.announcer.replay(EVENT, rig.clock.monotonic_us(), rig.clock.wall_time_us())
    rig.run(5)
    assert len(rig.records()) == 51
    assert len(rig.announcer._timers) <= 2
