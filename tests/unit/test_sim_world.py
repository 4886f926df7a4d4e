"""The simulated world's new parts on their own: the steppable wall clock, the trace, the
battery's per-state model, the microphone's fault switch and scripted edge stamps (SIM-3)."""
from __future__ import annotations

import io
import json
import threading

import numpy as np
import pytest

from hal.indicators import LED_STATUS
from hal.media import AudioFormat
from simulator.audio import SimAir, SimMicrophone, SimSpeaker
from simulator.battery import SimBattery
from simulator.clock import VirtualClock
from simulator.indicators import SimIndicators
from simulator.inputs import SimInputs
from simulator.trace import Trace
from simulator.wallclock import SteppableWallClock

HOUR_US = 3_600_000_000


# -- wall clock -----------------------------------------------------------------------------------

def test_the_wall_clock_jumps_and_is_set_while_monotonic_time_and_timers_are_untouched():
    inner = VirtualClock(start_monotonic_us=0, start_wall_us=1_000_000_000)
    clock = SteppableWallClock(inner)
    fired = []
    clock.call_at(2_000_000, lambda: fired.append(clock.monotonic_us()))
    inner.advance(1_000_000)
    assert clock.jump_us(3_600_000_000) == 1_000_000_000 + 1_000_000 + 3_600_000_000
    assert clock.monotonic_us() == 1_000_000
    inner.advance(1_000_000)
    assert fired == [2_000_000]                      # the timer ran on monotonic time
    assert clock.wall_time_us() == 1_000_000_000 + 2_000_000 + 3_600_000_000
    clock.set_wall_time_us(5)
    inner.advance(10)
    assert clock.wall_time_us() == 15                 # set, then runs on from there
    assert clock.jump_us(-1_000_000) == 0             # never before the epoch
    with pytest.raises(ValueError):
        clock.set_wall_time_us(-1)
    assert clock.virtual and clock.inner is inner


# -- trace ----------------------------------------------------------------------------------------

def test_the_trace_holds_indicator_speaker_and_input_outputs_in_time_order_as_json():
    inner = VirtualClock(start_monotonic_us=0, start_wall_us=1_767_225_600_000_000)
    clock = SteppableWallClock(inner)
    trace = Trace(clock)
    trace.origin_us = 0
    ind = SimIndicators(clock, trace=trace)
    air = SimAir(48_000)
    speaker = SimSpeaker(clock, air, trace)
    inputs = SimInputs(clock, trace=trace)
    inner.advance(500_000)
    ind.set_led(LED_STATUS, True)
    ind.set_led(LED_STATUS, True)                     # no change: no line
    speaker.play(np.zeros(48_000, dtype=np.int16), 48_000, tag="ab" * 32)
    speaker.play(np.zeros(24_000, dtype=np.int16), 48_000, tag=None)   # queues behind the first
    clock.jump_us(-3_600_000_000)
    inner.advance(500_000)
    ind.vibrate(200)
    ind.beep(2000, 150)
    inputs.set("record", True, at_us=900_000)         # a late callback, stamped when it was meant
    lines = trace.lines()
    assert [(line["kind"], line["t_s"]) for line in lines] == [
        ("led", 0.5), ("speaker", 0.5), ("input", 0.9), ("vibrate", 1.0), ("tone", 1.0), ("speaker", 1.5)]
    led, first, _, vibrate, tone, second = lines
    assert (led["name"], led["on"], led["utc_us"]) == (LED_STATUS, True, 1_767_225_600_500_000)
    assert (first["tag"], first["duration_ms"]) == ("ab" * 32, 1000)
    assert (second["tag"], second["duration_ms"], second["monotonic_us"]) == (None, 500, 1_500_000)
    # After the jump the lines carry the wall time the device's clock showed.
    assert vibrate["utc_us"] == 1_767_225_600_000_000 + 1_000_000 - 3_600_000_000
    assert (vibrate["duration_ms"], tone["frequency_hz"], tone["duration_ms"]) == (200, 2000, 150)
    assert [json.loads(line) for line in _written(trace)] == lines


def _written(trace: Trace) -> list[str]:
    out = io.StringIO()
    assert trace.write(out) == len(trace.lines())
    return out.getvalue().splitlines()


