"""The service watchdog (docs/pi.md#watchdog): systemd hears READY=1 once the camera buffers,
and WATCHDOG=1 only while the pipeline is healthy or recovering in-process (device/health.py).

The whole firmware runs on the virtual clock (camera_loss_rig); the notifications go over a
real AF_UNIX datagram socket, as systemd's $NOTIFY_SOCKET, and are read back here.
"""
from __future__ import annotations

import socket
import threading

import pytest

from camera_loss_rig import Rig, us
from device.config import Policy
from device.evidence import segment_file
from tools.pi_service import ServiceWatchdog
from tools.sdnotify import SdNotify

pytestmark = pytest.mark.scenario
WATCHDOG_SEC = 3   # WATCHDOG_USEC=3 s: a ping is due every 1 s (a third of it)


class Systemd:
    """The receiving end of $NOTIFY_SOCKET: every message, with the virtual time it arrived."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setblocking(False)
        self.messages: list[tuple[float, dict]] = []

    def drain(self, t_s: float) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return
            self.messages.append((t_s, dict(line.split("=", 1) for line in data.decode().splitlines())))

    def pings(self, from_s: float = 0, to_s: float = 1e9) -> list[float]:
        return [t for t, m in self.messages if "WATCHDOG" in m and from_s <= t < to_s]

    def statuses(self) -> list[str]:
        return [m["STATUS"] for _, m in self.messages if "STATUS" in m]


def start(tmp_path, custodian, policy=None):
    rig = Rig(str(tmp_path), custodian, policy or Policy(pre_event_s=5, segment_s=30))
    systemd = Systemd(str(tmp_path / "notify"))
    notifier = SdNotify({"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": str(WATCHDOG_SEC * 1_000_000)})
    service = ServiceWatchdog(rig.firmware, notifier)
    service.ready("buffering 5 s")

    def tick():
        service.tick(rig.clock.monotonic_us())
        systemd.drain((rig.clock.monotonic_us() - rig.t0) / 1e6)
        rig.clock.call_at(rig.clock.monotonic_us() + 500_000, tick)

    rig.clock.call_at(rig.t0 + 500_000, tick)
    return rig, systemd


def _gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:])]


def test_ready_then_pings_a_third_of_watchdogsec_apart_while_buffering_and_recording(tmp_path, custodian):
    rig, systemd = start(tmp_path, custodian)
    rig.double_press(3.0)
    rig.hold(10.0, 3.5)
    rig.run_until(16.0)
    rig.shutdown()
    assert systemd.messages[0][1] == {"READY": "1", "STATUS": "buffering 5 s"}
    pings = systemd.pings()
    assert pings and pings[0] <= 1.0 and pings[-1] >= 15.0
    assert max(_gaps(pings)) <= WATCHDOG_SEC / 3 + 0.5 and min(_gaps(pings)) >= WATCHDOG_SEC / 3
    assert "recording" in systemd.statuses() and systemd.statuses().count("buffering") >= 2


def test_a_pulled_camera_cord_keeps_the_watchdog_fed_while_audio_records(tmp_path, custodian):
    """A restart would end the event: the monitor's own reopening is the cure (FLT-1)."""
    rig, systemd = start(tmp_path, custodian)
    rig.double_press(2.0)
    rig.camera_loss(4.0, 9.0)
    rig.run_until(12.0)
    rig.shutdown()
    assert max(_gaps(systemd.pings(3.0, 12.0))) <= WATCHDOG_SEC / 3 + 0.5
    assert "recording (camera_lost)" in systemd.statuses()


def test_a_wedged_camera_stack_stops_the_pings_while_buffering_but_not_while_recording(tmp_path, custodian):
    rig, systemd = start(tmp_path, custodian)
    wedged = threading.Event()
    rig.world.camera.stuck = wedged.is_set   # what PiCamera reports after a stop() that never returned
    rig.at(3.0, wedged.set)
    rig.run_until(8.0)
    assert systemd.pings(3.5, 8.0) == []      # systemd restarts the service after WatchdogSec
    assert any(s.startswith("unhealthy: the camera stack is wedged") for s in systemd.statuses())
    rig.double_press(8.0)
    rig.run_until(14.0)
    rig.shutdown()
    # Recording: audio is the evidence being made, a restart would end it.
    assert len(systemd.pings(9.0, 14.0)) >= 4


def test_a_card_that_stops_taking_commits_while_recording_stops_the_pings(tmp_path, custodian, monkeypatch):
    release, hung = threading.Event(), []
    real = segment_file.SegmentFile.checkpoint

    def checkpoint(self, media_end_us):
        if not hung and self.chunk_count >= 3:
            hung.append(media_end_us)
            release.wait(60)   # a fsync that does not return
        return real(self, media_end_us)

    monkeypatch.setattr(segment_file.SegmentFile, "checkpoint", checkpoint)
    rig, systemd = start(tmp_path, custodian)
    rig.double_press(1.0)
    rig.at(30.0, release.set)
    rig.run_until(32.0)
    rig.catch_up()
    rig.shutdown()
    newest_s = (hung[0] - rig.t0) / 1e6
    silent = [t for t in _gaps_after(systemd.pings(), newest_s)]
    # Fed until ~10 s without a commit (COMMIT_STALL_RESTART_S), then silent until the card answers.
    assert silent and newest_s + 8 <= silent[0][0] <= newest_s + 12 and silent[0][1] >= 15
    assert any("no media has reached the card" in s for s in systemd.statuses())


def _gaps_after(pings: list[float], t_s: float) -> list[tuple[float, float]]:
    """(last ping before a silence, silence length) for silences over 2 s after t_s."""
    return [(a, b - a) for a, b in zip(pings, pings[1:]) if a >= t_s and b - a > 2]


def test_a_monitor_that_stopped_running_stops_the_pings(tmp_path, custodian):
    rig, systemd = start(tmp_path, custodian)
    rig.at(3.0, rig.firmware.monitor.stop)   # as if its thread hung
    rig.run_until(12.0)
    assert systemd.pings(2.0, 3.0) and systemd.pings(8.6, 12.0) == []   # stale 5 s after its last check
    assert any("health monitor has stopped" in s for s in systemd.statuses())
    rig.shutdown()


def test_outside_systemd_nothing_is_sent_and_nothing_fails(tmp_path):
    notifier = SdNotify({})
    assert not notifier.enabled and notifier.watchdog_interval_us is None
    assert notifier.send(READY=1) is False


def test_an_abstract_socket_and_another_pids_watchdog(tmp_path):
    name = f"openbwc-test-{id(tmp_path)}"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind("\0" + name)
    notifier = SdNotify({"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "1"})
    assert notifier.send(READY=1, STATUS="buffering")
    assert receiver.recv(100) == b"READY=1\nSTATUS=buffering"
    assert notifier.watchdog_interval_us is None   # systemd watches another process
    receiver.close()
