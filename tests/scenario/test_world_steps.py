"""The simulated world's faults and the trace, on the whole firmware (SIM-3, docs/scenarios.md):
camera.*, mic.*, battery.*, clock.* steps, `run_scenario(trace=...)`, and a scripted 3 s hold
that stops the recording even when every clock callback runs late, as on the wall clock."""
from __future__ import annotations

import json
import os
import random

import pytest

from device.config import load_identity, load_policy
from simulator import inputs as sim_inputs
from simulator.clock import DEFAULT_START_MONOTONIC_US, DEFAULT_START_WALL_US, VirtualClock
from simulator.runner import run_scenario
from simulator.scenario import parse_scenario

from scenario_support import make_custodian, make_device, scenario_toml

HOUR_US = 3_600_000_000


@pytest.fixture(scope="module")
def custodian(tmp_path_factory):
    return make_custodian(str(tmp_path_factory.mktemp("world-custodian") / "keys"))


def run(tmp_path, custodian, steps, duration_s=12, clock=None, **policy):
    device = make_device(str(tmp_path / "device"), custodian)
    text = scenario_toml(duration_s, steps, pre_event_s=2, segment_s=2, **policy)
    scenario = parse_scenario(text, "world.toml")
    base = load_policy(os.path.join(device.directory, "policy.toml"))
    result = run_scenario(scenario, load_identity(device.directory), scenario.apply_policy(base),
                          device.directory, device.storage, trace=True, clock=clock)
    assert all(i.failure is None for i in result.instances), [i.failure for i in result.instances]
    return result


def states(trace) -> list[tuple[float, str, str]]:
    return [(line["t_s"], line["from"], line["to"]) for line in trace.of_kind("state")]


# -- the trace --------------------------------------------------------------------------------

def test_the_trace_shows_what_a_bystander_saw_and_heard_in_time_order(tmp_path, custodian):
    result = run(tmp_path, custodian, [{"t_s": 1, "do": "button.double_press"},
                                       {"t_s": 5, "do": "button.hold", "hold_s": 3}])
    lines = result.trace.lines()
    assert [line["monotonic_us"] for line in lines] == sorted(line["monotonic_us"] for line in lines)
    for line in lines:
        json.dumps(line)   # every line is plain JSON
        assert line["utc_us"] - DEFAULT_START_WALL_US == line["monotonic_us"] - DEFAULT_START_MONOTONIC_US
        assert line["t_s"] == pytest.approx((line["monotonic_us"] - result.start_us) / 1e6)
    assert lines[0]["kind"] == "boot" and lines[0]["booted"] and lines[0]["state"] == "buffering"
    # Recording starts once the second press is debounced (1 s + 120 + 150 ms + 20 ms), and a
    # hold of exactly hold_stop_s stops it at the release.
    assert states(result.trace) == [(1.29, "buffering", "recording"), (8.0, "recording", "buffering"),
                                    (12.0, "buffering", "shutdown")]
    felt = [(line["t_s"], line["duration_ms"]) for line in result.trace.of_kind("vibrate")]
    # start; the "announcement" pattern (two 80 ms buzzes) after it; stop
    assert felt == [(1.29, 200), (1.74, 80), (1.94, 80), (8.0, 400)]
    assert [(line["t_s"], line["frequency_hz"]) for line in result.trace.of_kind("tone")] == [(1.29, 2000)]
    red = [(line["t_s"], line["on"]) for line in result.trace.of_kind("led") if line["name"] == "record"]
    assert red[0][1] is True and 1.29 < red[0][0] < 2.5    # on once media is committed (IND-1)
    assert red[1:] == [(8.0, False)]


# -- clock steps ------------------------------------------------------------------------------

def test_clock_jump_and_set_move_the_wall_clock_the_firmware_stamps_with(tmp_path, custodian):
    result = run(tmp_path, custodian, [
        {"t_s": 1, "do": "button.double_press"},
        {"t_s": 3, "do": "clock.jump", "delta_s": -7200},
        {"t_s": 4, "do": "button.press"},
        {"t_s": 6, "do": "clock.set", "utc": "2026-03-01T12:00:00Z"},
        {"t_s": 7, "do": "button.hold", "hold_s": 3}])
    jump, setting = result.trace.of_kind("world")
    start_wall_us = DEFAULT_START_WALL_US
    assert jump["before_utc_us"] == start_wall_us + 3_000_000
    assert jump["after_utc_us"] == start_wall_us + 3_000_000 - 7200_000_000
    noon_us = 1_772_366_400_000_000
    assert (setting["before_utc_us"], setting["after_utc_us"]) == (start_wall_us + 6_000_000 - 7200_000_000, noon_us)
    # Monotonic time runs straight through; the firmware's own records show the steps.
    from scenario_support import audit_entries
    entries = {e["type"]: e for e in audit_entries(result.instances[0].world.board.storage.root)}
    assert entries["marker"]["utc_us"] == start_wall_us + 4_000_000 - 7200_000_000
    # A stop is dated when the wearer pressed (7 s), one second after the clock was set.
    assert entries["deactivation"]["utc_us"] == noon_us + 1_000_000
    assert entries["marker"]["monotonic_us"] == DEFAULT_START_MONOTONIC_US + 4_000_000


# -- camera and microphone --------------------------------------------------------------------

