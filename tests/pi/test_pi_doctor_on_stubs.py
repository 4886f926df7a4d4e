"""`bwc doctor --hal pi` on a Pi board built from the real picamera2 over the stubbed libcamera
and kernel devices (tests/pi/stubs), gpiozero's MockFactory and the real ALSA tools."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import picamera2_env
from alsa_env import make_alsa_env

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.tool


@pytest.fixture(scope="module")
def device(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("doctor-pi")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for args in (["keygen", "--out", root / "custodian"],
                 ["provision", "--device-id", "cam-doctor", "--custodian", root / "custodian" / "custodian.pub",
                  "--out", root / "device"]):
        subprocess.run([sys.executable, "-m", "openbwc", *map(str, args)], env=env, check=True, capture_output=True)
    return root / "device"


def _doctor(device: Path, tmp_path: Path, monkeypatch, platform: str, *extra: str) -> subprocess.CompletedProcess:
    alsa = make_alsa_env(tmp_path, monkeypatch.setenv)
    (device / "pi.toml").write_text(f'pin_factory = "mock"\nbattery = "none"\nwidth = 1280\nheight = 720\n'
                                    f'alsa_mic_device = "{alsa.tone_pcm}"\nalsa_speaker_device = "{alsa.speaker_pcm}"\n')
    env = picamera2_env.subprocess_env(dict(os.environ), cameras=1, platform=platform)
    env.update(PYTHONPATH=os.pathsep.join([env["PYTHONPATH"], str(REPO)]), GPIOZERO_MOCK_PIN_CLASS="mockpwmpin")
    return subprocess.run([sys.executable, "-m", "openbwc", "doctor", "--hal", "pi", "--device", str(device), *extra],
                          env=env, cwd=device, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("platform, encoder", [("vc4", "V4L2"), ("pisp", "libav")])
def test_the_camera_encoder_gpio_and_audio_checks_pass_on_a_stubbed_pi(device, tmp_path, monkeypatch,
                                                                       platform, encoder):
    result = _doctor(device, tmp_path, monkeypatch, platform, "--json")
    assert "Traceback" not in result.stderr, result.stderr
    checks = {c["check"]: c for c in json.loads(result.stdout)}
    for name in ("picamera2", "camera", "camera-mode", "encoder", "gpio-factory", "gpio-pins",
                 "audio-tools", "audio-capture", "storage-fs", "keys"):
        assert checks[name]["status"] == "ok", (name, checks[name])
    assert encoder.lower() in checks["encoder"]["detail"].lower()
    assert checks["battery"]["status"] == "warn" and "battery warnings off" in checks["battery"]["detail"]
    blocking = [c for c in checks.values() if c["blocking"] and c["status"] == "FAIL"]
    assert result.returncode == (1 if blocking else 0), blocking


def test_its_text_is_one_line_per_check(device, tmp_path, monkeypatch):
    result = _doctor(device, tmp_path, monkeypatch, "vc4")
    lines = result.stdout.strip().splitlines()
    assert all(line.split()[0] in ("ok", "warn", "FAIL") for line in lines[:-1]), result.stdout
    assert lines[-1].split(",")[0].endswith("ok")
