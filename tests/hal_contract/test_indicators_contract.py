"""Indicators: what the wearer sees and feels, as the firmware's patterns rely on (IND-*).

Every pulse is timed on the board's clock (a virtual one here), so its end is exact.
"""
from __future__ import annotations

import pytest

from hal.indicators import LED_RECORD, LED_STATUS


def test_every_board_has_the_record_and_status_leds_and_they_start_dark(indicators_rig):
    rig = indicators_rig
    assert not rig.led_lit(LED_RECORD) and not rig.led_lit(LED_STATUS)
    rig.indicators.set_led(LED_RECORD, True)
    assert rig.led_lit(LED_RECORD) and not rig.led_lit(LED_STATUS)
    rig.indicators.set_led(LED_STATUS, True)
    rig.indicators.set_led(LED_RECORD, False)
    assert not rig.led_lit(LED_RECORD) and rig.led_lit(LED_STATUS)


def test_setting_an_led_to_its_level_again_is_harmless(indicators_rig):
    rig = indicators_rig
    for _ in range(2):
        rig.indicators.set_led(LED_RECORD, True)
    assert rig.led_lit(LED_RECORD)


def test_an_unknown_led_is_refused_and_nothing_lights(indicators_rig):
    rig = indicators_rig
    with pytest.raises(KeyError, match="no LED named 'blue'"):
        rig.indicators.set_led("blue", True)
    assert not rig.led_lit(LED_RECORD) and not rig.led_lit(LED_STATUS)


@pytest.mark.parametrize("kind", ["vibrate", "beep"])
def test_a_pulse_starts_at_once_and_ends_exactly_at_its_duration(indicators_rig, kind):
    rig = indicators_rig
    active = rig.vibrating if kind == "vibrate" else rig.beeping
    start_us = rig.clock.monotonic_us()
    pulse(rig, kind, 200)
    assert rig.clock.monotonic_us() == start_us   # returned without letting time pass
    assert active()
    rig.clock.advance(199_999)
    assert active()
    rig.clock.advance(1)
    assert not active()


@pytest.mark.parametrize("kind", ["vibrate", "beep"])
def test_a_new_pulse_extends_a_running_one(indicators_rig, kind):
    rig = indicators_rig
    active = rig.vibrating if kind == "vibrate" else rig.beeping
    pulse(rig, kind, 200)
    rig.clock.advance(150_000)
    pulse(rig, kind, 200)                  # the first pulse's end must not cut this one
    rig.clock.advance(199_999)
    assert active()
    rig.clock.advance(1)
    assert not active()


@pytest.mark.parametrize("kind", ["vibrate", "beep"])
def test_a_shorter_new_pulse_never_cuts_a_running_one_short(indicators_rig, kind):
    # A warning's long buzz is not shortened by a short tick that lands inside it.
    rig = indicators_rig
    active = rig.vibrating if kind == "vibrate" else rig.beeping
    pulse(rig, kind, 1_000)
    rig.clock.advance(100_000)
    pulse(rig, kind, 100)
    rig.clock.advance(899_999)
    assert active()
    rig.clock.advance(1)
    assert not active()


def test_vibration_and_tone_are_independent(indicators_rig):
    rig = indicators_rig
    rig.indicators.vibrate(100)
    rig.indicators.beep(2_000, 300)
    rig.clock.advance(100_000)
    assert not rig.vibrating() and rig.beeping()
    rig.clock.advance(200_000)
    assert not rig.beeping()


@pytest.mark.parametrize("duration_ms", [0, -5])
def test_non_positive_durations_are_refused_and_nothing_runs(indicators_rig, duration_ms):
    rig = indicators_rig
    with pytest.raises(ValueError, match="duration"):
        rig.indicators.vibrate(duration_ms)
    with pytest.raises(ValueError, match="duration"):
        rig.indicators.beep(2_000, duration_ms)
    assert not rig.vibrating() and not rig.beeping()


@pytest.mark.parametrize("frequency_hz", [0, -440])
def test_a_non_positive_frequency_is_refused(indicators_rig, frequency_hz):
    rig = indicators_rig
    with pytest.raises(ValueError, match="frequency"):
        rig.indicators.beep(frequency_hz, 100)
    assert not rig.beeping()


def pulse(rig, kind: str, duration_ms: int) -> None:
    if kind == "vibrate":
        rig.indicators.vibrate(duration_ms)
    else:
        rig.indicators.beep(2_000, duration_ms)
