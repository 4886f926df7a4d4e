"""Device identity and policy, loaded from the device directory with clear errors.

DEVICE_DIR/device.json  identity and custodian keys (written by `bwc provision`)
DEVICE_DIR/policy.toml  recording policy (defaults below; every key optional)
"""
from __future__ import annotations

import json
import math
import os
import re
import tomllib
from dataclasses import dataclass, field, fields

from device.evidence.keys import CUSTODIAN_PUBLIC, DEVICE_PUBLIC, INTAKE_PUBLIC, KeyFileError, parse_key
from device.gestures import DEFAULT_MAX_PRESS_US
from hal.inputs import RECORD_BUTTON

FIRMWARE_VERSION = "0.4.0"
# An earlier wall clock than this cannot be right: the clock is unset (FLT-4).
FIRMWARE_BUILD_UTC_US = 1_764_547_200_000_000   # 2025-12-01T00:00:00Z
TRIGGER_POLICIES = ("start", "start_stop")
ANNOUNCE_MODES = ("on_start", "deferred", "suppressed")
# BCP 47-ish: a primary language and an optional region or script ("en", "es-MX", "zh-Hant").
LANGUAGE_TAG = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?")
MAX_LANGUAGES, MAX_STOP_REASONS = 8, 8
# Trigger names end up in audit entries and sidecars ("trigger:NAME") and on the terminal:
# plain words only (the rule scenario steps follow too), never the record button's input name.
TRIGGER_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
# buffer_max_mib: 0 (sized from the bitrate), or a bound of at least 1 MiB (less holds
# about one HD keyframe, so no usable pre-event) and at most more RAM than any board has.
BUFFER_MIN_MIB, BUFFER_MAX_MIB = 1, 4096
# A press must outlast the debounce to count, and the gesture decoder treats anything
# held past DEFAULT_MAX_PRESS_US as no tap at all: a debounce that long accepts no press.
DEBOUNCE_MAX_MS = DEFAULT_MAX_PRESS_US // 1000 - 1
DEVICE_ID_MAX_CHARS = 64
# device.json is a few hundred bytes; a bound keeps a wrong file from being read whole.
IDENTITY_MAX_BYTES = 1 << 20


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
    # ANN-1..3 (docs/announce.md): when the announced-recording cue plays, and in what languages.
    announce: str = "on_start"           # "on_start" | "deferred" | "suppressed"
    announce_languages: list = field(default_factory=lambda: ["en", "es"])
    announce_defer_s: float = 10.0       # "deferred": the cue plays this long after the start
    announce_suppress_reason: str = ""   # required with "suppressed"; logged with every event
    # IND-3: a reminder pattern while recording; 0 turns it off.
    reminder_interval_s: float = 120.0
    # ACT-5 (docs/indicators.md): a hold asks for confirmation by short presses, whose
    # count picks the stop reason when stop_reasons is set (ACT-4).
    stop_confirm: bool = False
    stop_confirm_s: float = 5.0
    stop_reasons: list = field(default_factory=list)
    # FLT-1: no frame for this long is a lost camera; reopen attempts back off to the max.
    camera_timeout_s: float = 0.5
    camera_retry_max_s: float = 8.0
    # FLT-3: warn at this many minutes of recording left; close and shut down at the level.
    battery_warn_min: float = 10.0
    battery_critical_pct: float = 3.0
    # FLT-2: warn when the card holds less than this many minutes of recording.
    storage_warn_min: float = 30.0

    def gesture_timings(self) -> dict:
        """The record button's timings, for a paired pod's link.json (pod/pairing.py)."""
        return {"debounce_us": self.debounce_ms * 1000,
                "double_press_window_us": self.double_press_window_ms * 1000,
                "hold_us": round(self.hold_stop_s * 1e6)}

    def check(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            # NaN passes no range check by failing every comparison; refuse it and ±inf by name.
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{f.name} must be a finite number, got {value}", f.name)
        if not 0 <= self.pre_event_s <= 120:
            raise ConfigError(f"pre_event_s must be 0..120 seconds, got {self.pre_event_s}", "pre_event_s")
        if not 1 <= self.segment_s <= 3600:
            raise ConfigError(f"segment_s must be 1..3600 seconds, got {self.segment_s}", "segment_s")
        if not 0.1 <= self.flush_interval_s <= 10:
            raise ConfigError(f"flush_interval_s must be 0.1..10 seconds, got {self.flush_interval_s}",
                              "flush_interval_s")
        if self.buffer_max_mib != 0 and not BUFFER_MIN_MIB <= self.buffer_max_mib <= BUFFER_MAX_MIB:
            raise ConfigError(f"buffer_max_mib must be 0 (sized from the bitrate) or "
                              f"{BUFFER_MIN_MIB}..{BUFFER_MAX_MIB} MiB, got {self.buffer_max_mib}",
                              "buffer_max_mib")
        if not 0 <= self.debounce_ms <= DEBOUNCE_MAX_MS:
            raise ConfigError(f"debounce_ms must be 0..{DEBOUNCE_MAX_MS} ms, got {shown(self.debounce_ms)}",
                              "debounce_ms")
        if not 0 <= self.double_press_window_ms <= 5000:
            raise ConfigError(f"double_press_window_ms must be 0..5000 ms, got "
                              f"{shown(self.double_press_window_ms)}", "double_press_window_ms")
        if not self.debounce_ms < self.double_press_window_ms:
            raise ConfigError("double_press_window_ms must exceed debounce_ms", "double_press_window_ms")
        if not 1 <= self.hold_stop_s <= 30:
            raise ConfigError(f"hold_stop_s must be 1..30 seconds, got {self.hold_stop_s}", "hold_stop_s")
        for name, mode in self.triggers.items():
            problem = check_trigger_name(name)
            if problem:
                raise ConfigError(problem, name if isinstance(name, str) else None)
            if mode not in TRIGGER_POLICIES:
                raise ConfigError(f"triggers.{name} must be one of {TRIGGER_POLICIES}, got {shown(mode)}", name)

        self._check_activity_policy()

    def _check_activity_policy(self) -> None:
        if self.announce not in ANNOUNCE_MODES:
            raise ConfigError(f"announce must be one of {ANNOUNCE_MODES}, got {shown(self.announce)}", "announce")
        languages = self.announce_languages
        if not all(isinstance(x, str) and LANGUAGE_TAG.fullmatch(x) for x in languages):
            raise ConfigError("announce_languages must list language tags such as \"en\" or \"es-MX\"",
                              "announce_languages")
        if len(set(languages)) != len(languages) or len(languages) > MAX_LANGUAGES:
            raise ConfigError(f"announce_languages must name 1..{MAX_LANGUAGES} different languages",
                              "announce_languages")
        if not languages and self.announce != "suppressed":
            raise ConfigError("announce_languages is empty; use announce = \"suppressed\" with a reason",
                              "announce_languages")
        if not 0 <= self.announce_defer_s <= 600:
            raise ConfigError(f"announce_defer_s must be 0..600 seconds, got {self.announce_defer_s}",
                              "announce_defer_s")
        reason = self.announce_suppress_reason
        if self.announce == "suppressed" and not (reason.strip() and reason.isprintable() and len(reason) <= 200):
            raise ConfigError("announce = \"suppressed\" needs announce_suppress_reason: 1..200 printable "
                              "characters, logged with every event",
                              "announce_suppress_reason" if reason else "announce")
        if self.reminder_interval_s != 0 and not 10 <= self.reminder_interval_s <= 3600:
            raise ConfigError(f"reminder_interval_s must be 0 (off) or 10..3600 seconds, got "
                              f"{self.reminder_interval_s}", "reminder_interval_s")
        if not 1 <= self.stop_confirm_s <= 30:
            raise ConfigError(f"stop_confirm_s must be 1..30 seconds, got {self.stop_confirm_s}", "stop_confirm_s")
        reasons = self.stop_reasons
        if not all(isinstance(x, str) and TRIGGER_NAME.fullmatch(x) for x in reasons) \
                or len(set(reasons)) != len(reasons) or len(reasons) > MAX_STOP_REASONS:
            raise ConfigError(f"stop_reasons must list up to {MAX_STOP_REASONS} different plain words "
                              "(lowercase letters, digits, '_')", "stop_reasons")
        if reasons and not self.stop_confirm:
            raise ConfigError("stop_reasons needs stop_confirm = true: the presses that confirm a stop "
                              "pick its reason", "stop_reasons")
        if not 0.2 <= self.camera_timeout_s <= 0.9:
            raise ConfigError(f"camera_timeout_s must be 0.2..0.9 seconds (FLT-1: lost within 1 s), got "
                              f"{self.camera_timeout_s}", "camera_timeout_s")
        if not 1 <= self.camera_retry_max_s <= 60:
            raise ConfigError(f"camera_retry_max_s must be 1..60 seconds, got {self.camera_retry_max_s}",
                              "camera_retry_max_s")
        if not 5 <= self.battery_warn_min <= 120:
            raise ConfigError(f"battery_warn_min must be 5..120 minutes (FLT-3), got {self.battery_warn_min}",
                              "battery_warn_min")
        if not 0 <= self.battery_critical_pct <= 20:
            raise ConfigError(f"battery_critical_pct must be 0..20 %, got {self.battery_critical_pct}",
                              "battery_critical_pct")
        if not 1 <= self.storage_warn_min <= 600:
            raise ConfigError(f"storage_warn_min must be 1..600 minutes, got {self.storage_warn_min}",
                              "storage_warn_min")

    def buffer_max_bytes(self, bitrate_bps: int, keyframe_interval_s: float) -> int:
        if self.buffer_max_mib:
            return int(self.buffer_max_mib * 1024 * 1024)
        # Room for the pre-event plus two GOPs at twice the nominal bitrate (VBR peaks).
        return int(bitrate_bps / 8 * (self.pre_event_s + 2 * keyframe_interval_s) * 2) + 1_000_000


def check_trigger_name(name: object) -> str | None:
    """Why `name` cannot name a trigger input, or None if it can."""
    if not isinstance(name, str) or not TRIGGER_NAME.fullmatch(name) or name == RECORD_BUTTON:
        return (f"trigger name {shown(name)} must be 1..32 lowercase letters, digits or '_', "
                f"starting with a letter, and not {RECORD_BUTTON!r}")
    return None


def shown(value: object, limit: int = 40) -> str:
    """repr() for an error message: one short line, even for a 4000-digit integer."""
    if isinstance(value, int) and value.bit_length() > 128:
        return "a huge integer"  # repr() of one with over 4300 digits would itself raise
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


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
    except ValueError as exc:  # TOMLDecodeError, or an integer of over 4300 digits
        raise ConfigError(f"{source}: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{source}: arrays or tables nested too deeply") from None


_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string", dict: "a table",
               list: "an array"}


