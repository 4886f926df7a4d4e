"""Property tests (hypothesis) over the device-directory parsers: whatever the input, the
only failure is the parser's own one-line error, and whatever is accepted the firmware
can actually run with (SEC-3).

policy.toml and a scenario's [policy]: random TOML documents, random values per key.
device.json: random JSON, near-valid identities with one member replaced, deep nesting.
Key files and device.key: random bytes, and random text after a valid prefix.
pi.toml: random TOML documents, random values per key.
Scenario steps: every `do`, random values for each of its keys and for keys it does not take.

Strategies lean on the values at and around every bound the parsers check, so that
with a modest number of examples each check is reached in every run.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import tempfile
from dataclasses import fields

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.public import PrivateKey
from nacl.signing import SigningKey

from device.config import ConfigError, Identity, Policy, build_policy, load_identity, load_policy, parse_toml
from device.evidence import keys
from device.evidence.keys import KeyFileError
from device.gestures import GestureDecoder
from device.ringbuffer import PreEventBuffer
from hal.filekeystore import FileKeyStore, KeyStoreError
from hal.inputs import RECORD_BUTTON
from hal.pi.config import PiBoardConfig
from simulator.scenario import ACTIONS, STEP_KEYS, parse_scenario
from tools.pi_main import load_pi_config

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PER_KEY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
POLICY_KEYS = [f.name for f in fields(Policy)]
PI_KEYS = [f.name for f in fields(PiBoardConfig)]
# One pi.toml key of each kind the loader treats differently (GPIO lines, trigger table,
# int, float, bool, str): the rest share their code path.
PI_KEY_KINDS = ["record_button", "triggers", "fps", "keyframe_interval_s", "leds_active_high", "pin_factory"]


def one_line(exc: Exception) -> None:
    assert "\n" not in str(exc), f"not one line: {exc}"


def with_file(content: bytes, name: str, load):
    """load(directory, path) on a fresh directory holding `name` (mode 0600) = `content`."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, name)
        with open(path, "wb") as f:
            f.write(content)
        os.chmod(path, 0o600)
        return load(d, path)


# --- TOML -------------------------------------------------------------------------------------

edge_numbers = st.sampled_from([0, 1, -1, 0.5, 1e-9, 0.1, 10, 30, 120, 121, 999, 1000, 1500, 3600, 5000, 5001,
                                1e300, 10 ** 400, -(10 ** 400), float("nan"), float("inf"), float("-inf"), -0.0])
numbers = st.one_of(edge_numbers, st.floats(allow_nan=True, allow_infinity=True), st.integers())
scalars = st.one_of(st.booleans(), numbers, st.text(max_size=12))
toml_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=5)
trigger_names = st.one_of(st.sampled_from(["holster", RECORD_BUTTON, "", "a" * 33, "light bar", "x\n"]),
                          st.text(max_size=40))
trigger_tables = st.dictionaries(trigger_names, st.one_of(st.sampled_from(["start", "start_stop"]), toml_values),
                                 max_size=3)
values_of = {"triggers": st.one_of(trigger_tables, toml_values)}


def toml_value(value: object) -> str:
    """`value` as TOML source (inline tables and arrays; strings JSON-escaped, which TOML
    mostly shares: where it does not, the document is simply invalid TOML, a case too)."""
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_document(table: dict) -> bytes:
    return "".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in table.items()).encode("utf-8", "surrogatepass")


# TOML the parser itself chokes on: nesting past the recursion limit, integers past 4300 digits.
hostile_toml = st.one_of(
    st.integers(1, 5000).map(lambda n: "a = " + "[" * n + "]" * n),
    st.integers(1, 5000).map(lambda n: "a = " + "{b = " * n + "1" + "}" * n),
    st.builds(lambda key, n: f"{key} = {'9' * n}\n", st.sampled_from(POLICY_KEYS), st.integers(1, 6000)))


# --- policy -----------------------------------------------------------------------------------

