"""Tool tier: the real `bwc` command in subprocesses, observed the way a custodian would.

Every invocation goes through the `bwc` fixture, which runs
`python -m tools.cli ...` with the interpreter running the tests (so any venv
works), captures stdout/stderr, and fails the test if a Python traceback
reaches the terminal: no bad input may end in one.

Session fixtures give one custodian, one provisioned device with one small
recording (two events, a marker) and one export of it. Tests only read them;
a test that writes gets its own copy (`fresh_device`) or its own tmp_path.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Two events: a double press starts one (with a marker), a hold stops it; a
# trigger line starts and stops the second. 320x180 at 10 fps keeps it fast.
RECORDING_SCENARIO = """\
description = "tool tier: two short events, one marker"
duration_s = 6

[camera]
width = 320
height = 180
fps = 10
keyframe_interval_s = 1

[policy]
pre_event_s = 1
segment_s = 2
hold_stop_s = 1

[policy.triggers]
holster = "start_stop"

[[at]]
t_s = 1
do = "button.double_press"

[[at]]
t_s = 1.8
do = "button.press"

[[at]]
t_s = 2.5
do = "button.hold"
hold_s = 1.2

[[at]]
t_s = 4.2
do = "trigger.on"
name = "holster"

[[at]]
t_s = 5.5
do = "trigger.off"
name = "holster"
"""

# One event, for tests that record on their own device.
def one_event_scenario(duration_s: float, width: int = 320, height: int = 180, then: tuple = ()) -> str:
    """A small 10 fps scenario whose one event starts at 1 s; `then`: (t_s, action) after it."""
    text = (f"duration_s = {duration_s}\n\n[camera]\nwidth = {width}\nheight = {height}\nfps = 10\n"
            "keyframe_interval_s = 1\n\n[policy]\npre_event_s = 1\nsegment_s = 2\n\n"
            '[[at]]\nt_s = 1\ndo = "button.double_press"\n')
    return text + "".join(f'\n[[at]]\nt_s = {t_s}\ndo = "{action}"\n' for t_s, action in then)


TINY_SCENARIO = one_event_scenario(3)


@dataclass
class Result:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:  # shown by pytest when an assertion on a Result fails
        return (f"bwc {' '.join(self.args)} -> exit {self.returncode}\n"
                f"--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}")


def _run_bwc(*args: object, cwd: str | os.PathLike | None = None, timeout: float = 120) -> Result:
    env = dict(os.environ)
    # The working tree under test, whichever way openbwc is installed in this venv.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("PYTHONWARNINGS", None)
    argv = tuple(str(a) for a in args)
    proc = subprocess.run([sys.executable, "-m", "tools.cli", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    result = Result(argv, proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in result.stderr, f"a Python traceback reached the terminal:\n{result}"
    assert "Traceback" not in result.stdout, f"a Python traceback reached the terminal:\n{result}"
    return result


@pytest.fixture(scope="session")
def bwc():
    """bwc(*args, cwd=None) -> Result; fails on any traceback in stdout or stderr."""
    return _run_bwc


@dataclass(frozen=True)
class Custodian:
    dir: Path
    key: Path   # secret
    pub: Path


@dataclass(frozen=True)
class Device:
    dir: Path
    pub: Path

    @property
    def storage(self) -> Path:
        return self.dir / "storage"


@dataclass(frozen=True)
class Recording:
    device: Device
    custodian: Custodian
    scenario: Path
    result: Result

    @property
    def storage(self) -> Path:
        return self.device.storage


@dataclass(frozen=True)
class Export:
    out: Path
    result: Result


def _keygen(base: Path, name: str) -> Custodian:
    out = base / name
    r = _run_bwc("keygen", "--out", out)
    assert r.returncode == 0, str(r)
    return Custodian(out, out / "custodian.key", out / "custodian.pub")


def _provision(base: Path, device_id: str, *custodians: Custodian) -> Device:
    out = base / device_id
    args = ["provision", "--device-id", device_id, "--out", out]
    for c in custodians:
        args += ["--custodian", c.pub]
    r = _run_bwc(*args)
    assert r.returncode == 0, str(r)
    return Device(out, out / "device.pub")


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tool")


@pytest.fixture(scope="session")
def tiny_scenario(session_dir) -> Path:
    """TINY_SCENARIO as a file (one event, 3 s). Read only."""
    path = session_dir / "tiny.toml"
    path.write_text(TINY_SCENARIO, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def custodian(session_dir) -> Custodian:
    return _keygen(session_dir, "custodian")


@pytest.fixture(scope="session")
def second_custodian(session_dir) -> Custodian:
    return _keygen(session_dir, "custodian2")


@pytest.fixture(scope="session")
def recording(session_dir, custodian) -> Recording:
    """cam-rec-01, provisioned for `custodian`, with RECORDING_SCENARIO recorded. Read only."""
    device = _provision(session_dir, "cam-rec-01", custodian)
    scenario = session_dir / "two-events.toml"
    scenario.write_text(RECORDING_SCENARIO, encoding="utf-8")
    result = _run_bwc("run", "--device", device.dir, "--hal", "sim", "--scenario", scenario)
    return Recording(device, custodian, scenario, result)


@pytest.fixture(scope="session")
def blank_device(session_dir, custodian) -> Device:
    """cam-blank-02: provisioned, never run. Read only; copy it with `fresh_device`."""
    return _provision(session_dir, "cam-blank-02", custodian)


@pytest.fixture
def fresh_device(blank_device, tmp_path) -> Device:
    """A private copy of the never-run device (same keys, modes kept), for tests that write."""
    dest = tmp_path / "device"
    shutil.copytree(blank_device.dir, dest)
    return Device(dest, dest / "device.pub")


@pytest.fixture(scope="session")
def export_unpinned(session_dir, recording) -> Export:
    """`bwc export` of the session recording without --device-pub. Read only."""
    out = session_dir / "export-unpinned"
    r = _run_bwc("export", recording.storage, "--key", recording.custodian.key, "--out", out)
    return Export(out, r)


@pytest.fixture(scope="session")
def export_pinned(session_dir, recording) -> Export:
    """`bwc export` of the session recording with --device-pub. Read only."""
    out = session_dir / "export-pinned"
    r = _run_bwc("export", recording.storage, "--key", recording.custodian.key, "--out", out,
                 "--device-pub", recording.device.pub)
    return Export(out, r)


def listing(path: Path) -> dict[str, bytes | None]:
    """Every entry under `path`, hidden ones too: files with their bytes, directories as None."""
    return {str(p.relative_to(path)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(path.rglob("*"))}


@pytest.fixture(scope="session")
def snapshot():
    return listing
