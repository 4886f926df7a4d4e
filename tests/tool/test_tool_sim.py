"""`bwc sim` as a user starts it: one line with the page's address, the page and its API on
127.0.0.1, Ctrl-C ends the run cleanly; wrong options are one line and exit 2."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from conftest import _keygen, _provision

pytestmark = pytest.mark.tool

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def device(tmp_path):
    return _provision(tmp_path, "sim-cam", _keygen(tmp_path, "custodian"))


def start_sim(*args) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen([sys.executable, "-m", "tools.cli", "sim", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("bwc sim: the camera is at http://127.0.0.1:"), (line, proc.stderr.read())
    return proc, line.split(" at ")[1].split()[0].rstrip("/")


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_the_page_is_served_and_ctrl_c_ends_the_run_cleanly(bwc, device):
    proc, url = start_sim("--device", device.dir, "--port", 0)
    try:
        with urllib.request.urlopen(url + "/", timeout=10) as page:
            assert b"<html" in page.read().lower()
        status = json.loads(urllib.request.urlopen(url + "/api/status", timeout=10).read())
        assert status["run"] == "running" and status["state"] == "buffering"
        assert "--key" in status["export"]["why"]
        assert post(url + "/api/step", {"do": "button.double_press"})["t_s"] > 0
        # While it runs, the device is taken: a second firmware is refused.
        second = bwc("run", "--device", device.dir, "--hal", "sim")
        assert second.returncode == 2 and "already running" in second.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "run ended after" in out and "Traceback" not in err
    # The event the page started was closed cleanly and verifies.
    verify = bwc("verify", device.storage, "--device-pub", device.pub)
    assert verify.returncode == 0 and "1 event(s)" in verify.stdout, str(verify)


@pytest.mark.parametrize("args, words", [
    (["--host", "0.0.0.0"], "loopback address only"),
    (["--port", "70000"], "--port 70000"),
    (["--source", "/no/such.mp4"], "--source /no/such.mp4: no such file"),
    (["--key", "/no/such.key"], "--key /no/such.key: no such file"),
    (["--pod", "Pod_1"], "--pod 'Pod_1'"),
    (["--trigger", "record"], "--trigger 'record'"),
])
def test_a_wrong_option_is_one_line_and_exit_2(bwc, device, args, words):
    result = bwc("sim", "--device", device.dir, "--port", 0, *args)
    assert result.returncode == 2 and words in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_directory_that_is_no_device_is_one_line_and_exit_2(bwc, tmp_path):
    result = bwc("sim", "--device", tmp_path, "--port", 0)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
