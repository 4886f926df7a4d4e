"""Shared, session-scoped devices and recordings for the scenario tier.

Tests that only read a recording share it; tests that tamper copy its storage first.

The main recording (scenario_support.MAIN): 1 s keyframes, 3 s pre-event, 2 s segments;
a double press at 5 s starts the event, a short press at 7 s places a marker, a 3 s hold
from 9 s stops it at 12 s: about 10 s of event media in five or six segments.
"""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from scenario_support import (  # noqa: E402
    MAIN, Custodian, Recording, make_custodian, make_device, record, scenario_toml,
)


@pytest.fixture(scope="session")
def custodian(tmp_path_factory) -> Custodian:
    return make_custodian(str(tmp_path_factory.mktemp("custodian") / "keys"))


@pytest.fixture(scope="session")
def other_custodian(tmp_path_factory) -> Custodian:
    """A custodian key pair that no device was provisioned with."""
    return make_custodian(str(tmp_path_factory.mktemp("other-custodian") / "keys"))


@pytest.fixture(scope="session")
def main_recording(tmp_path_factory, custodian) -> Recording:
    root = tmp_path_factory.mktemp("main")
    device = make_device(str(root / "device"), custodian)
    text = scenario_toml(
        MAIN["duration_s"],
        [{"t_s": MAIN["double_press_t_s"], "do": "button.double_press"},
         {"t_s": MAIN["marker_t_s"], "do": "button.press"},
         {"t_s": MAIN["hold_t_s"], "do": "button.hold", "hold_s": MAIN["hold_s"]}],
        keyframe_interval_s=MAIN["keyframe_interval_s"],
        pre_event_s=MAIN["pre_event_s"], segment_s=MAIN["segment_s"])
    return record(device, custodian, text, str(root / "export"))
