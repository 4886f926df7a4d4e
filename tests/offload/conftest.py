"""Recorded devices for the offload tier: real firmware on the simulator (virtual clock),
provisioned to trust an intake key. Tests that change a card copy the device first."""
from __future__ import annotations

import os
import shutil
import sys

import pytest
from nacl.signing import SigningKey

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "scenario"))

from scenario_support import Device, make_custodian, record, scenario_toml  # noqa: E402
from device.evidence.keys import INTAKE_PUBLIC, write_public  # noqa: E402
from tools.provision import provision  # noqa: E402

# Two events: the first unmarked (segments 1–3), the second with a marker (4–6), 2 s segments.
TWO_EVENTS = scenario_toml(13, [{"t_s": 1.0, "do": "button.double_press"},
                                {"t_s": 3.0, "do": "button.hold", "hold_s": 3.0},
                                {"t_s": 7.0, "do": "button.double_press"},
                                {"t_s": 8.0, "do": "button.press"},
                                {"t_s": 9.0, "do": "button.hold", "hold_s": 3.0}], pre_event_s=1, segment_s=2)
# Fixed, so a receipt made in a test is one the device trusts.
INTAKE_SEED = bytes([42]) * 32


def intake_signing_key() -> SigningKey:
    return SigningKey(INTAKE_SEED)


def make_trusting_device(directory: str, custodian, intake_pub_path: str, device_id: str = "offload-cam") -> Device:
    pub = provision(device_id, [custodian.public_path], directory, [intake_pub_path])
    return Device(directory, pub)


def card_files(storage: str) -> dict[str, bytes]:
    """Every file on a card and its bytes: to show that something changed nothing."""
    out = {}
    for name in sorted(os.listdir(storage)):
        with open(os.path.join(storage, name), "rb") as f:
            out[name] = f.read()
    return out


def copy_device(device: Device, directory: str) -> Device:
    shutil.copytree(device.directory, directory)
    return Device(directory, os.path.join(directory, "device.pub"))


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
