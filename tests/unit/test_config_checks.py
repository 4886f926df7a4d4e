"""The exact bounds of device/config.py, device/evidence/keys.py, hal/filekeystore.py and
pi.toml loading, case by case (the property tests in test_parser_properties.py search
around them)."""
from __future__ import annotations

import json
import os

import pytest
from nacl.public import PrivateKey

from device.config import (ConfigError, Policy, build_policy, check_device_id, check_trigger_name, load_identity,
                           parse_toml)
from device.evidence import keys
from device.evidence.keys import KeyFileError, is_low_order_x25519, parse_key, read_key
from hal.filekeystore import FileKeyStore, KeyStoreError
from tools.pi_main import load_pi_config

FLOAT_KEYS = [name for name, value in vars(Policy()).items() if isinstance(value, float)]


def policy(text: str) -> Policy:
    return build_policy(parse_toml(text, "p.toml"), Policy(), "p.toml", text)


def refused(text: str) -> str:
    with pytest.raises(ConfigError) as exc:
        policy(text)
    return str(exc.value)


def test_every_float_key_is_covered():
    assert set(FLOAT_KEYS) == {"pre_event_s", "buffer_max_mib", "segment_s", "flush_interval_s", "hold_stop_s",
                               "announce_defer_s", "reminder_interval_s", "stop_confirm_s", "camera_timeout_s",
                               "camera_retry_max_s", "battery_warn_min", "battery_critical_pct",
                               "storage_warn_min"}


@pytest.mark.parametrize("literal", ["nan", "inf", "-inf", "+inf", "-nan"])
@pytest.mark.parametrize("key", FLOAT_KEYS)
def test_nan_and_infinity_are_refused_by_name_for_every_float_key(key, literal):
    # NaN fails every comparison, so a range check alone would let it through.
    message = refused(f"{key} = {literal}\n")
    assert message.startswith("p.toml, line 1: ") and f"{key} must be a finite number" in message


@pytest.mark.parametrize("value", ["1e-9", "0.5", "0.999", "4097", "1e300", "-1"])
def test_buffer_max_mib_must_be_0_or_1_to_4096(value):
    assert "buffer_max_mib must be 0 (sized from the bitrate) or 1..4096 MiB" in refused(f"buffer_max_mib = {value}\n")


@pytest.mark.parametrize("value", [0, 1, 64.5, 4096])
def test_buffer_max_mib_accepts_auto_and_real_bounds(value):
    assert policy(f"buffer_max_mib = {value}\n").buffer_max_mib == value


def test_debounce_must_be_shorter_than_the_longest_tap():
    # device/gestures.py refuses debounce >= max_press (1 s) at boot, after "policy loaded".
    assert policy("debounce_ms = 999\ndouble_press_window_ms = 1000\n").debounce_ms == 999
    assert "debounce_ms must be 0..999 ms, got 1000" in refused("debounce_ms = 1000\ndouble_press_window_ms = 2000\n")


def test_an_integer_too_big_for_a_float_is_refused_not_a_crash():
    assert "pre_event_s must be a finite number" in refused("pre_event_s = 1" + "0" * 400 + "\n")
    assert "debounce_ms must be 0..999 ms, got a huge integer" in refused("debounce_ms = 1" + "0" * 400 + "\n")


@pytest.mark.parametrize("text, words", [
    ("a = " + "[" * 5000 + "]" * 5000, "nested too deeply"),
    ("a = " + "1" * 5000, "4300 digits"),
])
def test_toml_the_parser_chokes_on_is_a_config_error(text, words):
    with pytest.raises(ConfigError, match=words):
        parse_toml(text, "p.toml")


@pytest.mark.parametrize("name", ["record", "", "a b", "x" * 33, "holster\n", "ü", "Holster", "2nd", "light-bar"])
def test_bad_trigger_names_are_refused(name):
    assert check_trigger_name(name) is not None
    assert "trigger name" in refused(f"[triggers]\n{name!r} = \"start\"\n".replace("'", '"'))


@pytest.mark.parametrize("name", ["holster", "light_bar_2", "x" * 32])
def test_plain_trigger_names_are_accepted(name):
    assert policy(f"[triggers]\n{name} = \"start_stop\"\n").triggers == {name: "start_stop"}