def assert_runnable(policy: Policy) -> None:
    """Everything the firmware builds from a policy at boot accepts it (device/firmware.py)."""
    policy.check()
    for f in fields(policy):
        value = getattr(policy, f.name)
        if isinstance(value, float):
            assert math.isfinite(value), f.name
    for bitrate_bps, keyframe_interval_s in ((100_000, 1.0), (50_000_000, 10.0)):
        PreEventBuffer(policy.pre_event_s, policy.buffer_max_bytes(bitrate_bps, keyframe_interval_s))
    GestureDecoder(debounce_us=policy.debounce_ms * 1000,
                   double_press_window_us=policy.double_press_window_ms * 1000,
                   hold_us=round(policy.hold_stop_s * 1e6))
    assert RECORD_BUTTON not in policy.triggers, "the simulator and the Pi refuse a duplicate input name"
    for name in policy.triggers:
        assert name.isprintable() and " " not in name and 1 <= len(name) <= 32, name


def load_policy_text(text: bytes) -> Policy:
    """load_policy's path without the file: UTF-8 decoding is read_config_text's (tested with bytes below)."""
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        return with_file(text, "policy.toml", lambda d, path: load_policy(path))
    return build_policy(parse_toml(decoded, "policy.toml"), Policy(), "policy.toml", decoded)


def policy_or_error(load) -> None:
    try:
        policy = load()
    except ConfigError as exc:
        one_line(exc)
        return
    assert_runnable(policy)


@pytest.mark.parametrize("key", POLICY_KEYS)
@PER_KEY
@given(data=st.data())
def test_every_policy_key_takes_a_runnable_value_or_refuses_it(key, data):
    value = data.draw(values_of.get(key, st.one_of(numbers, toml_values)))
    policy_or_error(lambda: load_policy_text(toml_document({key: value})))


# The gesture keys constrain each other (debounce < window; a press must fit before a hold).
gesture_tables = st.fixed_dictionaries({}, optional={
    "debounce_ms": st.one_of(st.integers(0, 6000), numbers),
    "double_press_window_ms": st.one_of(st.integers(0, 6000), numbers),
    "hold_stop_s": st.one_of(st.floats(0, 31), numbers)})
policy_tables = st.dictionaries(st.one_of(st.sampled_from(POLICY_KEYS), st.text(max_size=10)),
                                st.one_of(toml_values, trigger_tables), max_size=len(POLICY_KEYS))


@SETTINGS
@given(st.one_of(gesture_tables, policy_tables))
def test_policy_toml_documents_give_a_runnable_policy_or_a_config_error(table):
    policy_or_error(lambda: load_policy_text(toml_document(table)))


@SETTINGS
@given(st.one_of(st.text(max_size=200), hostile_toml))
def test_policy_toml_random_text_gives_a_policy_or_a_config_error(text):
    policy_or_error(lambda: load_policy_text(text.encode("utf-8", "surrogatepass")))


@SETTINGS
@given(st.binary(max_size=200))
def test_policy_toml_random_bytes_give_a_policy_or_a_config_error(content):
    policy_or_error(lambda: with_file(content, "policy.toml", lambda d, path: load_policy(path)))


@SETTINGS
@given(st.one_of(gesture_tables, policy_tables))
def test_a_scenario_policy_table_gives_a_runnable_policy_or_a_config_error(table):
    # The path a scenario's [policy] takes (simulator/scenario.py): checked on its own, then
    # applied over the device's policy.
    def load():
        try:
            return build_policy(table, Policy(), "s.toml", toml_document(table).decode("utf-8", "replace"),
                                prefix="policy.")
        except ConfigError as exc:
            assert str(exc).startswith("s.toml")
            raise
    policy_or_error(load)


# --- device.json ------------------------------------------------------------------------------

DEVICE = SigningKey(bytes([3]) * 32)
CUSTODIAN = PrivateKey(bytes([4]) * 32)
GOOD_CUSTODIAN = keys.format_key(keys.CUSTODIAN_PUBLIC, bytes(CUSTODIAN.public_key)).strip()
VALID_IDENTITY = {
    "device_id": "cam-1",
    "device_public_key": keys.format_key(keys.DEVICE_PUBLIC, bytes(DEVICE.verify_key)).strip(),
    "custodian_public_keys": [GOOD_CUSTODIAN],
    "provisioned_firmware": "0.1.0",
}
key_strings = st.sampled_from([VALID_IDENTITY["device_public_key"], GOOD_CUSTODIAN,
                               f"{keys.CUSTODIAN_PUBLIC}:{'00' * 32}",          # low order
                               f"{keys.CUSTODIAN_PUBLIC}:{'01' + '00' * 31}",   # low order
                               f"{keys.CUSTODIAN_PUBLIC}:{'ab' * 31}"])         # short
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
              st.text(max_size=80), key_strings),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=10)
