"""The intake's directory (docs/offload.md §1, §7): its signing key, its limits, and the
devices it admits. Every replica of one intake reads the same directory; enrolment is a
file per device, looked up per request, so a new device needs no restart."""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass

from nacl.signing import SigningKey

from device.evidence import keys
from device.offload.protocol import AUDIT_BATCH_MAX_BYTES, PART_BYTES_MAX

KEY_FILE, PUB_FILE, CONFIG_FILE, ENROLLED_DIR = "intake.key", "intake.pub", "intake.toml", "enrolled"
_DEVICE = re.compile(r"[0-9a-f]{64}\Z")

CONFIG_TEMPLATE = f"""\
# OpenBWC evidence intake (docs/offload.md §7). Defaults shown.
part_max_bytes = {PART_BYTES_MAX}      # largest upload part accepted
audit_max_bytes = {AUDIT_BATCH_MAX_BYTES}     # largest audit upload accepted
body_timeout_s = 30.0          # a body that stalls this long is refused (slow_body)
body_min_rate_bps = 4096.0     # ... or that arrives slower than this on the whole
max_connections = 256          # connections served at once; more are answered 503
shutdown_grace_s = 30.0        # how long requests in flight may finish at shutdown
"""


class IntakeConfigError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Limits:
    part_max_bytes: int = PART_BYTES_MAX
    audit_max_bytes: int = AUDIT_BATCH_MAX_BYTES
    body_timeout_s: float = 30.0
    body_min_rate_bps: float = 4096.0
    shutdown_grace_s: float = 30.0
    max_connections: int = 256


@dataclass(frozen=True, slots=True)
class Intake:
    directory: str
    signing_key: SigningKey
    limits: Limits

    @property
    def public_key_hex(self) -> str:
        return bytes(self.signing_key.verify_key).hex()

    def is_enrolled(self, device_hex: str) -> bool:
        return bool(_DEVICE.match(device_hex)) and \
            os.path.isfile(os.path.join(self.directory, ENROLLED_DIR, f"{device_hex}.pub"))


def init_intake(out_dir: str) -> tuple[str, str]:
    """Make INTAKE_DIR; returns (key path, public key path). Refuses a non-empty dir."""
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise IntakeConfigError(f"{out_dir} is a file; give a directory for the intake")
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        raise IntakeConfigError(f"{out_dir} already exists and is not empty; refusing to overwrite an intake key")
    os.makedirs(os.path.join(out_dir, ENROLLED_DIR), mode=0o700, exist_ok=True)
    os.chmod(out_dir, 0o700)
    key = SigningKey.generate()
    key_path, pub_path = os.path.join(out_dir, KEY_FILE), os.path.join(out_dir, PUB_FILE)
    keys.write_secret(key_path, keys.INTAKE_SECRET, bytes(key))
    keys.write_public(pub_path, keys.INTAKE_PUBLIC, bytes(key.verify_key))
    with open(os.path.join(out_dir, CONFIG_FILE), "w", encoding="utf-8") as f:
        f.write(CONFIG_TEMPLATE)
    return key_path, pub_path


def enroll_device(intake_dir: str, device_pub_path: str) -> tuple[str, bool]:
    """Admit a device; returns (its key hex, True if it was new)."""
    load_intake(intake_dir)  # a directory that is not an intake is refused here
    device = keys.read_key(device_pub_path, keys.DEVICE_PUBLIC).hex()
    path = os.path.join(intake_dir, ENROLLED_DIR, f"{device}.pub")
    if os.path.exists(path):
        return device, False
    os.makedirs(os.path.dirname(path), exist_ok=True)
    keys.write_public(path, keys.DEVICE_PUBLIC, bytes.fromhex(device))
    return device, True


def load_intake(intake_dir: str) -> Intake:
    key_path = os.path.join(intake_dir, KEY_FILE)
    if not os.path.isfile(key_path):
        raise IntakeConfigError(f"{intake_dir} is not an intake directory (no {KEY_FILE}; make one with bwc intake init)")
    signing = SigningKey(keys.read_key(key_path, keys.INTAKE_SECRET))
    return Intake(os.path.abspath(intake_dir), signing, _limits(os.path.join(intake_dir, CONFIG_FILE)))


def _limits(path: str) -> Limits:
    if not os.path.exists(path):
        return Limits()
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise IntakeConfigError(f"{path}: {exc}") from None
    known = {f: type(getattr(Limits(), f)) for f in Limits.__slots__}
    values = {}
    for name, value in data.items():
        if name not in known:
            raise IntakeConfigError(f"{path}: unknown setting {name!r} (known: {', '.join(sorted(known))})")
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) if known[name] is float \
            else isinstance(value, int) and not isinstance(value, bool)
        if not ok or not value > 0:
            raise IntakeConfigError(f"{path}: {name} must be a positive number")
        values[name] = float(value) if known[name] is float else value
    if values.get("part_max_bytes", PART_BYTES_MAX) > PART_BYTES_MAX:
        raise IntakeConfigError(f"{path}: part_max_bytes may be at most {PART_BYTES_MAX}")
    return Limits(**values)