def test_camera_and_microphone_faults_stop_delivery_and_outlive_a_reboot(tmp_path, custodian):
    result = run(tmp_path, custodian, [
        {"t_s": 1, "do": "camera.disconnect"}, {"t_s": 1, "do": "mic.fail"},
        {"t_s": 3, "do": "power.cut"}, {"t_s": 4, "do": "power.restore"},
        {"t_s": 6, "do": "camera.reconnect"}], duration_s=8)
    first, second = result.worlds
    assert first.camera.frames_missed == 60 and first.camera.frame_count == 30   # 1 s at 30 fps, then nothing
    # The second boot's camera starts with its cord still pulled, until 6 s (and the run's
    # last instant, 8 s, is a capture slot too).
    assert second.camera.frames_missed == 60 and second.camera.frame_count == 61
    # The microphone stayed dead in both boots: nothing was heard after 1 s.
    heard = second.air.heard(result.start_us + 4_000_000, result.start_us + 8_000_000)
    assert not heard.any() and not first.air.heard(result.start_us + 1_100_000, result.start_us + 3_000_000).any()
    assert [line["on"] for line in result.trace.of_kind("power")] == [False, True]
    assert [line["boot"] for line in result.trace.of_kind("boot")] == [1, 2]


def test_a_step_on_a_dead_camera_does_nothing(tmp_path, custodian):
    result = run(tmp_path, custodian, [
        {"t_s": 1, "do": "power.cut"}, {"t_s": 2, "do": "camera.disconnect"}, {"t_s": 2, "do": "mic.fail"},
        {"t_s": 3, "do": "power.restore"}], duration_s=5)
    assert result.worlds[1].camera.frames_missed == 0 and result.worlds[1].camera.frame_count == 61
    assert result.worlds[1].air.heard(result.start_us + 3_100_000, result.start_us + 5_000_000).any()
    assert [line["applied"] for line in result.trace.of_kind("world")] == [False, False]


# -- the battery ------------------------------------------------------------------------------

def test_the_battery_drains_by_the_recorder_state_and_follows_its_steps_exactly(tmp_path, custodian):
    result = run(tmp_path, custodian, [
        {"t_s": 1, "do": "battery.set", "percent": 50},
        {"t_s": 2, "do": "button.double_press"},
        {"t_s": 6, "do": "battery.drain", "rate_pct_per_min": 3},
        {"t_s": 8, "do": "battery.drain"},
        {"t_s": 9, "do": "power.cut"}, {"t_s": 10, "do": "power.restore"}], duration_s=12)
    (start_s, _, _), = [s for s in states(result.trace) if s[2] == "recording"]
    per_us = {"buffering": 12.5 / HOUR_US, "recording": 20.0 / HOUR_US}
    expected = (50.0
                - per_us["buffering"] * round((start_s - 1) * 1e6)    # set at 1 s, buffering until the start
                - per_us["recording"] * round((6 - start_s) * 1e6)    # recording until the fixed drain
                - 3.0 / 60_000_000 * 2_000_000                       # 3 %/min for 2 s
                - per_us["recording"] * 1_000_000                     # the model again, until the cut
                - per_us["buffering"] * 2_000_000)                    # boot 2 buffers 10..12 s, then off
    assert result.battery.level_pct() == pytest.approx(expected, abs=1e-9)
    assert result.battery.state == "off"


# -- the 3 s hold when callbacks run late -------------------------------------------------------

class LateClock(VirtualClock):
    """A virtual clock whose callbacks each run late by a seeded random 0..max_late_us, as on
    the wall clock, where the thread that runs timers is busy encoding a frame or was not
    scheduled: time has moved on by the time the callback reads it."""

    def __init__(self, seed: int, max_late_us: int = 40_000) -> None:
        super().__init__()
        self._rng = random.Random(seed)
        self._max_late_us = max_late_us

    def call_at(self, deadline_us, callback):
        def late() -> None:
            late_us = self._rng.randrange(self._max_late_us)
            with self._lock:
                self._now_us = max(self._now_us, deadline_us + late_us)
            callback()
        return super().call_at(deadline_us, late)


HOLD_STEPS = [{"t_s": 1, "do": "button.double_press"}, {"t_s": 4, "do": "button.hold", "hold_s": 3}]


def stopped_by_the_hold(result) -> bool:
    return any(to == "buffering" for _, frm, to in states(result.trace) if frm == "recording")


def test_late_callbacks_made_a_scripted_3_s_hold_fall_short_when_edges_were_stamped_on_arrival(
        tmp_path, custodian, monkeypatch):
    # The old stamping, back for this test: an edge dated when its callback ran.
    original = sim_inputs.SimInputs.set
    monkeypatch.setattr(sim_inputs.SimInputs, "set", lambda self, name, active, at_us=None:
                        original(self, name, active))
    outcomes = [stopped_by_the_hold(run(tmp_path / str(seed), custodian, HOLD_STEPS, duration_s=9,
                                        clock=LateClock(seed)))
                for seed in range(6)]
    assert not all(outcomes), "the late clock no longer reproduces the --realtime failure"


@pytest.mark.parametrize("seed", range(6))
def test_a_scripted_hold_of_exactly_hold_stop_s_stops_the_recording_when_callbacks_run_late(
        tmp_path, custodian, seed):
    result = run(tmp_path, custodian, HOLD_STEPS, duration_s=9, clock=LateClock(seed))
    assert stopped_by_the_hold(result)
    (t_s, _, _), = [s for s in states(result.trace) if s[1] == "recording"][:1]
    assert 7.0 <= t_s < 7.05   # at the release, plus the release callback's own lateness