device_ids = st.one_of(st.sampled_from(["", "x" * 64, "x" * 65, "cam\n", "cam\x07", "\ud800", "cam 1", "kamera-ü"]),
                       st.text(max_size=100), json_values)
near_valid = st.one_of(
    st.builds(lambda name, value: {**VALID_IDENTITY, name: value}, st.sampled_from(sorted(VALID_IDENTITY)),
              json_values),
    device_ids.map(lambda value: {**VALID_IDENTITY, "device_id": value}),
    # Lists of key strings where some entry is wrong: another type, a low-order or repeated key.
    st.lists(st.one_of(key_strings, json_values), max_size=3).map(
        lambda entries: {**VALID_IDENTITY, "custodian_public_keys": entries}),
    st.sampled_from(sorted(VALID_IDENTITY)).map(
        lambda name: {k: v for k, v in VALID_IDENTITY.items() if k != name}))
# Python's json recurses per level: nesting past the interpreter's limit is a RecursionError.
deep = st.one_of(st.integers(1, 200_000).map(lambda n: "[" * n + "]" * n),
                 st.integers(1, 200_000).map(lambda n: '{"a":' * n + "1" + "}" * n))


def load_identity_from(content: bytes) -> Identity:
    return with_file(content, "device.json", lambda d, path: load_identity(d))


def identity_or_error(content: bytes) -> None:
    try:
        identity = load_identity_from(content)
    except ConfigError as exc:
        one_line(exc)
        return
    device_id = identity.device_id
    assert isinstance(device_id, str) and 1 <= len(device_id) <= 64 and device_id.isprintable()
    assert len(identity.device_public_key) == 32
    assert identity.custodian_public_keys
    assert len(set(identity.custodian_public_keys)) == len(identity.custodian_public_keys)
    for key in identity.custodian_public_keys:
        assert len(key) == 32 and not keys.is_low_order_x25519(key)


@SETTINGS
@given(near_valid)
def test_near_valid_device_json_gives_a_sound_identity_or_a_config_error(identity):
    identity_or_error(json.dumps(identity).encode("utf-8", "surrogatepass"))


@SETTINGS
@given(st.one_of(json_values.map(json.dumps), deep, st.text(max_size=100)))
def test_any_json_or_text_as_device_json_gives_a_config_error(text):
    identity_or_error(text.encode("utf-8", "surrogatepass"))


@SETTINGS
@given(st.binary(max_size=400))
def test_random_bytes_as_device_json_give_a_config_error(content):
    identity_or_error(content)


def test_the_valid_identity_used_above_loads():
    # Otherwise the near-valid cases would test nothing but the first check.
    assert load_identity_from(json.dumps(VALID_IDENTITY).encode()).device_id == "cam-1"


# --- key files --------------------------------------------------------------------------------

KINDS = (keys.CUSTODIAN_PUBLIC, keys.CUSTODIAN_SECRET, keys.DEVICE_PUBLIC)


def spaced_key(kind: str, raw: bytes, cut: int, space: str) -> bytes:
    digits = raw.hex()
    return f"{kind}:{digits[:cut]}{space}{digits[cut:]}\n".encode()


key_file_contents = st.one_of(
    # A real key with whitespace inside its hex digits: bytes.fromhex alone would take it.
    st.builds(spaced_key, st.sampled_from(KINDS), st.binary(min_size=32, max_size=32), st.integers(1, 63),
              st.sampled_from([" ", "\n", "\t", "  ", "\r\n"])),
    st.binary(max_size=300),
    st.builds(lambda kind, tail: (kind + ":").encode() + tail, st.sampled_from(KINDS), st.binary(max_size=100)),
    st.builds(lambda kind, tail: f"{kind}:{tail}".encode("utf-8", "surrogatepass"),
              st.sampled_from(KINDS), st.text(alphabet="0123456789abcdefABCDEF \n\t:\u0660", max_size=80)),
)


@SETTINGS
@given(key_file_contents, st.sampled_from(KINDS))
def test_key_files_give_32_bytes_or_a_key_file_error(content, kind):
    try:
        raw = with_file(content, "some.key", lambda d, path: keys.read_key(path, kind))
    except KeyFileError as exc:
        one_line(exc)
        return
    assert len(raw) == 32
    assert content.decode("ascii").strip().lower() == f"{kind}:{raw.hex()}", "accepted only the documented line"
    if kind == keys.CUSTODIAN_PUBLIC:
        assert not keys.is_low_order_x25519(raw)


