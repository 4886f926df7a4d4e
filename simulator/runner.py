"""Runs the whole firmware on the simulator through a scenario (SIM-2, SIM-3)."""
from __future__ import annotations

import os
import signal
from dataclasses import dataclass

from device.config import Identity, Policy
from device.firmware import Firmware
from hal.clock import Clock
from hal.inputs import RECORD_BUTTON
from hal.realclock import RealClock
from simulator.board import SimWorld, build_sim_board
from simulator.clock import VirtualClock
from simulator.scenario import Scenario, Step

PRESS_US = 120_000          # a deliberate tap
DOUBLE_PRESS_GAP_US = 150_000


@dataclass
class RunResult:
    firmware: Firmware
    world: SimWorld
    start_us: int
    end_us: int


def _seconds(t_s: float) -> int:
    return round(t_s * 1_000_000)


def _schedule(world: SimWorld, clock: Clock, firmware: Firmware, start_us: int, step: Step) -> None:
    inputs = world.inputs
    at_us = start_us + _seconds(step.t_s)

    def press_release(at: int, length_us: int, name: str = RECORD_BUTTON) -> None:
        clock.call_at(at, lambda: inputs.set(name, True))
        clock.call_at(at + length_us, lambda: inputs.set(name, False))

    if step.action == "button.press":
        press_release(at_us, PRESS_US)
    elif step.action == "button.double_press":
        press_release(at_us, PRESS_US)
        press_release(at_us + PRESS_US + DOUBLE_PRESS_GAP_US, PRESS_US)
    elif step.action == "button.hold":
        press_release(at_us, _seconds(step.hold_s))
    elif step.action == "trigger.on":
        clock.call_at(at_us, lambda: inputs.set(step.name, True))
    elif step.action == "trigger.off":
        clock.call_at(at_us, lambda: inputs.set(step.name, False))
    elif step.action == "power.cut":
        clock.call_at(at_us, lambda: _power_cut(firmware))


def _power_cut(firmware: Firmware) -> None:
    """Simulate pulling the battery: let the writer reach the present (so the cut
    falls at a known point of the recording), then kill the process outright."""
    firmware.writer.wait_idle()
    os.kill(os.getpid(), signal.SIGKILL)


def run_scenario(scenario: Scenario, identity: Identity, policy: Policy, device_dir: str,
                 storage_dir: str, source_path: str | None = None, realtime: bool = False) -> RunResult:
    clock: Clock = RealClock() if realtime else VirtualClock()
    triggers = tuple(sorted(set(scenario.trigger_names) | set(policy.triggers)))
    world = build_sim_board(clock, device_dir, storage_dir, scenario.video, triggers, source_path,
                            constant_bitrate=scenario.constant_bitrate)
    firmware = Firmware(world.board, identity, policy)
    firmware.boot()
    start_us = clock.monotonic_us()
    for step in scenario.steps:
        _schedule(world, clock, firmware, start_us, step)
    end_us = start_us + _seconds(scenario.duration_s)
    try:
        clock.wait_until(end_us)
    finally:
        # Close the event cleanly even if a simulated part failed mid-run.
        firmware.shutdown()
    return RunResult(firmware, world, start_us, end_us)
