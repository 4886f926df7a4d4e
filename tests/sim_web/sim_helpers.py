"""A live simulator on a virtual clock, and its HTTP app under Starlette's test client."""
from __future__ import annotations

import os

from starlette.testclient import TestClient

from device.config import load_identity, load_policy
from simulator.clock import VirtualClock
from simulator.live import LiveSim
from tools.bench.devices import make_device
from tools.sim_web.app import build_app


class Sim:
    """The run, its clock and the page's view of it."""

    def __init__(self, root: str, triggers=(), pods=(), device: tuple[str, str] | None = None) -> None:
        """`device`: (device dir, custodian key) already made; else one is made in `root`."""
        self.device_dir, self.key_path = device or make_device(root)
        self.out_dir = os.path.join(root, "export")
        self.clock = VirtualClock()
        self.live = LiveSim(load_identity(self.device_dir), load_policy(os.path.join(self.device_dir, "policy.toml")),
                            self.device_dir, clock=self.clock, triggers=tuple(triggers), pods=tuple(pods))
        self.client = TestClient(build_app(self.live, self.key_path, self.out_dir, check_host=False))

    def advance(self, seconds: float) -> None:
        """Let simulated time pass: the firmware runs, the controls sent take effect."""
        self.clock.wait_until(self.clock.monotonic_us() + round(seconds * 1e6))
        self.live.device.catch_up()

    def post(self, path: str, body=None):
        return self.client.post(path, json=body)

    def status(self) -> dict:
        response = self.client.get("/api/status")
        assert response.status_code == 200
        return response.json()

    def close(self) -> None:
        self.live.close()

