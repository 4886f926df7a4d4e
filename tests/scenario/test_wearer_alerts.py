"""What the wearer is told, and how fast, when something goes wrong (IND-1…4, FLT-1…4,
ACT-5): read from the indicators as a person would feel and hear them, and from the
signed audit log a custodian would read. Each test drives the whole firmware on the
simulated board with the world's own fault switches."""
from __future__ import annotations

import pytest

from device.config import Policy
from hal.media import VideoFormat
from device.evidence.keys import read_device_public
from device.evidence.storage_verify import verify_storage
from world_support import start

pytestmark = pytest.mark.scenario


def verified(run) -> str:
    return verify_storage(run.storage, read_device_public(run.pub_path)).outcome


def exported_sidecar(run, tmp_path) -> dict:
    import json

    from device.evidence.keys import read_custodian_secret
    from tools.export import export_storage
    report, exported = export_storage(run.storage, read_custodian_secret(run.secret_path),
                                      read_device_public(run.pub_path), str(tmp_path / "out"), True)
    assert len(exported) == 1, report.to_json()
    with open(exported[0].sidecar_path, encoding="utf-8") as f:
        return json.load(f)


def test_camera_loss_is_alerted_within_a_second_and_the_gap_is_logged_exactly(tmp_path):
    run = start(tmp_path)
    run.double_press(2.0)
    run.pull_cord(6.0, back_s=11.0)
    run.hold(14.0)
    run.finish(18.0)

    lost, back = run.entries("media_gap")
    last_frame_end_us = lost["gap_start_monotonic_us"]
    # The last frame before the pull started before 6.0 s and ends at most a frame later.
    assert run.us(6.0) - 34_000 <= last_frame_end_us <= run.us(6.0) + 34_000
    alerted_s = run.first("camera_lost")
    assert alerted_s is not None and 0 < alerted_s - run.t(last_frame_end_us) <= 1.0
    # The red LED stays lit through the loss: the people in front of the camera are
    # still being recorded (audio keeps reaching the card).
    leds = run.led()
    assert leds[0][1] is True and not [t for t, on in leds if not on and t < 14.0]
    # The gap's end is the first frame after the reconnect; the wearer hears it is back.
    assert run.us(11.0) <= back["gap_end_monotonic_us"] <= run.us(11.0) + 34_000
    assert back["gap_start_monotonic_us"] == last_frame_end_us and back["event_id"] == lost["event_id"]
    assert run.first("camera_back", after_s=11.0) <= 11.0 + 0.2
    # Reopen attempts back off: 0.5 s after the loss, then 1 s, 2 s, 4 s later.
    attempts = [e["monotonic_us"] for e in run.entries("watchdog") if e["part"] == "camera"]
    gaps_s = [round((b - a) / 1e6, 1) for a, b in zip(attempts, attempts[1:])]
    assert len(attempts) >= 3 and gaps_s[:2] == [1.0, 2.0]
    assert verified(run) == "authentic"


def test_a_short_press_answers_the_state_from_facts(tmp_path):
    run = start(tmp_path)
    run.press(1.0)                                   # buffering
    run.double_press(3.0)
    run.press(6.0)                                   # recording: marker, then status
    run.pull_cord(8.0)
    run.press(10.0)                                  # recording, but no picture: fault
    run.hold(12.0)
    run.finish(17.0)
    names = [(round(t, 1), n) for t, n in run.patterns()]
    assert [n for t, n in names if t < 3.0] == ["status_buffering"]
    assert [n for t, n in names if 6.0 <= t < 7.5] == ["marker", "status_recording"]
    assert "status_fault" in [n for t, n in names if 10.0 <= t < 11.5]


def test_a_reminder_comes_every_interval_while_recording_and_never_when_not(tmp_path):
    run = start(tmp_path, Policy(pre_event_s=1, segment_s=10, reminder_interval_s=10))
    run.double_press(1.0)
    run.hold(33.0)
    run.finish(60.0)
    reminders = [t for t, n in run.patterns() if n == "reminder"]
    activation_s = run.t(run.entries("activation")[0]["monotonic_us"])
    assert [round(t - activation_s, 1) for t in reminders] == [10.0, 20.0, 30.0]


