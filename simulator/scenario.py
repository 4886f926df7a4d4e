"""Scenario files (SIM-3, docs/scenarios.md): TOML scripts of inputs over simulated time."""
from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field, replace

from device.config import ConfigError, Policy, build_policy, parse_toml, shown
from hal.media import VideoFormat
from simulator.pattern import CODE_COLUMNS, strip_height_px
from device.link.frame import check_pod_id
from simulator.simfs import CUT_MODES, ERRNOS, OPS

# What the simulated world can do at a step, and the keys each step takes besides t_s and do.
STEP_KEYS: dict[str, tuple[str, ...]] = {
    # target: in a world of several cameras (cameras = [...]), the camera the step is for.
    "button.press": ("target",), "button.double_press": ("target",), "button.hold": ("target", "hold_s"),
    "trigger.on": ("name", "target"), "trigger.off": ("name", "target"),
    "power.cut": ("mode",), "power.restore": (),
    "storage.fail": ("errno", "op", "after_bytes", "count"), "storage.heal": (), "storage.fill": ("free_bytes",),
    "camera.disconnect": (), "camera.reconnect": (), "mic.fail": (), "mic.heal": (),
    "battery.set": ("percent",), "battery.drain": ("rate_pct_per_min",),
    "clock.jump": ("delta_s",), "clock.set": ("utc",),
    # docs/link.md: a paired control pod's button, and its radio link (target: the pod's id).
    "pod.press": ("target",), "pod.double_press": ("target",), "pod.hold": ("target", "hold_s"),
    "link.drop": ("target",), "link.restore": ("target",),
    # docs/link.md §8: a vehicle's light-bar controller sends its group a start.
    "vehicle.lightbar_on": ("target",),
}
WORLD_ONLY = ("vehicle.",)                       # steps that need cameras = [...] / vehicles = [...]
CAMERA_TARGETED = ("button.", "trigger.")         # in a world, these name their camera
MAX_CAMERAS, MAX_VEHICLES = 32, 8
ACTIONS = tuple(STEP_KEYS)
DEFAULT_CUT_MODE = "tear"
DEFAULT_VIDEO = VideoFormat(width=640, height=360, fps=30, keyframe_interval_s=2.0, bitrate_bps=1_500_000)

# Camera ranges. The burned-in code strip (simulator/pattern.py) needs cells of at least
# 4 px across 40 columns, and a picture at least twice as tall as the strip.
MIN_WIDTH_PX, MAX_WIDTH_PX = CODE_COLUMNS * 4, 3840
MIN_HEIGHT_PX, MAX_HEIGHT_PX = 64, 2160
MAX_FPS = 120
KEYFRAME_INTERVAL_S = (0.1, 60.0)
BITRATE_BPS = (50_000, 50_000_000)   # below, x264 refuses or the picture is mush; above, no body camera
MAX_DURATION_S = 24 * 3600
MAX_HOLD_S = 600
MAX_AFTER_BYTES = 2**40
MAX_COUNT = 1_000_000
MAX_FREE_BYTES = 2**50
MAX_DRAIN_PCT_PER_MIN = 100.0   # an empty battery within a minute: any faster is no battery
MAX_CLOCK_JUMP_S = 10 * 365 * 86400   # a decade either way: a wrong RTC, not arithmetic overflow
# clock.set: from the epoch (the firmware's utc_us is never negative) to the end of 9999.
MIN_UTC_US = 0
MAX_UTC_US = 253_402_300_799_999_999
# RFC 3339 date-time (section 5.6): full date, T (or a space, as 5.6's note allows), time,
# optional fraction, and an offset, which is what tells us the time is UTC-anchored.
_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
                      r"(?:([Zz])|([+-])(\d{2}):(\d{2}))", re.ASCII)
_CAMERA_KEYS = ("width", "height", "fps", "keyframe_interval_s", "bitrate_bps", "constant_bitrate")
_TOP_KEYS = {"duration_s", "camera", "policy", "at", "description", "pods", "cameras", "vehicles"}
MAX_PODS = 8   # device/podlink.MAX_PAIRINGS
_TRIGGER_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