def test_an_unknown_key_with_a_line_break_stays_on_one_line():
    assert "\n" not in refused('"bad\\nkey" = 1\n')


@pytest.mark.parametrize("device_id, ok", [
    ("cam-0042", True), ("x" * 64, True), ("kamera ü", True),
    ("", False), ("x" * 65, False), ("cam\n", False), ("cam\x07", False), ("\ud800", False),
    (42, False), (None, False), (["cam"], False),
])
def test_device_ids(device_id, ok):
    assert (check_device_id(device_id) is None) is ok


# Every low-order X25519 point libsodium itself blacklists (ed25519_ref10.c), as little-endian
# u-coordinates, then the same with the ignored top bit set.
LOW_ORDER = [bytes.fromhex(h) for h in [
    "00" * 32,
    "01" + "00" * 31,
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ec" + "ff" * 30 + "7f",
    "ed" + "ff" * 30 + "7f",
    "ee" + "ff" * 30 + "7f",
]]
LOW_ORDER += [point[:31] + bytes([point[31] | 0x80]) for point in LOW_ORDER]


@pytest.mark.parametrize("point", LOW_ORDER, ids=lambda p: p.hex()[:8] + "…" + p.hex()[-4:])
def test_low_order_custodian_keys_are_refused(point):
    assert is_low_order_x25519(point)
    with pytest.raises(KeyFileError, match="low-order X25519 point"):
        parse_key(keys.format_key(keys.CUSTODIAN_PUBLIC, point), keys.CUSTODIAN_PUBLIC, "c.pub")


def test_real_custodian_keys_are_not_low_order():
    for _ in range(20):
        assert not is_low_order_x25519(bytes(PrivateKey.generate().public_key))


@pytest.mark.parametrize("text", [
    f"{keys.CUSTODIAN_PUBLIC}:{'ab' * 16} {'ab' * 16}",   # fromhex alone allows the space
    f"{keys.CUSTODIAN_PUBLIC}:{'ab' * 16}\n{'ab' * 16}",  # and a line break
    f"{keys.CUSTODIAN_PUBLIC}:{'ab' * 31}a",              # odd length
])
def test_hex_with_anything_but_hex_digits_is_refused(text):
    with pytest.raises(KeyFileError, match="not valid hex"):
        parse_key(text, keys.CUSTODIAN_PUBLIC, "c.pub")


@pytest.mark.parametrize("value", [5, None, ["x"], {"k": 1}])
def test_a_key_that_is_not_a_string_is_a_key_file_error(value):
    with pytest.raises(KeyFileError, match="expected a key string"):
        parse_key(value, keys.DEVICE_PUBLIC, "device.json: device_public_key")


def test_a_huge_key_file_is_refused_without_reading_it_whole(tmp_path):
    path = tmp_path / "c.pub"
    path.write_text(keys.format_key(keys.CUSTODIAN_PUBLIC, bytes(PrivateKey.generate().public_key)) + " " * 10_000)
    with pytest.raises(KeyFileError, match="over 4096 characters"):
        read_key(str(path), keys.CUSTODIAN_PUBLIC)


@pytest.mark.parametrize("make", ["directory", "non-ascii", "huge"])
def test_unreadable_device_keys_are_key_store_errors(tmp_path, make):
    path = tmp_path / "device.key"
    if make == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"\xff" * 64 if make == "non-ascii" else b"ab" * 100_000)
        os.chmod(path, 0o600)
    with pytest.raises(KeyStoreError) as exc:
        FileKeyStore(str(tmp_path)).signing_seed()
    assert str(path) in str(exc.value)


def test_the_same_custodian_twice_in_device_json_is_refused(tmp_path):
    custodian = keys.format_key(keys.CUSTODIAN_PUBLIC, bytes(PrivateKey.generate().public_key)).strip()
    device = keys.format_key(keys.DEVICE_PUBLIC, bytes(32)).strip()
    (tmp_path / "device.json").write_text(json.dumps(
        {"device_id": "cam", "device_public_key": device, "custodian_public_keys": [custodian, custodian]}))
    with pytest.raises(ConfigError, match="the same custodian key is listed twice"):
        load_identity(str(tmp_path))


# --- pi.toml (tools/pi_main.py) ------------------------------------------------------------------