def type_name(default: object) -> str:
    """What a TOML value must be to replace `default`, for error messages."""
    return _TYPE_NAMES.get(type(default), type(default).__name__)


def as_type_of(default: object, value: object) -> object:
    """`value` as the type of `default`, or None if it is not one (bools are not numbers).

    An integral float is accepted for an int key. An integer too big for a float becomes
    inf, which Policy.check refuses by name.
    """
    if isinstance(default, bool) or not isinstance(default, (int, float)):
        return value if isinstance(value, type(default)) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(default, float):
        try:
            return float(value)
        except OverflowError:
            return math.inf
    if isinstance(value, float):
        return int(value) if value.is_integer() else None  # nan and inf are not integral
    return value


def build_policy(values: dict, base: Policy, source: str, text: str, prefix: str = "") -> Policy:
    """Apply overrides from a TOML table to `base`, checking names and types."""
    known = {f.name: f for f in fields(Policy)}
    changes = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{where(source, text, key)}: unknown policy key {shown(prefix + key)} "
                              f"(expected one of {', '.join(sorted(known))})")
        default = getattr(base, key)
        converted = as_type_of(default, value)
        if converted is None:
            raise ConfigError(f"{where(source, text, key)}: {prefix}{key} must be "
                              f"{type_name(default)}, got {shown(value)}")
        value = converted
        changes[key] = value
    policy = Policy(**{**{f: getattr(base, f) for f in known}, **changes})
    try:
        policy.check()
    except ConfigError as exc:
        place = where(source, text, exc.key) if exc.key else source
        raise ConfigError(f"{place}: {prefix}{exc}") from None
    return policy


