"""Scenario files (SIM-3, docs/scenarios.md): TOML scripts of inputs over simulated time."""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from device.config import ConfigError, Policy, build_policy, parse_toml
from hal.media import VideoFormat

ACTIONS = ("button.press", "button.double_press", "button.hold", "trigger.on", "trigger.off", "power.cut")
DEFAULT_VIDEO = VideoFormat(width=640, height=360, fps=30, keyframe_interval_s=2.0, bitrate_bps=1_500_000)
_CAMERA_KEYS = {"width": int, "height": int, "fps": int, "keyframe_interval_s": (int, float), "bitrate_bps": int,
                "constant_bitrate": bool}
_TOP_KEYS = {"duration_s", "camera", "policy", "at", "description"}


@dataclass(frozen=True)
class Step:
    t_s: float
    action: str
    hold_s: float = 3.0
    name: str = ""


@dataclass(frozen=True)
class Scenario:
    duration_s: float
    video: VideoFormat = DEFAULT_VIDEO
    constant_bitrate: bool = False   # pad to exactly bitrate_bps, like a CBR hardware encoder
    policy_overrides: dict = field(default_factory=dict)
    steps: tuple[Step, ...] = ()
    source: str = "<built-in>"
    text: str = ""

    @property
    def trigger_names(self) -> tuple[str, ...]:
        return tuple(sorted({s.name for s in self.steps if s.action.startswith("trigger.")}))

    def apply_policy(self, base: Policy) -> Policy:
        return build_policy(self.policy_overrides, base, self.source, self.text, prefix="policy.")


def _at_line(text: str, index: int, key: str | None) -> int | None:
    """Line of the index-th [[at]] table (or of `key` inside it)."""
    lines = text.splitlines()
    headers = [n for n, line in enumerate(lines) if re.match(r"\s*\[\[\s*at\s*\]\]", line)]
    if index >= len(headers):
        return None
    start = headers[index]
    if key is None:
        return start + 1
    for n in range(start + 1, len(lines)):
        if re.match(r"\s*\[", lines[n]):
            break
        if re.match(rf"\s*{re.escape(key)}\s*=", lines[n]):
            return n + 1
    return start + 1


def _error(source: str, line: int | None, message: str) -> ConfigError:
    return ConfigError(f"{source}, line {line}: {message}" if line else f"{source}: {message}")


def _key_line(text: str, key: str) -> int | None:
    for n, line in enumerate(text.splitlines(), start=1):
        if re.match(rf"\s*{re.escape(key)}\s*=", line):
            return n
    return None


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_scenario(text: str, source: str) -> Scenario:
    data = parse_toml(text, source)
    for key in data:
        if key not in _TOP_KEYS:
            raise _error(source, _key_line(text, key), f"unknown key {key!r} (expected one of {sorted(_TOP_KEYS)})")
    duration_s = data.get("duration_s")
    if not _number(duration_s) or not 0 < duration_s <= 24 * 3600:
        raise _error(source, _key_line(text, "duration_s"), "duration_s must be a number of seconds, 0 < duration_s <= 86400")
    video = DEFAULT_VIDEO
    constant_bitrate = False
    camera = data.get("camera", {})
    if not isinstance(camera, dict):
        raise _error(source, _key_line(text, "camera"), "camera must be a table")
    for key, value in camera.items():
        if key not in _CAMERA_KEYS:
            raise _error(source, _key_line(text, key), f"unknown key camera.{key} (expected one of {sorted(_CAMERA_KEYS)})")
        if key == "constant_bitrate":
            if not isinstance(value, bool):
                raise _error(source, _key_line(text, key), f"camera.constant_bitrate must be true or false, got {value!r}")
            constant_bitrate = value
            continue
        if not isinstance(value, _CAMERA_KEYS[key]) or isinstance(value, bool) or value <= 0:
            raise _error(source, _key_line(text, key), f"camera.{key} must be a positive number, got {value!r}")
        video = replace(video, **{key: value})
    if video.width % 2 or video.height % 2 or not (64 <= video.width <= 3840 and 64 <= video.height <= 2160):
        raise _error(source, _key_line(text, "width"), "camera width and height must be even, 64..3840 x 64..2160")
    if video.fps > 120:
        raise _error(source, _key_line(text, "fps"), "camera.fps must be at most 120")
    policy = data.get("policy", {})
    if not isinstance(policy, dict):
        raise _error(source, _key_line(text, "policy"), "policy must be a table")
    build_policy(policy, Policy(), source, text, prefix="policy.")  # checked now, applied later
    steps = []
    at = data.get("at", [])
    if not isinstance(at, list):
        raise _error(source, _key_line(text, "at"), "use [[at]] tables for scripted steps")
    for index, entry in enumerate(at):
        steps.append(_parse_step(entry, index, duration_s, source, text))
    return Scenario(duration_s, video, constant_bitrate, policy,
                    tuple(sorted(steps, key=lambda s: s.t_s)), source, text)


def _parse_step(entry: dict, index: int, duration_s: float, source: str, text: str) -> Step:
    def fail(key: str | None, message: str) -> ConfigError:
        return _error(source, _at_line(text, index, key), f"[[at]] #{index + 1}: {message}")

    for key in entry:
        if key not in ("t_s", "do", "hold_s", "name"):
            raise fail(key, f"unknown key {key!r} (expected t_s, do, hold_s, name)")
    t_s = entry.get("t_s")
    if not _number(t_s) or not 0 <= t_s <= duration_s:
        raise fail("t_s" if "t_s" in entry else None, f"t_s must be a time within 0..duration_s ({duration_s}), got {t_s!r}")
    action = entry.get("do")
    if action not in ACTIONS:
        raise fail("do" if "do" in entry else None, f"do must be one of {', '.join(ACTIONS)}; got {action!r}")
    hold_s = entry.get("hold_s", 3.0)
    if not _number(hold_s) or not 0 < hold_s <= 600:
        raise fail("hold_s", f"hold_s must be a positive number of seconds, got {hold_s!r}")
    name = entry.get("name", "")
    if action.startswith("trigger.") and (not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", name) or name == "record"):
        raise fail("name" if "name" in entry else None, f"{action} needs name = \"<trigger input>\" (lowercase letters, digits, _), got {name!r}")
    return Step(float(t_s), action, float(hold_s), name)


def load_scenario(path: str) -> Scenario:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such scenario file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    return parse_scenario(text, path)
