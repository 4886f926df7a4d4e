"""The firmware 0.3 policy keys (announcement, reminders, stop confirmation, faults):
exact bounds and one-line errors naming the key and its line."""
from __future__ import annotations

import pytest

from device.config import ConfigError, Policy, build_policy, parse_toml


def policy(text: str) -> Policy:
    return build_policy(parse_toml(text, "p.toml"), Policy(), "p.toml", text)


def refused(text: str) -> str:
    with pytest.raises(ConfigError) as exc:
        policy(text)
    return str(exc.value)


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