@pytest.mark.parametrize("text, words", [
    ("fps = 1" + "0" * 400, "too large"),                # fps x keyframe interval overflows a float
    ("keyframe_interval_s = nan", "keyframe_interval_s must be a finite number"),
    ("keyframe_interval_s = inf", "keyframe_interval_s must be a finite number"),
    ("record_button = true", "record_button must be a GPIO number, got True"),
    ("record_button = {pin = 17}", "record_button must be a GPIO number"),
    ("[triggers]\nholster = false", "triggers.holster must be a GPIO number"),
    ("[triggers]\nrecord = 5", "trigger name 'record'"),
    ("width = \"wide\"", "width must be an integer, got 'wide'"),
    ("pin_factory = 3", "pin_factory must be a string, got 3"),
    ("led_record_pin = 40", "GPIO40 is not a header GPIO"),
])
def test_bad_pi_toml_values_are_config_errors(tmp_path, text, words):
    path = tmp_path / "pi.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as exc:
        load_pi_config(str(path))
    assert str(exc.value).startswith(str(path)) and words in str(exc.value)
    assert "\n" not in str(exc.value)


def test_a_pi_toml_that_is_not_utf8_is_a_config_error(tmp_path):
    path = tmp_path / "pi.toml"
    path.write_bytes(b"fps = 30 # \xff\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_pi_config(str(path))


def test_a_device_json_that_is_a_directory_is_a_config_error(tmp_path):
    (tmp_path / "device.json").mkdir()
    with pytest.raises(ConfigError, match="device.json: cannot read"):
        load_identity(str(tmp_path))


# -- firmware 0.3 keys: announcement, reminders, stop confirmation, faults ------------------
def test_defaults_announce_in_english_then_spanish_and_remind_every_two_minutes():
    p = Policy()
    assert (p.announce, p.announce_languages, p.reminder_interval_s) == ("on_start", ["en", "es"], 120.0)
    assert (p.stop_confirm, p.stop_reasons, p.battery_warn_min) == (False, [], 10.0)


@pytest.mark.parametrize("text, words", [
    ('announce = "sometimes"\n', "announce must be one of"),
    ('announce_languages = ["en", "en"]\n', "different languages"),
    ('announce_languages = ["English"]\n', "language tags"),
    ('announce_languages = [1]\n', "language tags"),
    ('announce_languages = "en"\n', "must be an array"),
    ('announce_languages = []\n', "announce_languages is empty"),
    ('announce = "suppressed"\n', "needs announce_suppress_reason"),
    ('announce = "suppressed"\nannounce_suppress_reason = "   "\n', "needs announce_suppress_reason"),
    ('announce_defer_s = 601\n', "announce_defer_s must be 0..600"),
    ('reminder_interval_s = 5\n', "reminder_interval_s must be 0 (off) or 10..3600"),
    ('stop_confirm_s = 0.5\n', "stop_confirm_s must be 1..30"),
    ('stop_reasons = ["end"]\n', "stop_reasons needs stop_confirm = true"),
    ('stop_confirm = true\nstop_reasons = ["End of contact"]\n', "plain words"),
    ('stop_confirm = true\nstop_reasons = ["a", "a"]\n', "different plain words"),
    ('camera_timeout_s = 1.0\n', "camera_timeout_s must be 0.2..0.9"),
    ('camera_retry_max_s = 0.5\n', "camera_retry_max_s must be 1..60"),
    ('battery_warn_min = 4\n', "battery_warn_min must be 5..120"),
    ('battery_critical_pct = 21\n', "battery_critical_pct must be 0..20"),
    ('storage_warn_min = 0\n', "storage_warn_min must be 1..600"),
])
def test_out_of_range_values_are_refused_with_the_key_and_its_line(text, words):
    message = refused(text)
    assert message.startswith("p.toml, line ") and words in message and "\n" not in message


def test_a_suppressed_cue_with_a_reason_and_a_confirmed_stop_with_reasons_load():
    p = policy('announce = "suppressed"\nannounce_suppress_reason = "covert operation (order 17)"\n'
               'stop_confirm = true\nstop_reasons = ["end_of_contact", "privacy", "officer_safety"]\n')
    assert p.announce_suppress_reason.startswith("covert") and p.stop_reasons[1] == "privacy"
    assert policy('reminder_interval_s = 0\n').reminder_interval_s == 0
