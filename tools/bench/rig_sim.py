"""The rig over the simulator's board (docs/bench-rig.md): the same interface as the GPIO rig.

Driven lines are the simulated inputs (SimInputs.set); the indicators are watched by
standing between the firmware and the simulated ones (the firmware calls set_led /
vibrate on WatchedIndicators, which passes each call on and tells the rig), the way a
wire sits between a Pi's output and an LED. Time base (`t_ns`): the simulator clock's
monotonic time; `wall_ns`: time.perf_counter_ns().
"""
from __future__ import annotations

import dataclasses
import os
import time

from device.config import Policy, load_identity
from device.firmware import Firmware
from hal.clock import Clock
from hal.indicators import LED_RECORD, LED_STATUS, Indicators
from hal.media import VideoFormat
from hal.fs import OS_FS
from simulator.board import build_sim_board
from simulator.clock import VirtualClock
from simulator.inputs import SimInputs
from simulator.replay import ReplayCamera, ReplayMicrophone
from tools.bench.devices import make_device
from tools.bench.rig import RECORD_LED, STATUS_LED, VIBRATION, Edge, Prototype, Rig, TappedPart

_LED_INDICATOR = {LED_RECORD: RECORD_LED, LED_STATUS: STATUS_LED}


class SimRig(Rig):
    time_base = "the simulator clock's monotonic time (ns)"
    wall_base = "time.perf_counter_ns"

    def __init__(self, clock: Clock, inputs: SimInputs) -> None:
        super().__init__(inputs.names)
        self._clock, self._inputs = clock, inputs

    def wall_ns(self) -> int:
        return time.perf_counter_ns()

    def _drive(self, line: str, active: bool) -> Edge:
        wall_ns = time.perf_counter_ns()
        t_ns = self._clock.monotonic_us() * 1000
        self._inputs.set(line, active)
        return Edge(line, active, t_ns, wall_ns)

    def watch(self, indicators: Indicators) -> "WatchedIndicators":
        """The indicators the firmware is to be given: `indicators`, reported to this rig."""
        return WatchedIndicators(indicators, self, self._clock)


class WatchedIndicators(Indicators):
    """Passes every call on to the simulated indicators and reports levels to the rig; a
    vibration pulse ends on the clock, as the Pi's does (the later of two pulses' ends)."""

    def __init__(self, inner: Indicators, rig: SimRig, clock: Clock) -> None:
        self._inner, self._rig, self._clock = inner, rig, clock
        self._vibration_end_us = 0

    def set_led(self, name: str, on: bool) -> None:
        self._inner.set_led(name, on)
        self._report(_LED_INDICATOR[name], on)

    def vibrate(self, duration_ms: int) -> None:
        self._inner.vibrate(duration_ms)
        end_us = self._clock.monotonic_us() + duration_ms * 1000
        if end_us > self._vibration_end_us:
            self._vibration_end_us = end_us
            self._clock.call_at(end_us, lambda: self._vibration_ends(end_us))
        self._report(VIBRATION, True)

    def beep(self, frequency_hz: int, duration_ms: int) -> None:
        self._inner.beep(frequency_hz, duration_ms)   # the rig does not watch the buzzer

    def _vibration_ends(self, end_us: int) -> None:
        if end_us == self._vibration_end_us:
            self._report(VIBRATION, False)

    def _report(self, indicator: str, on: bool) -> None:
        self._rig._record(indicator, bool(on), self._clock.monotonic_us() * 1000, time.perf_counter_ns())


class SimPrototype(Prototype):
    """The firmware on the simulator's board, with replayed (pre-encoded) media so the
    simulated encoder costs nothing, on a virtual clock that the bench paces."""

    def __init__(self, root: str, video: VideoFormat, policy: Policy) -> None:
        super().__init__()
        device_dir, self.custodian_key_path = make_device(root)
        self.device_pub_path = os.path.join(device_dir, "device.pub")
        self.storage_dir = os.path.join(device_dir, "storage")
        self.clock = clock = VirtualClock()
        # The kernel's file system, not the simulator's SimFS: the durable figures are
        # judged against the disk rate the harness measured through the kernel, and SimFS's
        # power-cut model (a lock and bookkeeping around every write) is not the camera's.
        world = build_sim_board(clock, device_dir, self.storage_dir, video, fs=OS_FS)
        self.rig = SimRig(clock, world.inputs)
        self.board = dataclasses.replace(
            world.board, camera=TappedPart(ReplayCamera(clock, video), self),
            microphone=TappedPart(ReplayMicrophone(clock), self),
            indicators=self.rig.watch(world.indicators))
        self.firmware = Firmware(self.board, load_identity(device_dir), policy)


def sim_prototype(root: str, video: VideoFormat, policy: Policy) -> SimPrototype:
    return SimPrototype(root, video, policy)
