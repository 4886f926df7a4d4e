"""The `sim` fixture: a live run with a trigger input, closed after the test."""
from __future__ import annotations

import pytest

from sim_helpers import Sim


@pytest.fixture
def sim(tmp_path):
    s = Sim(str(tmp_path), triggers=("holster",))
    yield s
    s.close()
