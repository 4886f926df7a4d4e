"""Drive one firmware on the simulated board directly, with the world's fault switches at
hand (the camera cord, the battery, the wall clock, the card), and read back what the
wearer felt and heard (device/patterns.recognise) and what the camera logged.

The whole firmware runs on a VirtualClock, as in `bwc run`; events are scheduled at
scenario times t_s (seconds after boot).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from device.config import Policy, load_identity
from device.firmware import Firmware
from device.patterns import felt
from hal.inputs import RECORD_BUTTON
from hal.media import VideoFormat
from simulator.board import SimWorld, build_sim_board
from simulator.clock import DEFAULT_START_WALL_US, VirtualClock
from simulator.runner import DOUBLE_PRESS_GAP_US, PRESS_US
from tools.provision import keygen, provision

VIDEO = VideoFormat(width=320, height=180, fps=30, keyframe_interval_s=1.0, bitrate_bps=600_000)


@dataclass
class Run:
    clock: VirtualClock
    world: SimWorld
    firmware: Firmware
    boot_us: int
    device_dir: str
    storage: str
    pub_path: str
    secret_path: str

    def at(self, t_s: float, action: Callable[[], None]) -> None:
        self.clock.call_at(self.boot_us + round(t_s * 1e6), action)

    def us(self, t_s: float) -> int:
        return self.boot_us + round(t_s * 1e6)

    def t(self, monotonic_us: int) -> float:
        return (monotonic_us - self.boot_us) / 1e6

    # -- the wearer's hand ------------------------------------------------------------
    def _tap(self, at_us: int, length_us: int = PRESS_US) -> None:
        inputs = self.world.inputs
        self.clock.call_at(at_us, lambda: inputs.set(RECORD_BUTTON, True))
        self.clock.call_at(at_us + length_us, lambda: inputs.set(RECORD_BUTTON, False))

    def press(self, t_s: float) -> None:
        self._tap(self.us(t_s))

    def double_press(self, t_s: float) -> None:
        self._tap(self.us(t_s))
        self._tap(self.us(t_s) + PRESS_US + DOUBLE_PRESS_GAP_US)

    def hold(self, t_s: float, hold_s: float = 3.2) -> None:
        self._tap(self.us(t_s), round(hold_s * 1e6))

    def pull_cord(self, t_s: float, back_s: float | None = None) -> None:
        """The camera cord is pulled at t_s (and pushed back at back_s)."""
        self.at(t_s, self.world.camera.disconnect)
        if back_s is not None:
            self.at(back_s, self.world.camera.reconnect)

    def run_until(self, t_s: float) -> None:
        self.clock.wait_until(self.us(t_s))

    def finish(self, t_s: float) -> None:
        self.run_until(t_s)
        self.firmware.shutdown()

    # -- what a person could observe ----------------------------------------------------
    def patterns(self) -> list[tuple[float, str]]:
        """(t_s, name) of every pattern the wearer felt/heard, read from the indicators."""
        return [(self.t(t), name) for t, name in felt(self.world.indicators.history)]

    def first(self, name: str, after_s: float = 0.0) -> float | None:
        return next((t for t, n in self.patterns() if n == name and t >= after_s), None)

    def led(self, name: str = "record") -> list[tuple[float, bool]]:
        return [(self.t(t), args[1]) for t, kind, args in self.world.indicators.history
                if kind == "led" and args[0] == name]

    def entries(self, entry_type: str | None = None) -> list[dict]:
        from scenario_support import audit_entries
        found = audit_entries(self.storage)
        return [e for e in found if entry_type is None or e["type"] == entry_type]


def start(tmp_path, policy: Policy | None = None, video: VideoFormat = VIDEO,
          start_wall_us: int = DEFAULT_START_WALL_US, battery_pct: float = 100.0,
          drain_pct_per_hour: float = 25.0) -> Run:
    keys_dir, device_dir = str(tmp_path / "keys"), str(tmp_path / "device")
    secret_path, public_path = keygen(keys_dir)
    pub_path = provision("alert-cam", [public_path], device_dir)
    storage = os.path.join(device_dir, "storage")
    clock = VirtualClock(start_wall_us=start_wall_us)
    world = build_sim_board(clock, device_dir, storage, video)
    world.battery.set_drain(drain_pct_per_hour)
    world.battery.set_level(battery_pct)
    policy = Policy(pre_event_s=2, segment_s=10) if policy is None else policy
    firmware = Firmware(world.board, load_identity(device_dir), policy)
    boot_us = clock.monotonic_us()
    firmware.boot()
    return Run(clock, world, firmware, boot_us, device_dir, storage, pub_path, secret_path)
