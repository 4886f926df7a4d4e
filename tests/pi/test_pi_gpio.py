"""PiInputs and PiIndicators on gpiozero's own MockFactory (no hand-made pin fakes)."""
from __future__ import annotations

import importlib.util

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from hal.indicators import LED_RECORD, LED_STATUS
from hal.pi import BackendUnavailable
from hal.pi.config import InputPinConfig, PiBoardConfig, PiConfigError
from hal.pi.gpio import PiIndicators, PiInputs, load_pin_factory
from simulator.clock import VirtualClock

BUTTON, HOLSTER, LIGHTBAR = 17, 24, 25
CONFIG = PiBoardConfig(
    record_button=InputPinConfig(pin=BUTTON),                                      # pull-up, active low
    triggers={"holster": InputPinConfig(pin=HOLSTER, pull_up=None, active_low=False),  # driven externally
              "lightbar": InputPinConfig(pin=LIGHTBAR, pull_up=False)},            # pull-down, active high
)


@pytest.fixture
def factory():
    # PWM-capable mock pins: the buzzer is a PWMOutputDevice (lgpio does PWM on any pin).
    return MockFactory(pin_class=MockPWMPin)


@pytest.fixture
def clock():
    return VirtualClock(start_monotonic_us=1_000_000)


@pytest.fixture
def inputs(factory, clock):
    device = PiInputs(CONFIG, clock, pin_factory=factory)
    yield device
    device.close()


@pytest.fixture
def indicators(factory, clock):
    device = PiIndicators(CONFIG, clock, pin_factory=factory)
    yield device
    device.close()


# ---- inputs --------------------------------------------------------------------

def test_inputs_are_named_record_first_then_triggers(inputs):
    assert inputs.names == ("record", "holster", "lightbar")
    assert not any(inputs.is_active(name) for name in inputs.names)


def test_button_edges_carry_name_level_and_clock_time(inputs, factory, clock):
    edges = []
    inputs.subscribe(lambda *edge: edges.append(edge))
    factory.pin(BUTTON).drive_low()                # pressed (pull-up, active low)
    assert inputs.is_active("record")
    clock.advance(120_000)
    factory.pin(BUTTON).drive_high()               # released
    assert edges == [("record", True, 1_000_000), ("record", False, 1_120_000)]


def test_contact_bounce_reaches_the_firmware_unfiltered(inputs, factory):
    # ACT-1: debouncing is ours, so every bounce edge must come through.
    edges = []
    inputs.subscribe(lambda name, active, t: edges.append(active))
    pin = factory.pin(BUTTON)
    for _ in range(3):
        pin.drive_low()
        pin.drive_high()
    assert edges == [True, False] * 3


def test_trigger_polarities_follow_the_config(inputs, factory):
    edges = []
    inputs.subscribe(lambda name, active, t: edges.append((name, active)))
    factory.pin(HOLSTER).drive_high()    # floating line, active high
    factory.pin(LIGHTBAR).drive_high()   # pull-down, active high
    assert inputs.is_active("holster") and inputs.is_active("lightbar")
    factory.pin(HOLSTER).drive_low()
    assert edges == [("holster", True), ("lightbar", True), ("holster", False)]


def test_every_subscriber_hears_every_edge(inputs, factory):
    first, second = [], []
    inputs.subscribe(lambda *edge: first.append(edge))
    inputs.subscribe(lambda *edge: second.append(edge))
    factory.pin(LIGHTBAR).drive_high()
    assert first == second and len(first) == 1


def test_unknown_input_name_is_a_clear_error(inputs):
    with pytest.raises(KeyError, match="no input named 'siren'.*record, holster, lightbar"):
        inputs.is_active("siren")


def test_close_releases_the_lines(factory, clock, inputs):
    inputs.close()
    PiInputs(CONFIG, clock, pin_factory=factory).close()  # would raise GPIOPinInUse otherwise


def test_a_pin_factory_is_required(clock):
    with pytest.raises(ValueError, match="pin_factory is required"):
        PiInputs(CONFIG, clock, pin_factory=None)
    with pytest.raises(ValueError, match="pin_factory is required"):
        PiIndicators(CONFIG, clock, pin_factory=None)


