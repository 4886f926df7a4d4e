"""`bwc run --hal pi` as systemd runs it, on a Pi board built from the real libraries.

The real picamera2 (its V4L2 encoder path, over the stubbed libcamera and kernel devices of
tests/pi/stubs), gpiozero's MockFactory chosen by name in pi.toml, the real arecord reading a
FIFO this test feeds at real-time pace, the real aplay, `battery = "none"`; systemd's side is
a real AF_UNIX datagram socket given as $NOTIFY_SOCKET. Real time, a few seconds: this is the
service's whole life (READY, watchdog pings, STOPPING on SIGTERM, a clean stop).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import picamera2_env
from alsa_env import RATE_HZ, make_alsa_env, tone
from device.evidence.keys import read_device_public
from device.evidence.storage_verify import verify_storage

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.tool


def _provision(tmp_path: Path) -> Path:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    run = lambda *a: subprocess.run([sys.executable, "-m", "openbwc", *map(str, a)], env=env, cwd=tmp_path,
                                    capture_output=True, text=True, check=True)
    run("keygen", "--out", tmp_path / "custodian")
    device = tmp_path / "device"
    run("provision", "--device-id", "cam-pi-e2e", "--custodian", tmp_path / "custodian" / "custodian.pub",
        "--out", device)
    return device


class Mic:
    """Feeds the FIFO microphone 10 ms of tone every 10 ms, as a sound card would."""

    def __init__(self, fifo: Path) -> None:
        self._fifo, self._stop = fifo, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        block = tone(RATE_HZ // 100).astype("<i2").tobytes()
        with open(self._fifo, "wb", buffering=0) as out:   # blocks until arecord opens it
            next_s = time.monotonic()
            while not self._stop.is_set():
                try:
                    out.write(block)
                except BrokenPipeError:
                    return
                next_s += 0.01
                time.sleep(max(0.0, next_s - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()


def test_the_service_says_ready_feeds_the_watchdog_and_stops_cleanly(tmp_path, monkeypatch):
    device = _provision(tmp_path)
    alsa = make_alsa_env(tmp_path, monkeypatch.setenv)
    (device / "pi.toml").write_text(f'pin_factory = "mock"\nbattery = "none"\nwidth = 640\nheight = 360\n'
                                    f'bitrate_bps = 1000000\nalsa_mic_device = "{alsa.fifo_mic_pcm}"\n'
                                    f'alsa_speaker_device = "{alsa.speaker_pcm}"\n')
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(0.5)
    env = picamera2_env.subprocess_env(dict(os.environ), cameras=1, platform="vc4")
    env.update(PYTHONPATH=os.pathsep.join([env["PYTHONPATH"], str(REPO)]), NOTIFY_SOCKET=str(tmp_path / "notify"),
               WATCHDOG_USEC="3000000", GPIOZERO_MOCK_PIN_CLASS="mockpwmpin")
    mic = Mic(alsa.mic_fifo)
    proc = subprocess.Popen([sys.executable, "-m", "openbwc", "run", "--device", str(device), "--hal", "pi"],
                            env=env, cwd=device, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    messages: list[tuple[float, dict]] = []
    started = time.monotonic()
    try:
        while time.monotonic() - started < 60:
            try:
                data = notify.recv(4096)
            except socket.timeout:
                if proc.poll() is not None:
                    break
                continue
            messages.append((time.monotonic(), dict(l.split("=", 1) for l in data.decode().splitlines())))
            pings = [t for t, m in messages if "WATCHDOG" in m]
            if len(pings) >= 3:
                break
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        mic.stop()
    while True:   # what was sent while stopping
        try:
            messages.append((time.monotonic(), dict(l.split("=", 1) for l in notify.recv(4096).decode().splitlines())))
        except socket.timeout:
            break
    assert proc.returncode == 0, stdout + stderr
    assert "Traceback" not in stderr, stderr
    kinds = [m for _, m in messages]
    assert kinds[0]["READY"] == "1"
    assert kinds[0]["STATUS"] == 'buffering 30 s; no battery gauge (battery = "none"): battery warnings are off'
    assert "battery warnings are off" in stdout
    pings = [t for t, m in messages if "WATCHDOG" in m]
    assert len(pings) >= 3, kinds
    # A third of WatchdogSec apart (1 s), not more often; stamped on receipt, so with some slack.
    assert all(b - a >= 0.5 for a, b in zip(pings, pings[1:]))
    assert not any(s.get("STATUS", "").startswith("unhealthy") for s in kinds), kinds
    assert any("camera_lost" in s.get("STATUS", "") for s in kinds) is False, kinds   # frames flowed
    assert "STOPPING" in kinds[-1] or any("STOPPING" in m for m in kinds)
    report = verify_storage(str(device / "storage"), read_device_public(str(device / "device.pub")))
    entries = report.audit.entries
    assert report.outcome == "authentic", report
    boot, = [e for e in entries if e["type"] == "boot"]
    assert boot["battery"] == "none"
    assert [e["source"] for e in entries if e["type"] == "shutdown"] == ["shutdown"]
    assert not [e for e in entries if e["type"] in ("watchdog", "media_gap", "recovery")], entries


def test_a_critical_battery_closes_cleanly_and_exits_3_which_the_unit_does_not_restart(tmp_path, monkeypatch):
    """Restart=always would boot into the same empty cell and shut down again, every few seconds."""
    device = _provision(tmp_path)
    alsa = make_alsa_env(tmp_path, monkeypatch.setenv)
    gauge = tmp_path / "power_supply" / "battery"
    gauge.mkdir(parents=True)
    for name, value in {"capacity": "1", "voltage_now": "3300000", "status": "Discharging"}.items():
        (gauge / name).write_text(value + "\n")
    (device / "pi.toml").write_text(f'pin_factory = "mock"\nbattery_sysfs_dir = "{gauge}"\nwidth = 640\n'
                                    f'height = 360\nbitrate_bps = 1000000\nalsa_mic_device = "{alsa.tone_pcm}"\n'
                                    f'alsa_speaker_device = "{alsa.speaker_pcm}"\n')
    env = picamera2_env.subprocess_env(dict(os.environ), cameras=1, platform="pisp")
    env.update(PYTHONPATH=os.pathsep.join([env["PYTHONPATH"], str(REPO)]), GPIOZERO_MOCK_PIN_CLASS="mockpwmpin")
    result = subprocess.run([sys.executable, "-m", "openbwc", "run", "--device", str(device), "--hal", "pi"],
                            env=env, cwd=device, capture_output=True, text=True, timeout=60)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "the battery reached its critical level" in result.stderr and "Traceback" not in result.stderr
    unit = (REPO / "tools" / "systemd" / "openbwc.service").read_text()
    assert "\nRestartPreventExitStatus=3\n" in unit
    report = verify_storage(str(device / "storage"), read_device_public(str(device / "device.pub")))
    assert report.outcome == "authentic"
    assert [e["source"] for e in report.audit.entries if e["type"] == "shutdown"] == ["battery_critical"]
