"""Fixtures for the group activation tests (helpers in group_helpers.py)."""
from __future__ import annotations

import json

import pytest

from group_helpers import VECTORS, WALL_US, Ether
from simulator.clock import VirtualClock


@pytest.fixture
def clock():
    return VirtualClock(start_wall_us=WALL_US)


@pytest.fixture
def ether(clock):
    return Ether(clock)


@pytest.fixture
def vectors():
    return json.loads(VECTORS.read_text(encoding="ascii"))
