"""Scenario files (simulator/scenario.py, docs/scenarios.md): the storage, power, camera,
microphone, battery and clock steps, every step round-tripping through TOML, and bad input
of every kind refused as one ConfigError naming file, line and key (SEC-3)."""
from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device.config import ConfigError, Policy
from simulator.pattern import overlay_code, read_frame, render_frame, strip_height_px
from simulator.scenario import (
    ACTIONS, BITRATE_BPS, KEYFRAME_INTERVAL_S, MAX_CLOCK_JUMP_S, MAX_DRAIN_PCT_PER_MIN, MAX_FPS,
    MAX_HEIGHT_PX, MAX_UTC_US, MAX_WIDTH_PX, MIN_HEIGHT_PX, MIN_WIDTH_PX, STEP_KEYS, Scenario, Step,
    parse_scenario,
)
from simulator.simfs import CUT_MODES, ERRNOS, OPS

SOURCE = "shift.toml"
HEAD = "duration_s = 60\n"


def steps(*tables: str) -> str:
    return HEAD + "".join(f"\n[[at]]\n{table}\n" for table in tables)


def test_storage_and_power_steps_parse_with_their_keys():
    scenario = parse_scenario(steps(
        't_s = 1\ndo = "storage.fail"\nerrno = "ENOSPC"\nop = "write"\nafter_bytes = 4096\ncount = 2',
        't_s = 2\ndo = "storage.fail"\nerrno = "EIO"\nop = "any"',
        't_s = 3\ndo = "storage.heal"',
        't_s = 4\ndo = "storage.fill"\nfree_bytes = 0',
        't_s = 5\ndo = "power.cut"',
        't_s = 6\ndo = "power.restore"',
        't_s = 7\ndo = "power.cut"\nmode = "drop"',
    ), SOURCE)
    s = scenario.steps
    assert [x.action for x in s] == ["storage.fail", "storage.fail", "storage.heal", "storage.fill",
                                     "power.cut", "power.restore", "power.cut"]
    assert (s[0].errno, s[0].op, s[0].after_bytes, s[0].count) == ("ENOSPC", "write", 4096, 2)
    assert (s[1].errno, s[1].op, s[1].after_bytes, s[1].count) == ("EIO", "any", None, None)
    assert s[3].free_bytes == 0
    assert (s[4].mode, s[6].mode) == ("tear", "drop")   # tear is the default


def test_world_steps_parse_with_their_keys():
    scenario = parse_scenario(steps(
        't_s = 1\ndo = "camera.disconnect"', 't_s = 2\ndo = "camera.reconnect"',
        't_s = 3\ndo = "mic.fail"', 't_s = 4\ndo = "mic.heal"',
        't_s = 5\ndo = "battery.set"\npercent = 4.5', 't_s = 6\ndo = "battery.drain"\nrate_pct_per_min = 2',
        't_s = 7\ndo = "battery.drain"',
        't_s = 8\ndo = "clock.jump"\ndelta_s = -3600', 't_s = 9\ndo = "clock.set"\nutc = "2026-03-01T12:00:00Z"',
        't_s = 10\ndo = "clock.set"\nutc = 2026-03-01T13:00:00.25+01:00',
        't_s = 11\ndo = "clock.set"\nutc = "2026-03-01 07:00:00.123456789-05:00"',
    ), SOURCE)
    s = scenario.steps
    assert [x.action for x in s[:4]] == ["camera.disconnect", "camera.reconnect", "mic.fail", "mic.heal"]
    assert (s[4].percent, s[5].rate_pct_per_min, s[6].rate_pct_per_min) == (4.5, 2.0, None)
    assert s[7].delta_s == -3600.0
    noon_us = 1_772_366_400 * 1_000_000   # 2026-03-01T12:00:00Z
    assert s[8].utc_us == noon_us
    assert s[9].utc_us == noon_us + 250_000          # a TOML date-time with its offset
    assert s[10].utc_us == noon_us + 123_456         # digits past the µs are cut, not rounded


def test_steps_at_one_time_keep_their_file_order():
    scenario = parse_scenario(steps('t_s = 5\ndo = "power.cut"', 't_s = 5\ndo = "power.restore"',
                                    't_s = 1\ndo = "button.press"'), SOURCE)
    assert [x.action for x in scenario.steps] == ["button.press", "power.cut", "power.restore"]