@dataclass(frozen=True)
class Step:
    t_s: float
    action: str
    hold_s: float = 3.0                 # button.hold
    name: str = ""                      # trigger.on / trigger.off
    mode: str = DEFAULT_CUT_MODE        # power.cut: "drop" or "tear"
    errno: str = ""                     # storage.fail: "ENOSPC" or "EIO"
    op: str = ""                        # storage.fail: write, fsync, create, rename, any
    after_bytes: int | None = None      # storage.fail: bytes still written before it strikes
    count: int | None = None            # storage.fail: failures before it heals; None: until storage.heal
    free_bytes: int | None = None       # storage.fill
    percent: float | None = None        # battery.set: the level from now, 0..100
    rate_pct_per_min: float | None = None  # battery.drain: fixed drain from now; None: the per-state model
    delta_s: float = 0.0                # clock.jump: wall clock moves by this much (may be negative)
    utc_us: int | None = None           # clock.set: wall clock reads this from now
    target: str = ""                    # pod.* / link.*: the pod's id


@dataclass(frozen=True)
class Scenario:
    duration_s: float
    video: VideoFormat = DEFAULT_VIDEO
    constant_bitrate: bool = False   # pad to exactly bitrate_bps, like a CBR hardware encoder
    policy_overrides: dict = field(default_factory=dict)
    steps: tuple[Step, ...] = ()
    source: str = "<built-in>"
    text: str = ""
    pods: tuple[str, ...] = ()   # paired control pods in the world (docs/simulator.md)
    cameras: tuple[str, ...] = ()    # a world of several cameras (simulator/world.py); () = one
    vehicles: tuple[str, ...] = ()   # vehicles' light-bar controllers in that world

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
    """A finite int or float (TOML's nan and inf are not numbers of anything)."""
    # An int is always finite (and math.isfinite() overflows on one past float range).
    return _integer(value) or (isinstance(value, float) and math.isfinite(value))


def _integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _reject_non_finite(data: dict, source: str, text: str) -> None:
    """nan and inf are refused wherever a number goes, before any range check sees them."""
    def walk(value: object, name: str, key: str, at_index: int | None) -> None:
        if isinstance(value, float) and not math.isfinite(value):
            if at_index is None:
                raise _error(source, _key_line(text, key), f"{name} must be a finite number, got {value!r}")
            raise _error(source, _at_line(text, at_index, key),
                         f"[[at]] #{at_index + 1}: {name} must be a finite number, got {value!r}")
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k if at_index is not None and name == "at" else f"{name}.{k}", k, at_index)
        elif isinstance(value, list):
            for v in value:
                walk(v, name, key, at_index)

    for key, value in data.items():
        if key == "at" and isinstance(value, list):
            for index, entry in enumerate(value):
                walk(entry, key, key, index)
        else:
            walk(value, key, key, None)


def parse_scenario(text: str, source: str) -> Scenario:
    try:
        data = parse_toml(text, source)
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply to be a scenario") from None
    for key in data:
        if key not in _TOP_KEYS:
            raise _error(source, _key_line(text, key), f"unknown key {key!r} (expected one of {sorted(_TOP_KEYS)})")
    _reject_non_finite(data, source, text)
    if not isinstance(data.get("description", ""), str):
        raise _error(source, _key_line(text, "description"), "description must be a string")
    duration_s = data.get("duration_s")
    if not _number(duration_s) or not 0 < duration_s <= MAX_DURATION_S:
        raise _error(source, _key_line(text, "duration_s"),
                     f"duration_s must be a number of seconds, 0 < duration_s <= {MAX_DURATION_S}")
    camera = data.get("camera", {})
    if not isinstance(camera, dict):
        raise _error(source, _key_line(text, "camera"), "camera must be a table")
    video, constant_bitrate = _parse_camera(camera, source, text)
    policy = data.get("policy", {})
    if not isinstance(policy, dict):
        raise _error(source, _key_line(text, "policy"), "policy must be a table")
    build_policy(policy, Policy(), source, text, prefix="policy.")  # checked now, applied later
    at = data.get("at", [])
    if not isinstance(at, list):
        raise _error(source, _key_line(text, "at"), "use [[at]] tables for scripted steps")
    indexed = [(index, _parse_step(entry, index, duration_s, source, text)) for index, entry in enumerate(at)]
    indexed.sort(key=lambda pair: pair[1].t_s)   # stable: steps at one time keep file order
    _check_power_sequence(indexed, source, text)
    pods = _parse_names(data, "pods", MAX_PODS, source, text)
    cameras = _parse_names(data, "cameras", MAX_CAMERAS, source, text)
    vehicles = _parse_names(data, "vehicles", MAX_VEHICLES, source, text)
    if vehicles and not cameras:
        raise _error(source, _key_line(text, "vehicles"), "vehicles need a world: list cameras = [...] too")
    for index, step in indexed:
        _check_target(step, index, pods, cameras, vehicles, source, text)
    return Scenario(duration_s, video, constant_bitrate, policy, tuple(s for _, s in indexed), source, text,
                    pods, cameras, vehicles)