def test_an_unconfirmed_hold_does_not_stop_and_confirming_presses_pick_the_reason(tmp_path):
    policy = Policy(pre_event_s=1, segment_s=10, stop_confirm=True, stop_confirm_s=4,
                    stop_reasons=["end_of_contact", "privacy", "officer_safety"])
    run = start(tmp_path, policy)
    run.double_press(1.0)
    run.hold(5.0)                 # accidental: nobody presses afterwards
    run.hold(16.0)
    run.press(20.0)
    run.press(21.0)               # two presses: the second reason
    run.finish(30.0)
    requests = [(e["status"], e.get("reason")) for e in run.entries("stop_request")]
    assert requests == [("pending", None), ("cancelled", None), ("pending", None), ("confirmed", "privacy")]
    names = [n for _, n in run.patterns()]
    assert names.count("stop_pending") == 2 and "stop_cancelled" in names and names.count("stop_counted") == 2
    stops = run.entries("deactivation")
    assert len(stops) == 1 and run.t(stops[0]["monotonic_us"]) > 22.0 and stops[0]["reason"] == "privacy"
    assert not run.entries("marker")  # confirming presses are not markers
    assert verified(run) == "authentic"


def test_low_battery_warns_in_minutes_and_critical_closes_cleanly_and_shuts_down(tmp_path):
    # 16 % left, draining 2 % a minute while recording: 6.5 minutes above the 3 % floor.
    # 15 simulated minutes: a small, slow picture keeps it cheap (the battery does not care).
    small = VideoFormat(width=160, height=90, fps=5, keyframe_interval_s=2.0, bitrate_bps=200_000)
    run = start(tmp_path, Policy(pre_event_s=1, segment_s=120), video=small, battery_pct=16.0,
                drain_pct_per_hour=120.0)
    run.double_press(1.0)
    run.finish(7.5 * 60.0)
    alerts = {e["alert"]: e for e in run.entries("alert")}
    low = alerts["battery_low"]
    assert 5 <= low["minutes_left"] <= 10 and run.t(low["monotonic_us"]) <= 60
    # The estimate was right: critical came about that many minutes later.
    critical = alerts["battery_critical"]
    predicted_s = run.t(low["monotonic_us"]) + low["minutes_left"] * 60
    assert abs(run.t(critical["monotonic_us"]) - predicted_s) <= 60
    stop = run.entries("deactivation")[-1]
    assert stop["source"] == "battery_critical"
    assert run.entries("shutdown")[-1]["source"] == "battery_critical"
    names = [n for _, n in run.patterns()]
    assert "battery_low" in names and "battery_critical" in names and "stop" not in names
    assert run.firmware.shutdown_source == "battery_critical"
    assert verified(run) == "authentic"


def test_a_wall_clock_step_is_a_signed_time_sync_and_an_unset_clock_is_an_alert(tmp_path):
    year_2000_us = 946_684_800_000_000
    run = start(tmp_path, start_wall_us=year_2000_us)
    run.double_press(1.0)
    run.at(5.0, lambda: run.world.board.clock.set_wall_time_us(1_767_225_600_000_000 + 5_000_000))
    run.hold(8.0)
    run.finish(12.0)
    alert = run.entries("alert")[0]
    assert alert["alert"] == "clock_unset" and alert["clock_utc_us"] < alert["build_utc_us"]
    assert run.patterns()[0][1] == "clock_unset"
    sync, = run.entries("time_sync")
    assert sync["before_utc_us"] < year_2000_us + 10_000_000 and sync["after_utc_us"] > 1_767_225_600_000_000
    assert abs(run.t(sync["monotonic_us"]) - 5.0) <= 0.1
    # Ordering stays monotonic: the entries after the sync are still in monotonic order.
    times = [e["monotonic_us"] for e in run.entries()]
    assert times == sorted(times)
    assert verified(run) == "authentic"
    # The custodian is told the event's date cannot be trusted.
    sidecar = exported_sidecar(run, tmp_path)
    assert sidecar["origin_utc_trusted"] is False and sidecar["origin_utc"].startswith("2000-01-01")


def test_storage_low_is_told_in_minutes_of_recording(tmp_path):
    run = start(tmp_path)
    # 600 kbit/s video + 64 kbit/s audio: 20 MB is about 4 minutes.
    run.at(2.0, lambda: run.world.fs.fill(20_000_000, under=run.storage))
    run.finish(15.0)
    alert, = [e for e in run.entries("alert") if e["alert"] == "storage_low"]
    assert 2 <= alert["minutes_left"] <= 6
    assert "storage_low" in [n for _, n in run.patterns()]


def test_a_dead_microphone_is_reopened_and_the_gap_logged(tmp_path):
    run = start(tmp_path)
    run.double_press(1.0)
    run.at(4.0, run.world.board.microphone.stop)     # the capture thread is gone
    run.hold(8.0)
    run.finish(12.0)
    lost, back = [e for e in run.entries("media_gap") if e["track"] == "audio"]
    assert lost["phase"] == "lost" and back["phase"] == "back"
    assert 0 < run.t(back["gap_end_monotonic_us"]) - 4.0 <= 1.5
    assert [e["part"] for e in run.entries("watchdog")] == ["microphone"]
    names = [n for _, n in run.patterns()]
    assert "mic_lost" in names and "mic_back" in names
    assert verified(run) == "authentic"