def test_the_smallest_accepted_picture_carries_a_readable_code():
    scenario = parse_scenario(f"{HEAD}[camera]\nwidth = {MIN_WIDTH_PX}\nheight = {MIN_HEIGHT_PX}\n", SOURCE)
    picture = render_frame(7, 123_000, scenario.video.width, scenario.video.height)
    assert read_frame(picture[:MIN_HEIGHT_PX]) == (7, 123)
    with pytest.raises(ValueError):
        render_frame(0, 0, MIN_WIDTH_PX - 2, MIN_HEIGHT_PX)   # the range ends where the pattern does


# text, the line the message must name (by its content; None: no line), words it must contain
BAD = {
    "keyframe_interval_s nan": (HEAD + "[camera]\nkeyframe_interval_s = nan\n", "keyframe_interval_s", ["keyframe_interval_s", "finite"]),
    "keyframe_interval_s inf": (HEAD + "[camera]\nkeyframe_interval_s = inf\n", "keyframe_interval_s", ["keyframe_interval_s"]),
    "keyframe_interval_s overflows to inf": (HEAD + "[camera]\nkeyframe_interval_s = 1e400\n", "keyframe_interval_s", ["keyframe_interval_s"]),
    "keyframe_interval_s tiny": (HEAD + "[camera]\nkeyframe_interval_s = 0.001\n", "keyframe_interval_s", ["0.1..60"]),
    "bitrate_bps 1": (HEAD + "[camera]\nbitrate_bps = 1\n", "bitrate_bps", ["camera.bitrate_bps", "50000"]),
    "bitrate_bps huge": (HEAD + "[camera]\nbitrate_bps = 1000000000000\n", "bitrate_bps", ["camera.bitrate_bps"]),
    "width 64": (HEAD + "[camera]\nwidth = 64\nheight = 64\n", "width = 64", ["camera.width", "160"]),
    "width too wide": (HEAD + "[camera]\nwidth = 4000\n", "width = 4000", ["camera.width"]),
    "height too low for the strip": (HEAD + "[camera]\nwidth = 3840\nheight = 360\n", "height = 360", ["camera.height", "576"]),
    "odd height": (HEAD + "[camera]\nheight = 181\n", "height = 181", ["even"]),
    "fps 0": (HEAD + "[camera]\nfps = 0\n", "fps = 0", ["camera.fps"]),
    "fps 121": (HEAD + "[camera]\nfps = 121\n", "fps = 121", ["camera.fps", "120"]),
    "fps fractional": (HEAD + "[camera]\nfps = 29.97\n", "fps = 29.97", ["camera.fps", "whole"]),
    "fps nan": (HEAD + "[camera]\nfps = nan\n", "fps = nan", ["fps", "finite"]),
    "fps bool": (HEAD + "[camera]\nfps = true\n", "fps = true", ["camera.fps"]),
    "duration_s inf": ("duration_s = inf\n", "duration_s", ["duration_s"]),
    "t_s nan": (steps('t_s = nan\ndo = "button.press"'), "t_s = nan", ["t_s", "finite", "[[at]] #1"]),
    "t_s past float range": (steps('t_s = ' + '1' + '0' * 400 + '\ndo = "button.press"'), "t_s", ["t_s", "[[at]] #1"]),
    "percent past float range": (steps('t_s = 1\ndo = "battery.set"\npercent = ' + '9' * 400), "percent", ["percent"]),
    "hold_s inf": (steps('t_s = 1\ndo = "button.hold"\nhold_s = inf'), "hold_s", ["hold_s"]),
    "policy number nan": (HEAD + "[policy]\nbuffer_max_mib = nan\n", "buffer_max_mib", ["buffer_max_mib", "finite"]),
    "policy number inf": (HEAD + "[policy]\nbuffer_max_mib = inf\n", "buffer_max_mib", ["buffer_max_mib", "finite"]),
    "description not text": ("description = 5\n" + HEAD, "description", ["description"]),
    "a step that is not a table": (HEAD + "at = [1]\n", None, ["[[at]] #1", "table"]),
    "hold_s on a press": (steps('t_s = 1\ndo = "button.press"\nhold_s = 2'), "hold_s", ["'hold_s'", "button.press"]),
    "storage.fail without errno": (steps('t_s = 1\ndo = "storage.fail"\nop = "write"'), "[[at]]", ["errno", "ENOSPC", "EIO"]),
    "storage.fail bad errno": (steps('t_s = 1\ndo = "storage.fail"\nerrno = "EPERM"\nop = "write"'), "errno =", ["errno", "'EPERM'"]),
    "storage.fail without op": (steps('t_s = 1\ndo = "storage.fail"\nerrno = "EIO"'), "[[at]]", ["op", "write"]),
    "storage.fail bad op": (steps('t_s = 1\ndo = "storage.fail"\nerrno = "EIO"\nop = "read"'), "op =", ["op", "'read'"]),
    "after_bytes negative": (steps('t_s = 1\ndo = "storage.fail"\nerrno = "EIO"\nop = "write"\nafter_bytes = -1'), "after_bytes", ["after_bytes", "-1"]),
    "after_bytes fractional": (steps('t_s = 1\ndo = "storage.fail"\nerrno = "EIO"\nop = "write"\nafter_bytes = 1.5'), "after_bytes", ["after_bytes"]),
    "after_bytes bool": (steps('t_s = 1\ndo = "storage.fail"\nerrno = "EIO"\nop = "write"\nafter_bytes = true'), "after_bytes", ["after_bytes"]),
    "count 0": (steps('t_s = 1\ndo = "storage.fail"\nerrno = "EIO"\nop = "write"\ncount = 0'), "count", ["count", "1.."]),
    "count nan": (steps('t_s = 1\ndo = "storage.fail"\nerrno = "EIO"\nop = "write"\ncount = nan'), "count", ["count"]),
    "storage.fill without free_bytes": (steps('t_s = 1\ndo = "storage.fill"'), "[[at]]", ["free_bytes"]),
    "storage.fill negative": (steps('t_s = 1\ndo = "storage.fill"\nfree_bytes = -5'), "free_bytes", ["free_bytes"]),
    "storage.fill text": (steps('t_s = 1\ndo = "storage.fill"\nfree_bytes = "lots"'), "free_bytes", ["free_bytes", "'lots'"]),
    "storage.heal with a key": (steps('t_s = 1\ndo = "storage.heal"\nerrno = "EIO"'), "errno", ["'errno'", "storage.heal"]),
    "power.cut bad mode": (steps('t_s = 1\ndo = "power.cut"\nmode = "yank"'), "mode", ["mode", "'yank'", "drop", "tear"]),
    "power.restore without a cut": (steps('t_s = 1\ndo = "power.restore"'), 'do = "power.restore"', ["power.restore", "power is on"]),
    "power.cut twice": (steps('t_s = 1\ndo = "power.cut"', 't_s = 2\ndo = "power.cut" # again'), "# again", ["already off", "[[at]] #2"]),
    "battery.set without percent": (steps('t_s = 1\ndo = "battery.set"'), "[[at]]", ["percent", "0..100"]),
    "battery.set over 100": (steps('t_s = 1\ndo = "battery.set"\npercent = 100.5'), "percent", ["percent", "100.5"]),
    "battery.set text": (steps('t_s = 1\ndo = "battery.set"\npercent = "full"'), "percent", ["percent", "'full'"]),
    "battery.set bool": (steps('t_s = 1\ndo = "battery.set"\npercent = true'), "percent", ["percent"]),
    "battery.drain negative": (steps('t_s = 1\ndo = "battery.drain"\nrate_pct_per_min = -1'), "rate_pct_per_min", ["rate_pct_per_min", "0..100"]),
    "battery.drain nan": (steps('t_s = 1\ndo = "battery.drain"\nrate_pct_per_min = nan'), "rate_pct_per_min", ["rate_pct_per_min", "finite"]),
    "battery.drain with percent": (steps('t_s = 1\ndo = "battery.drain"\npercent = 5'), "percent", ["'percent'", "battery.drain"]),
    "clock.jump without delta_s": (steps('t_s = 1\ndo = "clock.jump"'), "[[at]]", ["delta_s"]),
    "clock.jump a century": (steps('t_s = 1\ndo = "clock.jump"\ndelta_s = 3.2e9'), "delta_s", ["delta_s", "±315360000", "3200000000"]),
    "clock.jump text": (steps('t_s = 1\ndo = "clock.jump"\ndelta_s = "1h"'), "delta_s", ["delta_s", "'1h'"]),
    "clock.set without utc": (steps('t_s = 1\ndo = "clock.set"'), "[[at]]", ["utc", "RFC 3339"]),
    "clock.set naive TOML time": (steps('t_s = 1\ndo = "clock.set"\nutc = 2026-03-01T12:00:00'), "utc", ["no offset", "Z"]),
    "clock.set naive string": (steps('t_s = 1\ndo = "clock.set"\nutc = "2026-03-01T12:00:00"'), "utc", ["offset", "'2026-03-01T12:00:00'"]),
    "clock.set a date": (steps('t_s = 1\ndo = "clock.set"\nutc = 2026-03-01'), "utc", ["utc", "RFC 3339"]),
    "clock.set month 13": (steps('t_s = 1\ndo = "clock.set"\nutc = "2026-13-01T00:00:00Z"'), "utc", ["utc"]),
    "clock.set leap second": (steps('t_s = 1\ndo = "clock.set"\nutc = "2016-12-31T23:59:60Z"'), "utc", ["utc"]),
    "clock.set offset minutes 75": (steps('t_s = 1\ndo = "clock.set"\nutc = "2026-03-01T12:00:00+01:75"'), "utc", ["utc"]),
    "clock.set before 1970": (steps('t_s = 1\ndo = "clock.set"\nutc = "1969-12-31T23:59:59Z"'), "utc", ["1970"]),
    "clock.set past 9999 in UTC": (steps('t_s = 1\ndo = "clock.set"\nutc = 9999-12-31T23:00:00-05:00'), "utc", ["9999"]),
    "clock.set unicode digits": (steps('t_s = 1\ndo = "clock.set"\nutc = "\u0662026-03-01T12:00:00Z"'), "utc", ["utc"]),
    "camera.disconnect with a key": (steps('t_s = 1\ndo = "camera.disconnect"\nname = "x"'), "name", ["'name'", "camera.disconnect"]),
    "mic.fail with a key": (steps('t_s = 1\ndo = "mic.fail"\ncount = 1'), "count", ["'count'", "mic.fail"]),
    "nested too deeply": (HEAD + "x = " + "[" * 5000 + "]" * 5000 + "\n", None, ["nested"]),
}


