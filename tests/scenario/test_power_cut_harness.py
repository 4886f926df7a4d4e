"""The power-cut harness (issue 5, SEG-4, AUD-2), tools/bench/powercut.py (shared with the
`powercut` bench suite): a real `bwc run --realtime` process is killed with SIGKILL at
random instants — during boot, before an activation, at the first header, mid-segment, at
a rollover, during the stop — then the device boots again and records again. After every
kill the card verifies as authentic (0) or cut short (3), never as tampered; every intact
event exports; and the media lost per kill is at most one flush interval plus 100 ms.

N = 8 in the default run; N = 200 with `-m slow` (BWC_POWER_CUTS overrides either).
"""
from __future__ import annotations

import os

import pytest

from tools.bench.powercut import HarnessResult, run_harness

pytestmark = pytest.mark.scenario


def _kills() -> int | None:
    return int(os.environ.get("BWC_POWER_CUTS", "0")) or None


def _check(result: HarnessResult) -> None:
    print(f"\npower-cut harness: {result.summary()}")
    assert result.violations == []
    assert set(result.outcomes) <= {"authentic", "truncated", "nothing on the card yet"}, result.outcomes
    assert not result.worst, f"kills that lost more than a flush interval + 100 ms: {result.worst}"


def test_power_cut_harness(tmp_path):
    _check(run_harness(str(tmp_path), _kills() or 8, seed=5))


@pytest.mark.slow
def test_power_cut_harness_many(tmp_path):
    _check(run_harness(str(tmp_path), _kills() or 200, seed=2026))