@SETTINGS
@given(st.one_of(st.binary(max_size=200), st.text(alphabet="0123456789abcdef \n", max_size=100).map(str.encode)))
def test_device_key_files_give_a_seed_or_a_key_store_error(content):
    try:
        seed = with_file(content, "device.key", lambda d, path: FileKeyStore(d).signing_seed())
    except KeyStoreError as exc:
        one_line(exc)
        return
    assert len(seed) == 32


# --- pi.toml ----------------------------------------------------------------------------------

def pi_config_or_error(table: dict) -> None:
    try:
        config = with_file(toml_document(table), "pi.toml", lambda d, path: load_pi_config(path))
    except ConfigError as exc:
        one_line(exc)
        return
    assert config.keyframe_iperiod_frames >= 1
    assert RECORD_BUTTON not in config.triggers
    for line in (config.record_button, *config.triggers.values()):
        assert type(line.pin) is int, "a TOML true is no GPIO number"
    for f in fields(config):
        value = getattr(config, f.name)
        assert not isinstance(value, float) or math.isfinite(value), f.name


@pytest.mark.parametrize("key", PI_KEY_KINDS)
@PER_KEY
@given(data=st.data())
def test_every_pi_toml_key_takes_a_board_config_or_refuses_it(key, data):
    gpio_tables = st.dictionaries(trigger_names, st.one_of(st.integers(0, 30), st.booleans(), toml_values), max_size=3)
    value = data.draw(st.one_of(numbers, st.booleans(), toml_values, gpio_tables if key == "triggers" else numbers))
    pi_config_or_error({key: value})


@SETTINGS
@given(st.dictionaries(st.one_of(st.sampled_from(PI_KEYS), st.text(max_size=8)),
                       st.one_of(numbers, toml_values, st.integers(0, 30)), max_size=4))
def test_pi_toml_documents_give_a_board_config_or_a_config_error(table):
    pi_config_or_error(table)


# --- scenario steps ---------------------------------------------------------------------------

STEP_KEY_NAMES = sorted({key for keys_ in STEP_KEYS.values() for key in keys_})
# TOML's own date and time values, which only clock.set takes (and only with an offset).
toml_times = st.one_of(
    st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30),
                 timezones=st.one_of(st.none(), st.just(dt.timezone.utc),
                                     st.integers(-1439, 1439).map(lambda m: dt.timezone(dt.timedelta(minutes=m))))),
    st.dates(), st.times())
rfc3339_like = st.one_of(
    st.text(alphabet="0123456789-:.TtZz+ ", max_size=32),
    st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30),
                 timezones=st.just(dt.timezone.utc)).map(lambda d: d.isoformat().replace("+00:00", "Z")))
step_values = st.one_of(numbers, toml_values, toml_times, rfc3339_like)


def step_or_error(action: str, table: dict) -> None:
    text = "duration_s = 60\n[[at]]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in table.items())
    try:
        scenario = parse_scenario(text, "s.toml")
    except ConfigError as exc:
        one_line(exc)
        assert str(exc).startswith("s.toml")
        return
    (step,) = scenario.steps
    assert step.action == action and 0 <= step.t_s <= 60
    unknown = set(table) - {"t_s", "do", *STEP_KEYS[action]}
    assert not unknown, f"accepted keys {action} does not take: {unknown}"
    for name in ("percent", "rate_pct_per_min", "delta_s", "hold_s"):
        value = getattr(step, name)
        assert value is None or (isinstance(value, float) and math.isfinite(value)), (name, value)
    if action == "clock.set":
        assert isinstance(step.utc_us, int) and step.utc_us >= 0
    if action == "battery.set":
        assert 0 <= step.percent <= 100


@pytest.mark.parametrize("action", [a for a in ACTIONS if a != "power.restore"])
@PER_KEY
@given(data=st.data())
def test_every_step_takes_sane_values_or_refuses_them_on_one_line(action, data):
    keys_ = data.draw(st.lists(st.sampled_from(STEP_KEY_NAMES), unique=True, max_size=3))
    table = {"t_s": data.draw(st.one_of(st.floats(0, 60), numbers)), "do": action}
    for key in (*STEP_KEYS[action], *keys_):
        if data.draw(st.booleans()):
            table[key] = data.draw(step_values)
    step_or_error(action, table)
