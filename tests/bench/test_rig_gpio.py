"""The GPIO rig over gpiozero's MockFactory: the firmware on the Pi board's GPIO backends
(hal/pi/gpio.py), its pins jumper-wired to the rig's (MockConnectedPin), as on a bench."""
from __future__ import annotations

import pytest

from device.config import Policy
from device.states import State
from hal.inputs import RECORD_BUTTON
from hal.media import VideoFormat
from hal.pi.config import InputPinConfig, PiBoardConfig
from tools.bench.rig import RECORD_LED, STATUS_LED, VIBRATION, RigError
from tools.bench.rig_gpio import GpioRig, RigWiring, mock_loopback_prototype

VIDEO = VideoFormat(width=320, height=240, fps=30, keyframe_interval_s=0.5, bitrate_bps=500_000)


@pytest.fixture
def booted(tmp_path):
    proto = mock_loopback_prototype(str(tmp_path), Policy(pre_event_s=2, segment_s=60), VIDEO)
    marks = []
    proto.boot(marks.append)
    yield proto, marks
    proto.close()


def double_press(proto):
    """The activation gesture (docs/indicators.md); returns the second press's edge."""
    rig = proto.rig
    rig.press(RECORD_BUTTON)
    proto.fast_forward_us(100_000)
    rig.release(RECORD_BUTTON)
    proto.fast_forward_us(150_000)
    edge = rig.press(RECORD_BUTTON)
    proto.fast_forward_us(100_000)
    rig.release(RECORD_BUTTON)
    return edge


def test_a_press_through_the_rig_starts_an_event_and_the_rig_sees_the_record_led_come_on(booted):
    proto, marks = booted
    rig = proto.rig
    assert rig.level(STATUS_LED) and not rig.level(RECORD_LED)   # the firmware runs, buffering
    proto.fast_forward_us(3_000_000)
    edge = double_press(proto)
    proto.fast_forward_us(2_000_000)
    proto.firmware.writer.wait_idle(30)
    proto.fast_forward_us(200_000)
    assert proto.firmware.recorder.state is State.RECORDING
    assert marks and marks[-1].pre_event_durable
    feel = rig.first_change(edge.wall_ns, on=True)
    led = rig.first_change(edge.wall_ns, RECORD_LED, on=True)
    assert feel.indicator == VIBRATION   # the start pattern, before any media is durable
    assert led is not None and rig.level(RECORD_LED)
    # Times: one monotonic base, in order, none in the future.
    assert edge.t_ns == edge.wall_ns and led.t_ns == led.wall_ns
    assert edge.wall_ns < feel.wall_ns <= led.wall_ns <= rig.wall_ns()
    # The vibration pulse ended on the prototype's clock, and the wire saw it end.
    assert rig.first_change(feel.wall_ns, VIBRATION, on=False) is not None


def test_a_hold_through_the_rig_stops_the_event_and_the_record_led_goes_dark(booted):
    proto, _ = booted
    rig = proto.rig
    proto.fast_forward_us(3_000_000)
    double_press(proto)
    proto.fast_forward_us(2_000_000)
    proto.firmware.writer.wait_idle(30)
    proto.fast_forward_us(200_000)
    hold = rig.press(RECORD_BUTTON)
    proto.fast_forward_us(3_200_000)
    rig.release(RECORD_BUTTON)
    assert proto.firmware.recorder.state is State.BUFFERING
    assert rig.first_change(hold.wall_ns, RECORD_LED, on=False) is not None and not rig.level(RECORD_LED)


@pytest.mark.parametrize("missing, names", [
    ("record", "'record'"), (RECORD_LED, RECORD_LED), (STATUS_LED, STATUS_LED), (VIBRATION, VIBRATION)])
def test_the_self_test_names_a_missing_wire_in_one_line(tmp_path, missing, names):
    proto = mock_loopback_prototype(str(tmp_path), Policy(pre_event_s=2), VIDEO, missing=(missing,))
    try:
        with pytest.raises(RigError) as caught:
            proto.boot(lambda mark: None)
        message = str(caught.value)
        assert "\n" not in message and names in message and "rig self-test" in message
        assert proto.firmware.writer is None   # the firmware never booted behind a bad wire
    finally:
        proto.close()


def test_a_trigger_line_gets_its_own_rig_output_and_is_self_tested(tmp_path):
    config = PiBoardConfig(triggers={"holster": InputPinConfig(pin=24)})
    proto = mock_loopback_prototype(str(tmp_path), Policy(pre_event_s=2), VIDEO, config=config,
                                    missing=("holster",))
    try:
        assert proto.rig.lines == (RECORD_BUTTON, "holster")
        with pytest.raises(RigError, match="'holster'"):
            proto.boot(lambda mark: None)
    finally:
        proto.close()


def test_a_rig_pin_the_prototype_already_uses_is_refused_in_one_line():
    with pytest.raises(RigError, match="GPIO5"):
        RigWiring.for_config(PiBoardConfig(record_button=InputPinConfig(pin=5)))
    with pytest.raises(ValueError, match="pin_factory"):
        GpioRig(RigWiring.for_config(PiBoardConfig()), pin_factory=None)
