"""A real evidence intake for the offload tests: `bwc intake init/enroll/serve` as a custodian
runs them (docs/offload.md §1, §7), on 127.0.0.1 with the embedded file store. The server
process is the intake tier's own helper (tests/intake/intake_client.py)."""
from __future__ import annotations

import importlib.util
import os
import sys

import pytest

from scenario_support import bwc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "intake"))


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


class Intake:
    """`bwc intake serve` in a subprocess on a port it picks; its access log (one JSON line
    per request) in a file."""

    def __init__(self, directory: str, store_dir: str, log_path: str) -> None:
        from intake_client import Server
        self.store_dir = store_dir
        self._server = Server(directory, self.store_url, log_path).start()
        self.port, self.url = self._server.port, self._server.url

    @property
    def store_url(self) -> str:
        return f"file://{self.store_dir}"

    def access_log(self) -> list[dict]:
        return self._server.access_log()

    def stop(self) -> None:
        code = self._server.stop()
        assert code == 0, f"bwc intake serve exited {code} on SIGTERM"
