"""A freshly provisioned device for a bench run: its directory and its custodian's keys."""
from __future__ import annotations

import os

from tools.provision import keygen, provision


def make_device(root: str, device_id: str = "bench-cam") -> tuple[str, str]:
    """root/device, provisioned to one custodian in root/custodian; returns the device
    directory and the custodian's secret key path."""
    secret_path, public_path = keygen(os.path.join(root, "custodian"))
    device_dir = os.path.join(root, "device")
    provision(device_id, [public_path], device_dir)
    return device_dir, secret_path