def _line_of(text: str, anchor: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), start=1) if anchor in line)


@pytest.mark.parametrize("text, anchor, words", BAD.values(), ids=BAD.keys())
def test_bad_input_is_one_clear_config_error(text, anchor, words):
    with pytest.raises(ConfigError) as info:
        parse_scenario(text, SOURCE)
    message = str(info.value)
    assert message.startswith(SOURCE) and "\n" not in message, message
    if anchor is not None:
        assert f"line {_line_of(text, anchor)}:" in message, message
    for word in words:
        assert word in message, message


# -- properties: only ConfigError, and whatever is accepted is sane ---------------------------

_SCALARS = st.one_of(
    st.integers(min_value=-2**63, max_value=2**63 - 1),
    st.integers(min_value=-10, max_value=5000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz._ENOSPCIO", max_size=12),
    st.sampled_from([*ERRNOS, *OPS, *CUT_MODES, *ACTIONS, "holster", "record", "start", "start_stop"]),
)
_VALID = {
    "width": st.integers(80, 2000).map(lambda n: 2 * n), "height": st.integers(32, 1100).map(lambda n: 2 * n),
    "fps": st.integers(1, 120), "keyframe_interval_s": st.floats(0.1, 60), "bitrate_bps": st.integers(50_000, 50_000_000),
    "constant_bitrate": st.booleans(),
    "pre_event_s": st.floats(0, 120), "segment_s": st.floats(1, 3600), "flush_interval_s": st.floats(0.1, 10),
    "buffer_max_mib": st.floats(0, 64), "debounce_ms": st.integers(0, 100), "hold_stop_s": st.floats(1, 30),
    "pre_event_audio": st.booleans(),
    "hold_s": st.floats(0.01, 600), "target": st.sampled_from(["pod-1", "pod-2", "Pod", ""]), "name": st.sampled_from(["holster", "light_bar", "record", "Bad"]),
    "mode": st.sampled_from(CUT_MODES), "errno": st.sampled_from(sorted(ERRNOS)), "op": st.sampled_from(OPS),
    "after_bytes": st.integers(0, 2**41), "count": st.integers(0, 5), "free_bytes": st.integers(-1, 2**51),
    "percent": st.floats(-1, 101), "rate_pct_per_min": st.floats(-1, 101),
    "delta_s": st.floats(-2 * MAX_CLOCK_JUMP_S, 2 * MAX_CLOCK_JUMP_S),
    "utc": st.one_of(
        st.datetimes(min_value=dt.datetime(1960, 1, 1), max_value=dt.datetime(9999, 12, 31),
                     timezones=st.one_of(st.none(), st.just(dt.timezone.utc), st.builds(
                         lambda minutes: dt.timezone(dt.timedelta(minutes=minutes)), st.integers(-1439, 1439)))),
        st.datetimes(min_value=dt.datetime(1960, 1, 1), timezones=st.just(dt.timezone.utc)).map(
            lambda d: d.isoformat().replace("+00:00", "Z")),
        st.text(alphabet="0123456789-:.TZz+ ", max_size=30)),
}


def _value(key: str):
    """Mostly a plausible value for `key`, sometimes anything at all."""
    return st.one_of(_VALID[key], _VALID[key], _VALID[key], _SCALARS) if key in _VALID else _SCALARS


def _table(keys: tuple[str, ...], junk: bool):
    return st.fixed_dictionaries({}, optional={k: _value(k) if junk else _VALID[k] for k in keys})


_CAMERA_KEYS = ("width", "height", "fps", "keyframe_interval_s", "bitrate_bps", "constant_bitrate")
_POLICY_KEYS = ("pre_event_s", "segment_s", "flush_interval_s", "buffer_max_mib", "debounce_ms", "hold_stop_s",
                "pre_event_audio")


def _document(junk: bool):
    """A scenario document; without junk every value is plausible, so many are accepted."""
    step = st.sampled_from(ACTIONS).flatmap(lambda action: st.fixed_dictionaries(
        {"t_s": st.floats(0, 10), "do": st.just(action)},
        optional={k: _value(k) if junk else _VALID[k] for k in STEP_KEYS[action]}))
    optional = {"camera": _table(_CAMERA_KEYS, junk), "policy": _table(_POLICY_KEYS, junk),
                "at": st.lists(step, max_size=6), "description": st.text(max_size=20),
                "pods": st.lists(st.sampled_from(["pod-1", "pod-2", "Pod", "pod_1"]), max_size=3),
                "cameras": st.lists(st.sampled_from(["pod-1", "cam-1", "Cam"]), max_size=2),
                "vehicles": st.lists(st.sampled_from(["car-1", "pod-2"]), max_size=2)}
    if junk:
        optional.update(extra=_SCALARS, description=st.one_of(st.text(max_size=20), _SCALARS),
                        camera=_table(_CAMERA_KEYS + ("zoom",), True),
                        at=st.lists(st.one_of(step, st.fixed_dictionaries(
                            {"t_s": _SCALARS, "do": _SCALARS},
                            optional={k: _SCALARS for k in ("hold_s", "name", "mode", "errno", "when")})), max_size=6))
    duration = st.one_of(st.floats(10, 100), _SCALARS) if junk else st.floats(10, 100)
    return st.fixed_dictionaries({"duration_s": duration}, optional=optional)


_DOCUMENT = st.one_of(_document(junk=False), _document(junk=True))


def _toml_value(value) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()   # a TOML date-time literal, local (naive) or with its offset
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


def _toml(document: dict) -> str:
    lines = [f"{k} = {_toml_value(v)}" for k, v in document.items() if k not in ("camera", "policy", "at")]
    for table in ("camera", "policy"):
        if table in document:
            lines += [f"[{table}]"] + [f"{k} = {_toml_value(v)}" for k, v in document[table].items()]
    for step in document.get("at", []):
        lines += ["[[at]]"] + [f"{k} = {_toml_value(v)}" for k, v in step.items()]
    return "\n".join(lines) + "\n"


def _assert_sane(scenario: Scenario) -> None:
    assert math.isfinite(scenario.duration_s) and 0 < scenario.duration_s <= 86400
    v = scenario.video
    assert MIN_WIDTH_PX <= v.width <= MAX_WIDTH_PX and MIN_HEIGHT_PX <= v.height <= MAX_HEIGHT_PX
    assert v.width % 2 == 0 and v.height % 2 == 0 and v.height >= 2 * strip_height_px(v.width)
    assert 1 <= v.fps <= MAX_FPS and BITRATE_BPS[0] <= v.bitrate_bps <= BITRATE_BPS[1]
    assert KEYFRAME_INTERVAL_S[0] <= v.keyframe_interval_s <= KEYFRAME_INTERVAL_S[1]
    overlay_code(np.zeros((v.height, v.width), dtype=np.uint8), 0, 0)   # the camera can draw on it
    policy = scenario.apply_policy(Policy())
    assert all(math.isfinite(x) for x in vars(policy).values() if isinstance(x, float))
    powered = True
    for step in scenario.steps:
        assert step.action in ACTIONS and math.isfinite(step.t_s) and 0 <= step.t_s <= scenario.duration_s
        assert math.isfinite(step.hold_s) and 0 < step.hold_s <= 600
        if step.action.startswith(("pod.", "link.")):
            assert step.target in scenario.pods
        elif step.action.startswith("vehicle."):
            assert step.target in scenario.vehicles
        elif scenario.cameras:
            assert step.target in scenario.cameras
        else:
            assert step.target == ""
        if step.action == "storage.fail":
            assert step.errno in ERRNOS and step.op in OPS
            assert step.after_bytes is None or step.after_bytes >= 0
            assert step.count is None or step.count >= 1
        if step.action == "storage.fill":
            assert step.free_bytes is not None and step.free_bytes >= 0
        if step.action == "battery.set":
            assert step.percent is not None and 0 <= step.percent <= 100
        if step.action == "battery.drain":
            assert step.rate_pct_per_min is None or 0 <= step.rate_pct_per_min <= MAX_DRAIN_PCT_PER_MIN
        if step.action == "clock.jump":
            assert math.isfinite(step.delta_s) and abs(step.delta_s) <= MAX_CLOCK_JUMP_S
        if step.action == "clock.set":
            assert isinstance(step.utc_us, int) and 0 <= step.utc_us <= MAX_UTC_US
        else:
            assert step.utc_us is None
        if step.action == "power.cut":
            assert powered and step.mode in CUT_MODES
            powered = False
        if step.action == "power.restore":
            assert not powered
            powered = True


def _parse_or_config_error(text: str) -> Scenario | None:
    try:
        return parse_scenario(text, SOURCE)
    except ConfigError as exc:
        assert str(exc).startswith(SOURCE) and "\n" not in str(exc), str(exc)
        return None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_DOCUMENT)