def _check_target(step: Step, index: int, pods, cameras, vehicles, source: str, text: str) -> None:
    def fail(message: str) -> ConfigError:
        return _error(source, _at_line(text, index, "target"), f"[[at]] #{index + 1}: {step.action} {message}")

    if step.action.startswith(("pod.", "link.")):
        if step.target not in pods:
            raise fail(f"names pod {step.target!r}, which pods = [...] does not list")
    elif step.action.startswith(WORLD_ONLY):
        if step.target not in vehicles:
            raise fail(f"names vehicle {step.target!r}, which vehicles = [...] does not list")
    elif step.action.startswith(CAMERA_TARGETED) and cameras:
        if step.target not in cameras:
            raise fail(f"needs target = one of cameras = [...], got {step.target!r}")
    elif step.target:
        raise fail("takes a target only in a world of several cameras (cameras = [...])")
    elif cameras and not step.action.startswith(CAMERA_TARGETED):
        raise fail("is not available in a world of several cameras yet (docs/scenarios.md)")


def _parse_names(data: dict, key: str, most: int, source: str, text: str) -> tuple[str, ...]:
    """pods, cameras, vehicles: lists of names with the pod-id rule (1-16 of a-z 0-9 -)."""
    names = data.get(key, [])
    line = _key_line(text, key)
    if not isinstance(names, list) or len(names) > most:
        raise _error(source, line, f"{key} must list up to {most} names, like [\"{key[:-1]}-1\"]")
    for name in names:
        problem = check_pod_id(name)
        if problem:
            raise _error(source, line, f"{key}: {problem.replace('a pod id', 'a name')}, got {shown(name)}")
    if len(set(names)) != len(names):
        raise _error(source, line, f"{key}: a name is listed twice")
    return tuple(names)


def _parse_camera(camera: dict, source: str, text: str) -> tuple[VideoFormat, bool]:
    def fail(key: str, message: str) -> ConfigError:
        return _error(source, _key_line(text, key), f"camera.{key} {message}")

    for key in camera:
        if key not in _CAMERA_KEYS:
            raise _error(source, _key_line(text, key), f"unknown key camera.{key} (expected one of {sorted(_CAMERA_KEYS)})")
    constant_bitrate = camera.get("constant_bitrate", False)
    if not isinstance(constant_bitrate, bool):
        raise fail("constant_bitrate", f"must be true or false, got {constant_bitrate!r}")
    video = DEFAULT_VIDEO
    ranges = {"width": (MIN_WIDTH_PX, MAX_WIDTH_PX), "height": (MIN_HEIGHT_PX, MAX_HEIGHT_PX),
              "fps": (1, MAX_FPS), "bitrate_bps": BITRATE_BPS}
    for key, (low, high) in ranges.items():
        if key in camera:
            value = camera[key]
            if not _integer(value) or not low <= value <= high:
                raise fail(key, f"must be a whole number, {low}..{high}, got {value!r}")
            video = replace(video, **{key: value})
    if "keyframe_interval_s" in camera:
        value = camera["keyframe_interval_s"]
        low, high = KEYFRAME_INTERVAL_S
        if not _number(value) or not low <= value <= high:
            raise fail("keyframe_interval_s", f"must be a number of seconds, {low:g}..{high:g}, got {value!r}")
        video = replace(video, keyframe_interval_s=float(value))
    if video.width % 2 or video.height % 2:
        raise fail("width" if video.width % 2 else "height",
                   f"must be even (yuv420p), got {video.width}x{video.height}")
    if video.height < 2 * strip_height_px(video.width):
        raise fail("height", f"must be at least {2 * strip_height_px(video.width)} at width {video.width} "
                             f"(room for the burned-in code strip), got {video.height}")
    return video, constant_bitrate