def test_a_dead_writer_thread_is_restarted_by_the_watchdog_and_the_event_goes_on(tmp_path, monkeypatch):
    from device.firmware import Firmware

    class Killed(BaseException):
        pass

    killed = []
    real = Firmware._on_committed

    def fatal_once(self, media_monotonic_us: int) -> None:
        if not killed and media_monotonic_us >= self.board.clock.monotonic_us() - 1_500_000 > 4_000_000:
            killed.append(media_monotonic_us)
            raise Killed()   # escapes the writer thread between two items
        real(self, media_monotonic_us)

    monkeypatch.setattr(Firmware, "_on_committed", fatal_once)
    monkeypatch.setattr("threading.excepthook", lambda args: None)
    run = start(tmp_path)
    run.double_press(1.0)
    run.hold(8.0)
    run.finish(12.0)
    assert killed
    restart, = run.entries("watchdog")
    assert restart["part"] == "writer" and restart["attempt"] == 1
    assert 0 < restart["monotonic_us"] - killed[0] <= 2_000_000
    assert "fault" in [n for _, n in run.patterns()]
    assert run.firmware.failure is None and len(run.entries("deactivation")) == 1
    assert verified(run) == "authentic"


def test_commits_that_stop_while_frames_arrive_are_alerted_and_the_led_goes_dark(tmp_path, monkeypatch):
    # A card that hangs: one fsync blocks the writer for 3 s of simulated time.
    from device.evidence import segment_file

    release = __import__("threading").Event()
    hung = []
    real = segment_file.SegmentFile.checkpoint

    def checkpoint(self, media_end_us):
        if not hung and self.chunk_count >= 6:
            hung.append(media_end_us)
            release.wait(60)
        return real(self, media_end_us)

    monkeypatch.setattr(segment_file.SegmentFile, "checkpoint", checkpoint)
    run = start(tmp_path)
    run.double_press(1.0)
    run.at(9.0, release.set)
    run.hold(12.0)
    run.finish(16.0)
    assert hung
    alert, = [e for e in run.entries("alert") if e["alert"] == "commit_stall"]
    newest_s = run.t(alert["committed_monotonic_us"])
    alerted_s = run.first("fault")
    # Within the flush interval (1 s) + 1 s of the newest durable media.
    assert 0 < alerted_s - newest_s <= 2.0
    dark_s = next(t for t, on in run.led() if not on and t > newest_s)
    assert dark_s <= alerted_s   # the LED stops claiming a recording no later than the alert
    # Once the card answers, commits resume, the LED comes back, and nothing was lost.
    assert any(on for t, on in run.led() if t > alerted_s)
    assert run.firmware.failure is None and verified(run) == "authentic"


def test_the_export_lists_a_camera_gap_exactly_and_its_audio_runs_through_it(tmp_path):
    import av

    run = start(tmp_path)
    run.double_press(1.0)
    run.pull_cord(4.0, back_s=7.0)
    run.hold(9.0)
    run.finish(13.0)
    lost, back = run.entries("media_gap")
    sidecar = exported_sidecar(run, tmp_path)
    assert sidecar["origin_utc_trusted"] is True
    mp4_path, = [str(p) for p in (tmp_path / "out").iterdir() if p.suffix == ".mp4"]
    origin_us = sidecar["origin_monotonic_us"]
    gap, = sidecar["media_gaps"]
    assert gap == {"track": "video", "start_s": (back["gap_start_monotonic_us"] - origin_us) / 1e6,
                   "end_s": (back["gap_end_monotonic_us"] - origin_us) / 1e6,
                   "duration_s": (back["gap_end_monotonic_us"] - back["gap_start_monotonic_us"]) / 1e6}
    assert 2.9 <= gap["duration_s"] <= 3.1
    # No video frame inside the gap; audio frames every 21.3 ms straight through it.
    with av.open(mp4_path) as container:
        video = [float(p.pts * p.time_base) for p in container.demux(video=0) if p.pts is not None]
    with av.open(mp4_path) as container:
        audio = [float(p.pts * p.time_base) for p in container.demux(audio=0) if p.pts is not None]
    assert not [t for t in video if gap["start_s"] + 0.001 < t < gap["end_s"] - 0.001]
    inside = [b - a for a, b in zip(audio, audio[1:]) if gap["start_s"] <= a <= gap["end_s"]]
    assert len(inside) > 100 and max(inside) < 0.022
