"""Device identity and policy, loaded from the device directory with clear errors.

DEVICE_DIR/device.json  identity and custodian keys (written by `bwc provision`)
DEVICE_DIR/policy.toml  recording policy (defaults below; every key optional)
"""
from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field, fields

from device.evidence.keys import KeyFileError, parse_key, CUSTODIAN_PUBLIC, DEVICE_PUBLIC

FIRMWARE_VERSION = "0.2.0"
TRIGGER_POLICIES = ("start", "start_stop")


class ConfigError(ValueError):
    """A configuration or scenario file is wrong; the message names the key and line."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key  # the offending key, so callers can add its line number


@dataclass(frozen=True)
class Policy:
    pre_event_s: float = 30.0          # BUF-1: 0..120
    pre_event_audio: bool = False      # BUF-1: keep audio in the buffer too
    buffer_max_mib: float = 0.0        # 0: sized from the camera bitrate
    segment_s: float = 60.0            # SEG-1: split at the first keyframe after this
    flush_interval_s: float = 1.0      # SEG-4: media at risk on a power cut
    debounce_ms: int = 20              # ACT-1
    double_press_window_ms: int = 500
    hold_stop_s: float = 3.0
    triggers: dict = field(default_factory=dict)  # ACT-2: input name -> "start" | "start_stop"

    def check(self) -> None:
        if not 0 <= self.pre_event_s <= 120:
            raise ConfigError(f"pre_event_s must be 0..120 seconds, got {self.pre_event_s}", "pre_event_s")
        if not 1 <= self.segment_s <= 3600:
            raise ConfigError(f"segment_s must be 1..3600 seconds, got {self.segment_s}", "segment_s")
        if not 0.1 <= self.flush_interval_s <= 10:
            raise ConfigError(f"flush_interval_s must be 0.1..10 seconds, got {self.flush_interval_s}",
                              "flush_interval_s")
        if self.buffer_max_mib < 0:
            raise ConfigError("buffer_max_mib must not be negative", "buffer_max_mib")
        for name, value in (("debounce_ms", self.debounce_ms), ("double_press_window_ms", self.double_press_window_ms)):
            if not 0 <= value <= 5000:
                raise ConfigError(f"{name} must be 0..5000 ms, got {value}", name)
        if not self.debounce_ms < self.double_press_window_ms:
            raise ConfigError("double_press_window_ms must exceed debounce_ms", "double_press_window_ms")
        if not 1 <= self.hold_stop_s <= 30:
            raise ConfigError(f"hold_stop_s must be 1..30 seconds, got {self.hold_stop_s}", "hold_stop_s")
        for name, mode in self.triggers.items():
            if mode not in TRIGGER_POLICIES:
                raise ConfigError(f"triggers.{name} must be one of {TRIGGER_POLICIES}, got {mode!r}", name)

    def buffer_max_bytes(self, bitrate_bps: int, keyframe_interval_s: float) -> int:
        if self.buffer_max_mib:
            return int(self.buffer_max_mib * 1024 * 1024)
        # Room for the pre-event plus two GOPs at twice the nominal bitrate (VBR peaks).
        return int(bitrate_bps / 8 * (self.pre_event_s + 2 * keyframe_interval_s) * 2) + 1_000_000


def _line_of(text: str, key: str) -> int | None:
    """Best-effort line number of `key = ...` in TOML text, for error messages."""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith(key) and stripped[len(key):].lstrip().startswith("="):
            return number
    return None


def where(source: str, text: str, key: str) -> str:
    line = _line_of(text, key.rpartition(".")[2])
    return f"{source}, line {line}" if line else source


def parse_toml(text: str, source: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def build_policy(values: dict, base: Policy, source: str, text: str, prefix: str = "") -> Policy:
    """Apply overrides from a TOML table to `base`, checking names and types."""
    known = {f.name: f for f in fields(Policy)}
    changes = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{where(source, text, key)}: unknown policy key '{prefix}{key}' "
                              f"(expected one of {', '.join(sorted(known))})")
        default = getattr(base, key)
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, (int, float)):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if ok and isinstance(default, int) and not isinstance(default, bool) and not float(value).is_integer():
                ok = False
            value = type(default)(value) if ok else value
        else:
            ok = isinstance(value, type(default))
        if not ok:
            raise ConfigError(f"{where(source, text, key)}: {prefix}{key} must be a "
                              f"{type(default).__name__}, got {value!r}")
        changes[key] = value
    policy = Policy(**{**{f: getattr(base, f) for f in known}, **changes})
    try:
        policy.check()
    except ConfigError as exc:
        place = where(source, text, exc.key) if exc.key else source
        raise ConfigError(f"{place}: {prefix}{exc}") from None
    return policy


def load_policy(path: str) -> Policy:
    if not os.path.exists(path):
        return Policy()
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    return build_policy(parse_toml(text, path), Policy(), path, text)


@dataclass(frozen=True)
class Identity:
    device_id: str
    device_public_key: bytes
    custodian_public_keys: tuple[bytes, ...]
    # Ed25519 keys of the evidence intakes whose custody receipts this device accepts (OFF-2).
    intake_public_keys: tuple[bytes, ...] = ()


def load_identity(device_dir: str) -> Identity:
    path = os.path.join(device_dir, "device.json")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found; is {device_dir} a provisioned device? (bwc provision)") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    try:
        device_id = data["device_id"]
        device_key = parse_key(data["device_public_key"], DEVICE_PUBLIC, path)
        custodians = tuple(parse_key(k, CUSTODIAN_PUBLIC, path) for k in data["custodian_public_keys"])
    except KeyError as exc:
        raise ConfigError(f"{path}: missing key {exc}") from None
    except (KeyFileError, TypeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if not custodians:
        raise ConfigError(f"{path}: no custodian keys; footage could never be decrypted")
    return Identity(device_id, device_key, custodians)