def test_any_structured_document_is_accepted_sane_or_refused_clearly(document):
    scenario = _parse_or_config_error(_toml(document))
    if scenario is not None:
        _assert_sane(scenario)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('[]{}=."\'#\n ,_-+:0123456789abcdefinstuvwxyz')), max_size=200))
def test_any_text_is_accepted_sane_or_refused_clearly(text):
    scenario = _parse_or_config_error(HEAD + text)
    if scenario is not None:
        _assert_sane(scenario)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_unicode_never_escapes_as_another_exception(text):
    scenario = _parse_or_config_error(text)
    if scenario is not None:
        _assert_sane(scenario)


# -- every step round-trips: written as TOML, read back as the same Step --------------------------

_UTC_US = st.integers(0, MAX_UTC_US)
_FIELDS = {   # what each step's keys may hold when valid, as Step fields
    "button.hold": {"hold_s": st.floats(1e-6, 600)},
    "trigger.on": {"name": st.from_regex(r"[a-z][a-z0-9_]{0,31}", fullmatch=True).filter(lambda n: n != "record")},
    "power.cut": {"mode": st.sampled_from(CUT_MODES)},
    "storage.fail": {"errno": st.sampled_from(sorted(ERRNOS)), "op": st.sampled_from(OPS),
                     "after_bytes": st.one_of(st.none(), st.integers(0, 2**40)),
                     "count": st.one_of(st.none(), st.integers(1, 1_000_000))},
    "storage.fill": {"free_bytes": st.integers(0, 2**50)},
    "battery.set": {"percent": st.floats(0, 100)},
    "battery.drain": {"rate_pct_per_min": st.one_of(st.none(), st.floats(0, MAX_DRAIN_PCT_PER_MIN))},
    "clock.jump": {"delta_s": st.floats(-MAX_CLOCK_JUMP_S, MAX_CLOCK_JUMP_S)},
    "clock.set": {"utc_us": _UTC_US},
}
_FIELDS["trigger.off"] = _FIELDS["trigger.on"]
for _action in ("pod.press", "pod.double_press", "link.drop", "link.restore"):
    _FIELDS[_action] = {"target": st.just("pod-1")}
