"""One firmware per device: while one `bwc run` holds a device, a second exits 2 and
changes nothing (docs/tools.md, "One firmware per device")."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.tool

REPO = Path(__file__).resolve().parents[2]

# Long enough never to end during the test; no steps, so once booted the first run only
# buffers in RAM. The test stops it (SIGSTOP) anyway, so nothing it does can change files.
IDLE_SCENARIO = """\
duration_s = 600

[camera]
width = 320
height = 180
fps = 10
keyframe_interval_s = 1
"""


def tree_hashes(root: Path) -> dict[str, str | None]:
    """Every file under `root` with its SHA-256, directories as None (hidden entries too)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
            for p in sorted(root.rglob("*"))}


def wait_until_booted(proc: subprocess.Popen, device: Path, timeout_s: float = 60) -> None:
    """Until the firmware has logged its boot and saved its chain state; then its lock must name it."""
    audit, state = device / "storage" / "audit-0000000001.log", device / "state"
    deadline = time.monotonic() + timeout_s
    while not (audit.is_file() and b'"type":"boot"' in audit.read_bytes() and state.is_dir() and any(state.iterdir())):
        assert proc.poll() is None, f"the first bwc run exited early: {proc.communicate()}"
        assert time.monotonic() < deadline, f"the first bwc run did not boot within {timeout_s} s"
        time.sleep(0.05)
    lock = device / "run.lock"
    assert lock.is_file() and lock.read_text() == f"{proc.pid}\n", "a booted firmware must hold the device lock"


def test_a_second_run_on_a_running_device_exits_2_and_touches_nothing(bwc, fresh_device, tmp_path, tiny_scenario):
    scenario = tmp_path / "idle.toml"
    scenario.write_text(IDLE_SCENARIO)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    first = subprocess.Popen([sys.executable, "-m", "tools.cli", "run", "--device", str(fresh_device.dir),
                              "--hal", "sim", "--scenario", str(scenario), "--realtime"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_booted(first, fresh_device.dir)
        first.send_signal(signal.SIGSTOP)  # holds its lock, writes nothing more
        before = tree_hashes(fresh_device.dir)
        assert "state/chain.json" in before and "storage/audit-0000000001.log" in before

        busy = f"bwc run: device {fresh_device.dir} is already running (pid {first.pid})\n"
        second = bwc("run", "--device", fresh_device.dir, "--hal", "sim", "--scenario", tiny_scenario)
        assert (second.returncode, second.stdout, second.stderr) == (2, "", busy), str(second)
        elsewhere = tmp_path / "other-card"
        third = bwc("run", "--device", fresh_device.dir, "--hal", "sim", "--scenario", tiny_scenario,
                    "--storage", elsewhere)
        assert (third.returncode, third.stderr) == (2, busy), str(third)
        pi = bwc("run", "--device", fresh_device.dir, "--hal", "pi", "--storage", elsewhere)
        assert (pi.returncode, pi.stderr) == (2, busy), str(pi)

        assert not elsewhere.exists(), "a refused run created a storage directory"
        assert tree_hashes(fresh_device.dir) == before, "a refused run changed the device directory"
    finally:
        first.kill()  # SIGKILL ends a stopped process too
        first.communicate(timeout=30)

    # The kernel dropped the lock with its holder: the device runs again without any cleanup.
    again = bwc("run", "--device", fresh_device.dir, "--hal", "sim", "--scenario", tiny_scenario)
    assert again.returncode == 0, str(again)
