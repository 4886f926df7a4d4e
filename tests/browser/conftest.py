"""Browser tier: the `bwc sim` page (docs/sim-live.md) in a real headless Chromium.

The simulator is the real `bwc sim` command in a subprocess, on a freshly provisioned
device, on the wall clock; the page is driven with Playwright's Python API through the
browser's own input events (CDP), so the mouse's edges reach the firmware's gesture
decoder exactly as a person's would. Nothing is mocked.

Playwright drives the system's Chromium (Debian's `chromium` package, or $BWC_CHROMIUM):
`playwright install` downloads browsers from the network, which CI does not do. Without
Playwright or Chromium the tests fail with the line that installs it (as every test of a real
tool does here: nothing is skipped).

Screenshots of each state go to $BWC_ARTIFACTS_DIR, or to browser-screenshots/ under
pytest's temporary directory (printed with -s); they are for looking at, never committed.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tools.bench.devices import make_device

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60      # provisioning is done; this is the interpreter, PyAV and the first boot
STOP_TIMEOUT_S = 60       # a clean end closes the event and shuts the firmware down
URL_LINE = re.compile(r"(http://\S+/)")


def _chromium() -> str | None:
    path = os.environ.get("BWC_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[test]' (the test extra has it)")
    chromium = _chromium()
    if chromium is None:
        pytest.fail("no Chromium: apt-get install chromium (Debian's package), or set BWC_CHROMIUM to its path")
    with sync_playwright() as p:
        # --no-sandbox: CI runs as root in a container, where Chromium's sandbox cannot start.
        # The autoplay flag lets the page's speaker really play (it ignores a refusal anyway).
        b = p.chromium.launch(executable_path=chromium, headless=True,
                              args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    pg = context.new_page()
    errors: list[str] = []
    # A script error on the page is a failed test, not a silent half-working page.
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield pg
    finally:
        context.close()
    assert not errors, f"the page raised: {errors}"


@pytest.fixture(scope="session")
def artifacts_dir(tmp_path_factory) -> Path:
    chosen = os.environ.get("BWC_ARTIFACTS_DIR")
    path = Path(chosen) if chosen else tmp_path_factory.getbasetemp() / "browser-screenshots"
    path.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser screenshots: {path}")
    return path


@pytest.fixture
def shot(page, artifacts_dir, request):
    """shot(name): a full-page screenshot named after the test and the state."""
    count = [0]

    def take(name: str) -> Path:
        count[0] += 1
        path = artifacts_dir / f"{request.node.name}-{count[0]:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path
    return take


@dataclass
class Sim:
    """One `bwc sim` process and what it was started on."""
    url: str
    proc: subprocess.Popen
    device_dir: Path
    key: Path
    stderr_path: Path
    stdout_lines: list[str] = field(default_factory=list)
    expected_exit: int = 0   # docs/sim-live.md: 0 after a clean end, 1 if recording failed

    def api(self, method: str, path: str, body: object = None) -> tuple[int, object]:
        """One request to the simulator's HTTP API: (status, JSON or text)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url.rstrip("/") + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data is not None else {})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, raw, kind = r.status, r.read(), r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            status, raw, kind = exc.code, exc.read(), exc.headers.get("Content-Type", "")
        return status, (json.loads(raw) if kind.startswith("application/json") else raw.decode("utf-8", "replace"))

    def status(self) -> dict:
        code, body = self.api("GET", "/api/status")
        assert code == 200, (code, body)
        return body

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


def _env() -> dict:
    env = dict(os.environ)
    # The working tree under test, whichever way openbwc is installed in this venv.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("PYTHONWARNINGS", None)
    return env


def _read_url(proc: subprocess.Popen, lines: list[str]) -> str | None:
    """The page's address from the command's first line (printed once it is listening),
    waiting at most START_TIMEOUT_S: a thread reads, so a process that hangs before printing
    cannot hang the test."""
    found: list[str] = []

    def reader() -> None:
        for line in proc.stdout:
            lines.append(line)
            match = URL_LINE.search(line)
            if match and not found:
                found.append(match.group(1))
                break
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    t.join(START_TIMEOUT_S)
    return found[0] if found else None


@pytest.fixture
def sim(tmp_path):
    """`bwc sim --device D --port 0 --key K --trigger holster --pod pod-1` on a fresh device;
    stopped (SIGINT, as Ctrl-C) after the test, which must leave it exiting cleanly."""
    device_dir, key = make_device(str(tmp_path), "browser-cam")
    stderr_path = tmp_path / "sim.stderr"
    argv = [sys.executable, "-m", "tools.cli", "sim", "--device", device_dir, "--port", "0", "--key", key,
            "--trigger", "holster", "--pod", "pod-1", "--out", str(tmp_path / "export")]
    with open(stderr_path, "w", encoding="utf-8") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True, env=_env(), cwd=str(tmp_path))
    lines: list[str] = []
    url = _read_url(proc, lines)
    if url is None:
        proc.kill()
        proc.wait()
        pytest.fail(f"bwc sim printed no address within {START_TIMEOUT_S} s (exit {proc.returncode}):\n"
                    f"{''.join(lines)}{stderr_path.read_text()}")
    instance = Sim(url, proc, Path(device_dir), Path(key), stderr_path, lines)
    try:
        yield instance
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                pytest.fail(f"bwc sim did not stop within {STOP_TIMEOUT_S} s of SIGINT:\n{instance.stderr()}")
        rest = proc.stdout.read()
        proc.stdout.close()
        stderr = instance.stderr()
        assert "Traceback" not in stderr, f"a Python traceback reached bwc sim's terminal:\n{stderr}"
        assert proc.returncode == instance.expected_exit, f"bwc sim exited {proc.returncode}:\n{''.join(lines)}{rest}{stderr}"