_FIELDS["pod.hold"] = {"target": st.just("pod-1"), "hold_s": st.floats(1e-6, 600)}
_FIELDS["vehicle.lightbar_on"] = {"target": st.just("car-1")}


def _utc_text(utc_us: int, minutes: int, as_string: bool) -> str:
    """utc_us written with a UTC offset of `minutes`, as a TOML string or date-time literal."""
    zone = dt.timezone(dt.timedelta(minutes=minutes))
    local = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=utc_us)
    try:
        text = local.astimezone(zone).isoformat()
    except OverflowError:   # the offset pushes the local time past year 9999 or before year 1
        text = local.isoformat()
    return json.dumps(text) if as_string else text


def _step_toml(step: Step, minutes: int, as_string: bool) -> str:
    lines = [f"t_s = {step.t_s!r}", f"do = {json.dumps(step.action)}"]
    for key in STEP_KEYS[step.action]:
        if key == "utc":
            lines.append(f"utc = {_utc_text(step.utc_us, minutes, as_string)}")
        elif getattr(step, key) not in (None, ""):
            lines.append(f"{key} = {_toml_value(getattr(step, key))}")
    return "\n".join(lines)


_STEPS = st.sampled_from(ACTIONS).flatmap(lambda action: st.builds(
    Step, t_s=st.floats(0, 60), action=st.just(action), **_FIELDS.get(action, {})))


