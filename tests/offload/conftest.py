"""Recorded devices for the offload tier (tests/offload/offload_support.py). Tests that change
a card copy the device first."""
from __future__ import annotations

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "scenario"))

from offload_support import TWO_EVENTS, copy_device, intake_signing_key, make_trusting_device  # noqa: E402
from scenario_support import Device, make_custodian, record  # noqa: E402
from device.evidence.keys import INTAKE_PUBLIC, write_public  # noqa: E402


@pytest.fixture(scope="session")
def fixed_intake_pub(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("fixed-intake") / "intake.pub")
    write_public(path, INTAKE_PUBLIC, bytes(intake_signing_key().verify_key))
    return path


@pytest.fixture(scope="session")
def offload_custodian(tmp_path_factory):
    return make_custodian(str(tmp_path_factory.mktemp("offload-custodian") / "keys"))


@pytest.fixture(scope="session")
def recorded_two_events(tmp_path_factory, offload_custodian, fixed_intake_pub) -> Device:
    """A device that trusts the fixed intake key and recorded TWO_EVENTS. Read-only: copy it."""
    device = make_trusting_device(str(tmp_path_factory.mktemp("two-events") / "device"), offload_custodian,
                                  fixed_intake_pub)
    record(device, offload_custodian, TWO_EVENTS, None)
    return device


@pytest.fixture
def card(recorded_two_events, tmp_path) -> Device:
    """A fresh copy of the recorded device, to change."""
    return copy_device(recorded_two_events, str(tmp_path / "device"))