def read_config_text(path: str) -> str:
    """A configuration file's text, or ConfigError saying why it cannot be read."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None


def load_policy(path: str) -> Policy:
    if not os.path.exists(path):
        return Policy()
    text = read_config_text(path)
    return build_policy(parse_toml(text, path), Policy(), path, text)


@dataclass(frozen=True)
class Identity:
    device_id: str
    device_public_key: bytes
    custodian_public_keys: tuple[bytes, ...]
    # Ed25519 keys of the evidence intakes whose custody receipts this device accepts (OFF-2).
    intake_public_keys: tuple[bytes, ...] = ()


def check_device_id(device_id: object) -> str | None:
    """Why `device_id` cannot name a device, or None if it can.

    It goes into every segment header and audit line: the verifier must accept what the
    device writes, and a terminal must show it on one line.
    """
    if not isinstance(device_id, str):
        return f"device_id must be a string, got {type(device_id).__name__}"
    if not 1 <= len(device_id) <= DEVICE_ID_MAX_CHARS or not device_id.isprintable():
        return f"device id must be 1..{DEVICE_ID_MAX_CHARS} printable characters"
    return None


def _unique_members(pairs: list[tuple[str, object]]) -> dict:
    # Two readers of one file must never see different values for one member.
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise ValueError("a member name is repeated")
    return dict(pairs)


def _read_identity_json(path: str, device_dir: str) -> object:
    try:
        with open(path, "rb") as f:
            raw = f.read(IDENTITY_MAX_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found; is {device_dir} a provisioned device? (bwc provision)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    if len(raw) > IDENTITY_MAX_BYTES:
        raise ConfigError(f"{path}: over {IDENTITY_MAX_BYTES} bytes; not a device identity")
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_members)
    except (ValueError, UnicodeDecodeError) as exc:  # also an integer of over 4300 digits
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid JSON (nested too deeply)") from None


def load_identity(device_dir: str) -> Identity:
    """DEVICE_DIR/device.json, every member checked; unknown members are ignored."""
    path = os.path.join(device_dir, "device.json")
    data = _read_identity_json(path, device_dir)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(data).__name__}")
    for name in ("device_id", "device_public_key", "custodian_public_keys"):
        if name not in data:
            raise ConfigError(f"{path}: missing key '{name}'")
    problem = check_device_id(data["device_id"])
    if problem:
        raise ConfigError(f"{path}: {problem}")
    if not isinstance(data["custodian_public_keys"], list):
        raise ConfigError(f"{path}: custodian_public_keys must be a list of key strings")
    try:
        device_key = parse_key(data["device_public_key"], DEVICE_PUBLIC, f"{path}: device_public_key")
        custodians = tuple(parse_key(k, CUSTODIAN_PUBLIC, f"{path}: custodian_public_keys[{i}]")
                           for i, k in enumerate(data["custodian_public_keys"]))
    except KeyFileError as exc:
        raise ConfigError(str(exc)) from None
    if not custodians:
        raise ConfigError(f"{path}: no custodian keys; footage could never be decrypted")
    if len(set(custodians)) != len(custodians):
        raise ConfigError(f"{path}: the same custodian key is listed twice")
    intakes = data.get("intake_public_keys", [])
    if not isinstance(intakes, list):
        raise ConfigError(f"{path}: intake_public_keys must be a list of key strings")
    try:
        intake_keys = tuple(parse_key(k, INTAKE_PUBLIC, f"{path}: intake_public_keys[{i}]")
                            for i, k in enumerate(intakes))
    except KeyFileError as exc:
        raise ConfigError(str(exc)) from None
    return Identity(data["device_id"], device_key, custodians, intake_keys)
