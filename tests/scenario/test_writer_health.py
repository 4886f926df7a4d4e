"""FLT-5, the writer's side: the signals a watchdog reads to tell a stalled writer from an
idle one, and a restart after its thread died that lets the event go on and verify."""
from __future__ import annotations

import threading

import pytest

from camera_loss_rig import Rig, us
from device.config import Policy
from device.firmware import Firmware
from device.muxer import FragmentMuxer
from scenario_support import assert_continuous, audit_entries, decode_frames

pytestmark = pytest.mark.scenario


class Killed(BaseException):
    """Not an Exception: nothing in the writer catches it, so its thread ends."""


@pytest.fixture
def quiet_thread_death(monkeypatch):
    """The killed writer thread is expected; keep its traceback out of the report."""
    hook = threading.excepthook
    monkeypatch.setattr(threading, "excepthook",
                        lambda args: None if issubclass(args.exc_type, Killed) else hook(args))


def _policy() -> Policy:
    return Policy(pre_event_s=1, segment_s=4, announce="suppressed", announce_suppress_reason="health test")


def test_an_idle_writer_says_so_and_counts_what_it_finished(tmp_path, custodian):
    rig = Rig(str(tmp_path), custodian, _policy())
    rig.run_until(2.0)
    rig.catch_up()
    # Buffering: nothing goes to the writer (boot writes its audit entry itself).
    assert rig.writer.alive() and rig.writer.busy_since() is None
    assert rig.writer.committed_us() == (None, None)
    idle = rig.writer.progress()
    rig.double_press(2.0)
    rig.run_until(4.0)
    rig.catch_up()
    assert rig.writer.busy_since() is None
    # Recording from the activation (2.39 s) to 4 s: 30 frames and ~47 audio frames a
    # second, one item each (the pre-event footage is one item).
    assert rig.writer.progress() - idle >= 1.6 * (30 + 46)
    video_us, audio_us = rig.writer.committed_us()
    assert rig.t0 + us(3.0) <= video_us <= rig.t0 + us(4.0) and rig.t0 + us(2.9) <= audio_us
    rig.shutdown()
    assert rig.writer.committed_us() == (None, None) and not rig.writer.alive()


def test_a_stalled_writer_shows_what_it_is_stuck_on(tmp_path, custodian, monkeypatch):
    release, stuck = threading.Event(), threading.Event()
    stuck_at: list[int] = []
    real = Firmware._on_committed

    def slow_indicator(self, media_monotonic_us: int) -> None:
        if media_monotonic_us >= self.board.clock.monotonic_us() - us(10) and not release.is_set():
            stuck_at.append(media_monotonic_us)
            stuck.set()
            release.wait(30)   # an LED driver hanging the writer thread
        real(self, media_monotonic_us)

    monkeypatch.setattr(Firmware, "_on_committed", slow_indicator)
    rig = Rig(str(tmp_path), custodian, _policy())
    rig.double_press(1.0)
    rig.run_until(2.5)
    try:
        assert stuck.wait(30), "the writer never committed"
        before = rig.writer.progress()
        assert rig.writer.wait_idle(timeout_s=0.2) is False   # the caller is not hung
        assert rig.writer.progress() == before
        # The item in hand is the packet whose flush reported the commit.
        busy = rig.writer.busy_since()
        assert busy is not None and busy >= stuck_at[0] and busy <= rig.clock.monotonic_us()
    finally:
        release.set()
    assert rig.writer.wait_idle(timeout_s=30) is True
    assert rig.writer.busy_since() is None and rig.writer.progress() > before
    rig.shutdown()


def test_restart_is_refused_unless_the_thread_died(tmp_path, custodian):
    rig = Rig(str(tmp_path), custodian, _policy())
    assert rig.writer.alive() and rig.writer.restart() is False   # never a second thread
    rig.shutdown()
    assert not rig.writer.alive() and rig.writer.restart() is False   # closed on purpose


def test_a_writer_killed_between_operations_restarts_and_the_event_goes_on(
        tmp_path, custodian, monkeypatch, quiet_thread_death):
    # The writer's own restart, driven by hand: the firmware's watchdog, which would
    # restart it first, is held off (tests/scenario/test_wearer_alerts.py covers it).
    from device.monitor import Monitor
    monkeypatch.setattr(Monitor, "_check_writer_thread", lambda self, now_us: None)
    killed = []
    real = Firmware._on_committed

    def fatal_once(self, media_monotonic_us: int) -> None:
        if not killed and media_monotonic_us > self.board.clock.monotonic_us() - us(10) and \
                media_monotonic_us >= rig.t0 + us(2.5):
            killed.append(media_monotonic_us)
            raise Killed()
        real(self, media_monotonic_us)

    monkeypatch.setattr(Firmware, "_on_committed", fatal_once)
    rig = Rig(str(tmp_path), custodian, _policy())
    rig.double_press(1.0)
    rig.hold(6.0, 3.0)
    rig.run_until(4.0)
    assert killed and not rig.writer.alive()
    assert rig.writer.wait_idle(timeout_s=0.1) is False   # packets pile up for a dead writer
    assert rig.writer.restart() is True and rig.writer.alive()
    assert rig.writer.restart() is False
    rig.run_until(10.0)
    rig.shutdown()
    assert rig.firmware.failure is None
    report = rig.verify()
    assert report.outcome == "authentic" and report.problems == [], report.to_json()
    assert len(report.events()) == 1
    # Nothing was lost: the packet in hand had been handled when the callback died.
    mp4, _ = rig.export()
    assert_continuous(decode_frames(mp4))


def test_a_writer_killed_mid_mux_ends_the_event_as_a_firmware_fault(
        tmp_path, custodian, monkeypatch, quiet_thread_death):
    # The writer's own restart, driven by hand: the firmware's watchdog, which would
    # restart it first, is held off (tests/scenario/test_wearer_alerts.py covers it).
    from device.monitor import Monitor
    monkeypatch.setattr(Monitor, "_check_writer_thread", lambda self, now_us: None)
    real_add = FragmentMuxer.add
    killed = []

    def add(self, packet, pts_us):
        if not killed and packet.kind == "video" and pts_us >= us(2.0):
            killed.append(packet.timestamp_us)
            raise Killed()
        return real_add(self, packet, pts_us)

    monkeypatch.setattr(FragmentMuxer, "add", add)
    rig = Rig(str(tmp_path), custodian, _policy())
    rig.double_press(1.0)
    rig.run_until(4.0)
    assert killed and not rig.writer.alive()
    assert rig.writer.restart() is True
    rig.catch_up()
    # The muxer's state was half-updated: the event ends at its last checkpoint, said
    # so in a signed fault entry, and the wearer is told (on_failure).
    assert rig.firmware.failure is not None
    faults = [e for e in audit_entries(rig.device.storage) if e["type"] == "fault"]
    assert [(f["kind"], f["stage"]) for f in faults] == [("firmware", "recording")], faults
    # The camera records again on the next activation.
    rig.double_press(6.0)
    rig.hold(8.0, 3.0)
    rig.run_until(12.0)
    rig.shutdown()
    report = rig.verify()
    assert report.problems == [] and len(report.events()) == 2, report.to_json()
    # Cut short at its last checkpoint, and explained: not tampering (exit 3, not 1).
    assert report.outcome == "truncated", report.to_json()
    gaps = report.to_json()["gaps"]
    assert [g["explained_by"].endswith("(fault)") for g in gaps] == [True], gaps
