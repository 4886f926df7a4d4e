"""The evidence-set vectors (tests/vectors/sets/, docs/format.md §6, §10): each committed
set verifies to its expected outcome, exit code and gap kinds."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from device.evidence.keys import read_device_public
from device.evidence.storage_verify import verify_storage

SETS = Path(__file__).resolve().parents[1] / "vectors" / "sets"
REPO = Path(__file__).resolve().parents[2]
CASES = sorted(p.name for p in SETS.iterdir() if (p / "expect.json").is_file())


def test_there_is_a_vector_for_every_outcome_and_gap_kind():
    expected = [json.loads((SETS / c / "expect.json").read_text()) for c in CASES]
    assert {e["outcome"] for e in expected} == {"authentic", "truncated", "before_set", "integrity_failure"}
    assert {g for e in expected for g in e["gaps"]} == {"before_set", "receipt", "storage_fault", "power_loss"}


@pytest.mark.parametrize("case", CASES)
def test_set_vector(case):
    expect = json.loads((SETS / case / "expect.json").read_text())
    report = verify_storage(str(SETS / case / "storage"), read_device_public(str(SETS / case / "device.pub")))
    assert report.outcome == expect["outcome"], report.to_json()
    assert sorted(g.kind for g in report.gaps) == expect["gaps"], report.to_json()
    assert case.startswith(expect["outcome"])


@pytest.mark.parametrize("case", [c for c in CASES if c.startswith(("before_set", "truncated_power"))][:2])
def test_set_vector_exit_code_through_the_command_line(case):
    expect = json.loads((SETS / case / "expect.json").read_text())
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "tools.cli", "verify", str(SETS / case / "storage"),
                        "--device-pub", str(SETS / case / "device.pub")], capture_output=True, text=True, env=env)
    assert r.returncode == expect["exit"], r.stdout + r.stderr
