"""Custodian key generation and device provisioning (TOOL-1)."""
from __future__ import annotations

import json
import os

from nacl.public import PrivateKey
from nacl.signing import SigningKey

from device.config import FIRMWARE_VERSION, check_device_id
from device.evidence import keys
from hal.filekeystore import SIGNING_KEY_FILE, write_private_file

POLICY_TEMPLATE = """\
# OpenBWC recording policy (docs/scenarios.md lists every key). Defaults shown.
pre_event_s = 30          # seconds of video kept in RAM before an activation (0..120)
pre_event_audio = false   # keep audio in the pre-event buffer too
segment_s = 60            # split events into segments of about this length
flush_interval_s = 1.0    # media at risk on a power cut
double_press_window_ms = 500
hold_stop_s = 3.0

[triggers]                # input name = "start" | "start_stop"
"""


class ProvisionError(Exception):
    pass


def _fresh_dir(path: str) -> None:
    if os.path.exists(path) and not os.path.isdir(path):
        raise ProvisionError(f"{path} is a file; give a directory for the keys")
    if os.path.exists(path) and os.listdir(path):
        raise ProvisionError(f"{path} already exists and is not empty; refusing to overwrite keys")
    os.makedirs(path, mode=0o700, exist_ok=True)


def keygen(out_dir: str) -> tuple[str, str]:
    _fresh_dir(out_dir)
    secret = PrivateKey.generate()
    secret_path = os.path.join(out_dir, "custodian.key")
    public_path = os.path.join(out_dir, "custodian.pub")
    keys.write_secret(secret_path, keys.CUSTODIAN_SECRET, bytes(secret))
    keys.write_public(public_path, keys.CUSTODIAN_PUBLIC, bytes(secret.public_key))
    return secret_path, public_path


def release_keygen(out_dir: str) -> tuple[str, str]:
    """A releasing custodian's Ed25519 key pair: it signs release records (docs/release.md)."""
    _fresh_dir(out_dir)
    secret = SigningKey.generate()
    secret_path = os.path.join(out_dir, "release.key")
    public_path = os.path.join(out_dir, "release.pub")
    keys.write_secret(secret_path, keys.RELEASE_SECRET, bytes(secret))
    keys.write_public(public_path, keys.RELEASE_PUBLIC, bytes(secret.verify_key))
    return secret_path, public_path


def provision(device_id: str, custodian_pub_paths: list[str], out_dir: str,
              intake_pub_paths: list[str] = ()) -> str:
    problem = check_device_id(device_id)
    if problem:
        raise ProvisionError(problem)
    custodians = [keys.read_key(p, keys.CUSTODIAN_PUBLIC) for p in custodian_pub_paths]
    if len(set(custodians)) != len(custodians):
        raise ProvisionError("the same custodian key was given twice")
    intakes = [keys.read_key(p, keys.INTAKE_PUBLIC) for p in intake_pub_paths]
    _fresh_dir(out_dir)
    signing = SigningKey.generate()
    write_private_file(os.path.join(out_dir, SIGNING_KEY_FILE), bytes(signing).hex().encode())
    device_pub = bytes(signing.verify_key)
    keys.write_public(os.path.join(out_dir, "device.pub"), keys.DEVICE_PUBLIC, device_pub)
    identity = {
        "device_id": device_id,
        "device_public_key": keys.format_key(keys.DEVICE_PUBLIC, device_pub).strip(),
        "custodian_public_keys": [keys.format_key(keys.CUSTODIAN_PUBLIC, k).strip() for k in custodians],
        # Intakes whose custody receipts this device accepts (docs/format.md §9).
        "intake_public_keys": [keys.format_key(keys.INTAKE_PUBLIC, k).strip() for k in dict.fromkeys(intakes)],
        "provisioned_firmware": FIRMWARE_VERSION,
    }
    with open(os.path.join(out_dir, "device.json"), "x", encoding="utf-8") as f:
        json.dump(identity, f, indent=2)
    with open(os.path.join(out_dir, "policy.toml"), "x", encoding="utf-8") as f:
        f.write(POLICY_TEMPLATE)
    return os.path.join(out_dir, "device.pub")