def test_the_trace_takes_outputs_from_many_threads_at_once():
    clock = VirtualClock(start_monotonic_us=0)
    trace = Trace(clock)
    ind = SimIndicators(clock, trace=trace)

    def buzz():
        for _ in range(500):
            ind.vibrate(1)

    threads = [threading.Thread(target=buzz) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(trace.of_kind("vibrate")) == 2000


# -- battery --------------------------------------------------------------------------------------

def test_the_battery_drains_by_state_exactly_and_documented_runtimes_hold():
    clock = VirtualClock(start_monotonic_us=0)
    state = ["buffering"]
    battery = SimBattery(clock, state_source=lambda: state[0])
    assert battery.minutes_left("buffering") == pytest.approx(8 * 60)
    assert battery.minutes_left("recording") == pytest.approx(5 * 60)
    clock.advance(HOUR_US)
    assert battery.level_pct() == pytest.approx(100 - 12.5)
    state[0] = "recording"
    battery.state_changed()
    clock.advance(HOUR_US // 2)
    assert battery.level_pct() == pytest.approx(100 - 12.5 - 10)
    state[0] = "off"
    battery.state_changed()
    clock.advance(10 * HOUR_US)
    assert battery.level_pct() == pytest.approx(77.5)            # nothing drawn while off


def test_a_state_change_reported_late_counts_from_when_it_happened():
    clock = VirtualClock(start_monotonic_us=0)
    state = ["recording"]
    battery = SimBattery(clock, state_source=lambda: state[0])
    clock.advance(HOUR_US)
    state[0] = "off"
    battery.state_changed(at_us=HOUR_US // 2)   # reported now, but it stopped half an hour ago
    assert battery.level_pct() == pytest.approx(100 - 10)   # 30 min at 20 %/h, then nothing


def test_a_fixed_drain_overrides_the_model_until_it_is_lifted():
    clock = VirtualClock(start_monotonic_us=0)
    battery = SimBattery(clock, level_pct=10.0, state_source=lambda: "recording")
    battery.set_drain(60 * 2.0)          # battery.drain rate_pct_per_min = 2
    clock.advance(HOUR_US // 60)
    assert battery.level_pct() == pytest.approx(8.0)
    assert battery.drain_pct_per_hour == 120.0
    battery.set_drain(None)              # back to the per-state model
    clock.advance(HOUR_US)
    assert battery.level_pct() == pytest.approx(0.0)      # 20 %/h for an hour, clamped at empty
    battery.set_level(100)
    assert battery.level_pct() == 100.0
    with pytest.raises(ValueError):
        battery.set_drain(-1)
    with pytest.raises(ValueError):
        SimBattery(clock, state_source=lambda: "sleeping")


# -- microphone fault switch ----------------------------------------------------------------------

def _mic():
    clock = VirtualClock(start_monotonic_us=0)
    air = SimAir(48_000)
    return clock, SimMicrophone(clock, air, AudioFormat()), air


def test_a_failed_microphone_delivers_nothing_until_restarted_after_the_heal():
    clock, mic, air = _mic()
    packets = []
    mic.start(packets.append)
    clock.advance(1_000_000)
    delivered = len(packets)
    assert delivered > 40
    mic.fail()
    assert not mic.is_capturing and mic.is_failed
    clock.advance(1_000_000)
    assert len(packets) == delivered                 # the capture died
    assert not air.heard(1_100_000, 2_000_000).any()  # and heard nothing
    mic.stop()
    mic.start(packets.append)                       # restarted while still failed: still dead
    clock.advance(1_000_000)
    assert len(packets) == delivered
    mic.heal()
    clock.advance(1_000_000)
    assert len(packets) == delivered                 # healed, but the dead capture stays dead
    mic.stop()
    mic.start(packets.append)                       # the firmware reopens it
    clock.advance(1_000_000)
    assert len(packets) - delivered > 40 and mic.is_capturing
    assert min(p.timestamp_us for p in packets[delivered:]) >= 4_000_000 - 21_334   # fresh stream, AAC priming


def test_a_microphone_failed_and_healed_while_stopped_starts_normally():
    clock, mic, _ = _mic()
    mic.fail()
    mic.heal()
    packets = []
    mic.start(packets.append)
    clock.advance(500_000)
    assert packets


# -- scripted edges -------------------------------------------------------------------------------

def test_an_edge_is_stamped_when_it_was_meant_never_in_the_future():
    clock = VirtualClock(start_monotonic_us=0)
    inputs = SimInputs(clock)
    seen = []
    inputs.subscribe(lambda name, active, t: seen.append(t))
    clock.advance(1_000)
    inputs.set("record", True, at_us=400)
    inputs.set("record", False, at_us=5_000)
    inputs.set("record", True)
    assert seen == [400, 1_000, 1_000]
    assert inputs.history[0] == (400, "record", True)