def _parse_step(entry: object, index: int, duration_s: float, source: str, text: str) -> Step:
    def fail(key: str | None, message: str) -> ConfigError:
        return _error(source, _at_line(text, index, key), f"[[at]] #{index + 1}: {message}")

    if not isinstance(entry, dict):
        raise fail(None, f"a step must be a table with t_s and do, got {entry!r}")
    action = entry.get("do")
    if not isinstance(action, str) or action not in STEP_KEYS:   # an array or table is no name (and unhashable)
        raise fail("do" if "do" in entry else None, f"do must be one of {', '.join(ACTIONS)}; got {shown(action)}")
    allowed = ("t_s", "do", *STEP_KEYS[action])
    for key in entry:
        if key not in allowed:
            raise fail(key, f"unknown key {key!r} for {action} (expected {', '.join(allowed)})")
    t_s = entry.get("t_s")
    if not _number(t_s) or not 0 <= t_s <= duration_s:
        raise fail("t_s" if "t_s" in entry else None, f"t_s must be a time within 0..duration_s ({duration_s}), got {t_s!r}")
    fields: dict = {}
    if "target" in entry or action.startswith(("pod.", "link.", "vehicle.")):
        target = entry.get("target")
        if check_pod_id(target):
            raise fail("target" if "target" in entry else None,
                       f"{action} needs target = \"<name>\" (a pod, camera or vehicle of the world), "
                       f"got {shown(target)}")
        fields["target"] = target
    if action in ("button.hold", "pod.hold"):
        hold_s = entry.get("hold_s", 3.0)
        if not _number(hold_s) or not 0 < hold_s <= MAX_HOLD_S:
            raise fail("hold_s", f"hold_s must be a positive number of seconds up to {MAX_HOLD_S}, got {hold_s!r}")
        fields["hold_s"] = float(hold_s)
    elif action.startswith("trigger."):
        name = entry.get("name", "")
        if not isinstance(name, str) or not _TRIGGER_NAME.fullmatch(name) or name == "record":
            raise fail("name" if "name" in entry else None,
                       f"{action} needs name = \"<trigger input>\" (lowercase letters, digits, _), got {name!r}")
        fields["name"] = name
    elif action == "power.cut":
        fields["mode"] = _choice(entry, "mode", CUT_MODES, DEFAULT_CUT_MODE, fail)
    elif action == "storage.fail":
        fields["errno"] = _choice(entry, "errno", tuple(ERRNOS), None, fail)
        fields["op"] = _choice(entry, "op", OPS, None, fail)
        fields["after_bytes"] = _whole(entry, "after_bytes", 0, MAX_AFTER_BYTES, False, fail)
        fields["count"] = _whole(entry, "count", 1, MAX_COUNT, False, fail)
    elif action == "storage.fill":
        fields["free_bytes"] = _whole(entry, "free_bytes", 0, MAX_FREE_BYTES, True, fail)
    elif action == "battery.set":
        fields["percent"] = _real(entry, "percent", 0.0, 100.0, True, "a level in %", fail)
    elif action == "battery.drain":
        fields["rate_pct_per_min"] = _real(entry, "rate_pct_per_min", 0.0, MAX_DRAIN_PCT_PER_MIN, False,
                                           "a drain in % per minute (leave it out for the per-state model)", fail)
    elif action == "clock.jump":
        fields["delta_s"] = _real(entry, "delta_s", -MAX_CLOCK_JUMP_S, MAX_CLOCK_JUMP_S, True,
                                  "seconds the wall clock moves (negative: back)", fail,
                                  f"within a decade either way, ±{MAX_CLOCK_JUMP_S}")
    elif action == "clock.set":
        fields["utc_us"] = _utc_us(entry, fail)
    return Step(float(t_s), action, **fields)