@settings(max_examples=300, deadline=None)
@given(_STEPS, st.integers(-1439, 1439), st.booleans())
def test_every_step_round_trips_through_toml(step, offset_minutes, utc_as_string):
    # A restore needs a cut before it; the cut at 0 s sorts first.
    before = '[[at]]\nt_s = 0\ndo = "power.cut"\n' if step.action == "power.restore" else ""
    pods = ('cameras = ["cam-1"]\nvehicles = ["car-1"]\n' if step.action.startswith("vehicle.")
            else 'pods = ["pod-1"]\n' if step.target else "")
    text = f"{pods}{HEAD}{before}[[at]]\n{_step_toml(step, offset_minutes, utc_as_string)}\n"
    parsed = parse_scenario(text, SOURCE).steps[-1]
    assert parsed == step


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(alphabet="0123456789-:.TtZz+ ", max_size=32), st.text(max_size=32),
                 st.datetimes(timezones=st.just(dt.timezone.utc)).map(lambda d: d.isoformat())))
def test_clock_set_takes_a_valid_rfc3339_time_or_refuses_it_on_one_line(text):
    try:
        step = parse_scenario(steps(f't_s = 1\ndo = "clock.set"\nutc = {json.dumps(text, ensure_ascii=False)}'), SOURCE).steps[0]
    except ConfigError as exc:
        message = str(exc)
        # Ours name the line as "line 6:", TOML's own as "(at line 6, column N)".
        assert message.startswith(SOURCE) and "line 6" in message and "\n" not in message, message
        return
    # Accepted: Python's own ISO parser agrees on the instant, to the µs.
    normal = text.replace("Z", "+00:00").replace("z", "+00:00").replace("t", "T")
    if "." in normal:
        head, rest = normal.split(".", 1)
        digits = rest[:len(rest) - len(rest.lstrip("0123456789"))]
        normal = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits):]}"
    expected = dt.datetime.fromisoformat(normal)
    assert expected.utcoffset() is not None
    assert step.utc_us == (expected - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(microseconds=1)


@pytest.mark.parametrize("value", ['["button.press"]', "{a = 1}", "7", "true"])
def test_a_step_whose_do_is_not_a_name_is_refused_in_one_line(value):
    text = f"duration_s = 5\n[[at]]\nt_s = 1\ndo = {value}\n"
    with pytest.raises(ConfigError) as exc:
        parse_scenario(text, "s.toml")
    assert "do must be one of" in str(exc.value) and "\n" not in str(exc.value)
