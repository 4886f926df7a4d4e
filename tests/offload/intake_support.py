"""A real evidence intake for the offload tests: `bwc intake init/enroll/serve` as a custodian
runs them (docs/offload.md §1, §7), on 127.0.0.1 with the embedded file store."""
from __future__ import annotations

import http.client
import importlib.util
import json
import os
import socket
import subprocess
import time

import pytest

from scenario_support import _bwc_env, bwc, bwc_command

READY_TIMEOUT_S = 30


def need_intake() -> None:
    if importlib.util.find_spec("tools.intake") is None:
        pytest.skip("the intake server (branch helper-intake) is not merged into this tree yet")


def init_intake(directory: str) -> str:
    """INTAKE_DIR made by `bwc intake init`; returns the path of its intake.pub."""
    result = bwc("intake", "init", "--out", directory)
    assert result.returncode == 0, result.stderr
    return os.path.join(directory, "intake.pub")


def enroll(directory: str, device_pub: str) -> None:
    result = bwc("intake", "enroll", directory, "--device-pub", device_pub)
    assert result.returncode == 0, result.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Intake:
    """`bwc intake serve` in a subprocess; the access log (one JSON line per request) in a file."""

    def __init__(self, directory: str, store_dir: str, log_path: str) -> None:
        self.directory, self.store_dir, self.log_path = directory, store_dir, log_path
        self.port = _free_port()
        self._log = open(log_path, "w", encoding="utf-8")
        self.proc = subprocess.Popen([*bwc_command(), "intake", "serve", directory, "--listen",
                                      f"127.0.0.1:{self.port}", "--store", self.store_url],
                                     stdout=subprocess.DEVNULL, stderr=self._log, env=_bwc_env())
        self._wait_ready()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def store_url(self) -> str:
        return f"file://{self.store_dir}"

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            assert self.proc.poll() is None, open(self.log_path).read()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
                conn.close()
            except OSError:
                pass
            assert time.monotonic() < deadline, f"intake not ready after {READY_TIMEOUT_S} s"
            time.sleep(0.1)     # a socket that is not listening yet answers at once: pace the retries

    def access_log(self) -> list[dict]:
        self._log.flush()
        out = []
        with open(self.log_path, encoding="utf-8") as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass        # uvicorn's own start-up lines
        return out

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        finally:
            self._log.close()
