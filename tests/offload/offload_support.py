"""Helpers for the offload tier: devices provisioned to trust an intake key, recorded by the
real firmware on the simulator (virtual clock); copies of them for tests that change a card."""
from __future__ import annotations

import os
import shutil

from nacl.signing import SigningKey

from scenario_support import Device, scenario_toml
from tools.provision import provision

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