def _real(entry: dict, key: str, low: float, high: float, required: bool, what: str, fail,
          span: str | None = None) -> float | None:
    value = _bounded(entry, key, low, high, required, _number, f"{what}, {span or f'{low:g}..{high:g}'}", fail)
    return None if value is None else float(value)


def _utc_us(entry: dict, fail) -> int:
    """clock.set's utc: an RFC 3339 string or a TOML offset date-time, as µs since the epoch.
    A time without an offset is refused: it names no instant, and guessing the zone would
    move the device's clock by hours."""
    value = entry.get("utc")
    need = 'clock.set needs utc = an RFC 3339 time with an offset, like "2026-03-01T12:00:00Z"'
    if isinstance(value, str):
        stamp = _parse_rfc3339(value)
        if stamp is None:
            raise fail("utc", f"{need}; got {value!r}")
    elif isinstance(value, dt.datetime):
        if value.utcoffset() is None:
            raise fail("utc", f"{need}; {value.isoformat()} has no offset (add Z for UTC)")
        stamp = value
    else:
        raise fail("utc" if "utc" in entry else None, f"{need}; got {value!r}")
    try:
        utc_us = _epoch_us(stamp)
    except OverflowError:
        utc_us = -1
    if not MIN_UTC_US <= utc_us <= MAX_UTC_US:
        raise fail("utc", f"clock.set needs utc from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z; got {value!r}")
    return utc_us


def _parse_rfc3339(text: str) -> dt.datetime | None:
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    if off_m is not None and int(off_m) > 59:
        return None
    try:
        offset = dt.timedelta(0) if zulu else (1 if sign == "+" else -1) * dt.timedelta(
            hours=int(off_h), minutes=int(off_m))
        zone = dt.timezone(offset)    # refuses offsets of 24 h or more
        # Digits past the µs are cut, not rounded: the clock reads whole µs.
        micro = int((fraction or "").ljust(6, "0")[:6])
        return dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, zone)
    except ValueError:   # month 13, 25:00, a leap second (:60), offset +24:00 ...
        return None


def _epoch_us(stamp: dt.datetime) -> int:
    delta = stamp - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _choice(entry: dict, key: str, choices: tuple[str, ...], default: str | None, fail) -> str:
    value = entry.get(key, default)
    if value not in choices:
        need = "" if default is None else f" (default {default!r})"
        raise fail(key if key in entry else None,
                   f"{entry['do']} needs {key} = one of {', '.join(choices)}{need}; got {value!r}")
    return value


def _whole(entry: dict, key: str, low: int, high: int, required: bool, fail) -> int | None:
    return _bounded(entry, key, low, high, required, _integer, f"a whole number, {low}..{high}", fail)


def _bounded(entry: dict, key: str, low, high, required: bool, kind, what: str, fail):
    """entry[key] if it is of `kind` within low..high; None if absent and optional."""
    if key not in entry and not required:
        return None
    value = entry.get(key)
    if not kind(value) or not low <= value <= high:
        raise fail(key if key in entry else None, f"{entry['do']} needs {key} = {what}; got {value!r}")
    return value


def _check_power_sequence(indexed: list[tuple[int, Step]], source: str, text: str) -> None:
    """power.cut only while the power is on, power.restore only after a cut."""
    cut_at: float | None = None
    for index, step in indexed:
        if step.action == "power.cut" and cut_at is not None:
            raise _error(source, _at_line(text, index, "do"),
                         f"[[at]] #{index + 1}: power.cut at {step.t_s:g} s, but the power is already "
                         f"off (cut at {cut_at:g} s, no power.restore in between)")
        if step.action == "power.restore" and cut_at is None:
            raise _error(source, _at_line(text, index, "do"),
                         f"[[at]] #{index + 1}: power.restore at {step.t_s:g} s, but the power is on "
                         f"(a restore follows a power.cut)")
        if step.action == "power.cut":
            cut_at = step.t_s
        elif step.action == "power.restore":
            cut_at = None


def load_scenario(path: str) -> Scenario:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such scenario file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    return parse_scenario(text, path)
