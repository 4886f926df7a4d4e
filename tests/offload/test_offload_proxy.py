"""Offload over a bad link (issue 7, OFF-1): a multi-segment recording through a loopback proxy
at 1 MB/s that drops the connection every 1.5 MB (every ~2 s at that rate). The offload
completes (exit 0), each drop costs at most the part in flight, almost every byte that
crossed the link was payload, the intake verifies everything with no gap, and the card
keeps nothing the intake received."""
from __future__ import annotations

import json
import os

import pytest

from offload_support import make_trusting_device
from intake_support import Intake, enroll, init_intake, need_intake
from tools.netem import Proxy
from scenario_support import bwc, record, scenario_toml

pytestmark = pytest.mark.tool

RATE_BPS = 1_000_000
DROP_EVERY_BYTES = 1_500_000
PART_KIB = 64
# About 4 MB of 1080p in eight 2 s segments: two drops at 1 MB/s, about 20 s in all.
BIG = scenario_toml(17, [{"t_s": 0.5, "do": "button.double_press"}, {"t_s": 13.0, "do": "button.hold",
                                                                      "hold_s": 3.0}],
                    width=1920, height=1080, fps=15, bitrate_bps=20_000_000, pre_event_s=0, segment_s=2)


@pytest.fixture(scope="module")
def big_device(tmp_path_factory, offload_custodian):
    need_intake()
    base = tmp_path_factory.mktemp("proxy")
    intake_dir = str(base / "intake")
    device = make_trusting_device(str(base / "device"), offload_custodian, init_intake(intake_dir))
    record(device, offload_custodian, BIG, None)
    enroll(intake_dir, device.pub_path)
    return intake_dir, device


def test_offload_through_a_slow_dropping_link_completes_with_little_resent(big_device, tmp_path):
    intake_dir, device = big_device
    storage = device.storage
    payload = sum(os.path.getsize(os.path.join(storage, n)) for n in os.listdir(storage))
    segments = sorted(n for n in os.listdir(storage) if n.startswith("seg-"))
    assert len(segments) >= 7 and payload > 3_000_000
    intake = Intake(intake_dir, str(tmp_path / "store"), str(tmp_path / "access.log"))
    try:
        with Proxy(("127.0.0.1", intake.port), rate_bps=RATE_BPS, drop_every_bytes=DROP_EVERY_BYTES) as proxy:
            result = bwc("offload", "--device", device.directory, "--to", proxy.url, "--json",
                         "--part-kib", str(PART_KIB), timeout=120)
        lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        assert result.returncode == 0, result.stderr + result.stdout
        summary = lines[-1]
        assert sorted(summary["accepted"]) == list(range(1, len(segments) + 1))
        assert proxy.drops >= 2 and summary["retries"] >= proxy.drops
        # A drop costs at most the part in flight.
        assert max(summary["wasted_bytes"]) <= PART_KIB * 1024
        efficiency = payload / proxy.client_to_server
        print(f"\noffload through the proxy: {payload} payload bytes, {proxy.client_to_server} bytes sent, "
              f"{proxy.drops} drops: efficiency {efficiency:.3f}")
        assert efficiency >= 0.90
        # Everything verifies at the intake; the card keeps only its newest audit file.
        verified = bwc("verify", intake.store_url, "--device-pub", device.pub_path)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert [n for n in os.listdir(storage)] == summary["left_on_card"] and len(summary["left_on_card"]) == 1
    finally:
        intake.stop()