# ---- indicators ----------------------------------------------------------------

def test_leds_switch_their_pins(indicators, factory):
    indicators.set_led(LED_RECORD, True)
    assert factory.pin(CONFIG.led_record_pin).state == 1
    assert factory.pin(CONFIG.led_status_pin).state == 0
    indicators.set_led(LED_STATUS, True)
    indicators.set_led(LED_RECORD, False)
    factory.pin(CONFIG.led_record_pin).assert_states([0, 1, 0])
    assert factory.pin(CONFIG.led_status_pin).state == 1


def test_active_low_leds_are_inverted_on_the_pin(factory, clock):
    config = PiBoardConfig(leds_active_high=False)
    indicators = PiIndicators(config, clock, pin_factory=factory)
    try:
        assert factory.pin(config.led_record_pin).state == 1   # off = high
        indicators.set_led(LED_RECORD, True)
        assert factory.pin(config.led_record_pin).state == 0
    finally:
        indicators.close()


def test_unknown_led_is_a_clear_error(indicators):
    with pytest.raises(KeyError, match="no LED named 'blue'"):
        indicators.set_led("blue", True)


def test_vibration_pulse_returns_at_once_and_ends_on_the_clock(indicators, factory, clock):
    motor = factory.pin(CONFIG.vibration_pin)
    indicators.vibrate(200)
    assert motor.state == 1
    clock.advance(199_999)
    assert motor.state == 1
    clock.advance(1)
    assert motor.state == 0


def test_a_new_vibration_pulse_extends_a_running_one(indicators, factory, clock):
    motor = factory.pin(CONFIG.vibration_pin)
    indicators.vibrate(200)
    clock.advance(150_000)
    indicators.vibrate(200)          # must not be cut short at 200 ms by the first timer
    clock.advance(100_000)
    assert motor.state == 1
    clock.advance(100_000)
    assert motor.state == 0
    motor.assert_states([0, 1, 0])


def test_beep_plays_a_tone_at_half_duty_then_stops(indicators, factory, clock):
    buzzer = factory.pin(CONFIG.buzzer_pin)
    indicators.beep(2_000, 100)
    assert buzzer.frequency == 2_000
    assert buzzer.state == 0.5
    clock.advance(100_000)
    assert buzzer.state == 0


def test_bad_pulse_arguments_are_refused(indicators):
    with pytest.raises(ValueError, match="duration_ms"):
        indicators.vibrate(0)
    with pytest.raises(ValueError, match="frequency_hz"):
        indicators.beep(0, 100)


# ---- pin factories: exactly the one asked for ----------------------------------

def test_load_pin_factory_loads_the_named_factory():
    factory = load_pin_factory("mock")
    assert isinstance(factory, MockFactory)
    factory.close()


def test_unknown_pin_factory_is_named_in_the_error():
    with pytest.raises(BackendUnavailable, match=r"pin factory 'gpiod' does not exist \(known: .*lgpio"):
        load_pin_factory("gpiod")


@pytest.mark.skipif(importlib.util.find_spec("lgpio") is not None, reason="lgpio is installed here")
def test_lgpio_missing_raises_instead_of_falling_back():
    with pytest.raises(BackendUnavailable, match=r"pin factory 'lgpio' could not load"):
        load_pin_factory("lgpio")


# ---- config validation that protects the wiring --------------------------------

def test_config_refuses_a_pin_used_twice():
    with pytest.raises(PiConfigError, match="vibration_pin and record_button both use GPIO17"):
        PiBoardConfig(vibration_pin=17)


def test_config_refuses_contradictory_polarity():
    with pytest.raises(PiConfigError, match="pull_up=True implies active_low=True"):
        InputPinConfig(pin=5, pull_up=True, active_low=False)
    with pytest.raises(PiConfigError, match="active_low must be set"):
        InputPinConfig(pin=5, pull_up=None)


def test_config_refuses_a_trigger_named_record():
    with pytest.raises(PiConfigError, match="reserved"):
        PiBoardConfig(triggers={"record": InputPinConfig(pin=5)})
