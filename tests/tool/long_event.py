"""Long, realistic events on disk fast, for export memory measurements.

The real firmware (writer, muxer, encryption, signatures, audit log) records on the
virtual clock, fed by the pre-encoded replay sources of simulator/replay.py, so a
30-minute 1080p30 10 Mbit/s event costs only the writer's own work (about 25 s),
not 30 minutes of x264. The replayed GOPs each start with an IDR frame, so the export
is a valid, playable MP4.

    PYTHONPATH=. python tests/tool/long_event.py OUT_DIR MINUTES [WIDTH HEIGHT BITRATE_BPS]
"""
from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass

from device.config import Policy, load_identity
from device.firmware import Firmware
from hal.media import VideoFormat
from simulator.board import build_sim_board
from simulator.clock import VirtualClock
from simulator.replay import ReplayCamera, ReplayMicrophone
from tools.provision import keygen, provision

HD_10M = VideoFormat(width=1920, height=1080, fps=30, keyframe_interval_s=1.0, bitrate_bps=10_000_000)
HOLD_STOP_S = 3.0


@dataclass(frozen=True)
class LongEvent:
    device_dir: str
    device_pub: str
    custodian_key: str
    storage: str
    media_s: float
    storage_bytes: int


def record_long_event(root: str, media_s: float, video: VideoFormat = HD_10M,
                      segment_s: float = 60.0) -> LongEvent:
    """One event of about `media_s` seconds, started by a double press, stopped by a hold."""
    secret, public = keygen(os.path.join(root, "custodian"))
    device_dir = os.path.join(root, "device")
    device_pub = provision("long-event-cam", [public], device_dir)
    storage = os.path.join(device_dir, "storage")
    clock = VirtualClock()
    world = build_sim_board(clock, device_dir, storage, video)
    board = dataclasses.replace(world.board, camera=ReplayCamera(clock, video),
                                microphone=ReplayMicrophone(clock))
    policy = Policy(pre_event_s=0, segment_s=segment_s, hold_stop_s=HOLD_STOP_S)
    firmware = Firmware(board, load_identity(device_dir), policy)
    firmware.boot()
    clock.wait_until(clock.monotonic_us() + 1_000_000)
    now = clock.monotonic_us()
    for at_us, level in ((0, True), (120_000, False), (270_000, True), (390_000, False)):
        clock.call_at(now + at_us, lambda level=level: world.inputs.set("record", level))
    # The hold that stops the event is part of it: start it HOLD_STOP_S before the end.
    hold_at_us = now + round((media_s - HOLD_STOP_S) * 1e6)
    clock.call_at(hold_at_us, lambda: world.inputs.set("record", True))
    clock.call_at(hold_at_us + round((HOLD_STOP_S + 0.5) * 1e6), lambda: world.inputs.set("record", False))
    clock.wait_until(hold_at_us + round((HOLD_STOP_S + 1.5) * 1e6))
    firmware.writer.wait_idle()
    firmware.shutdown()
    if firmware.failure is not None:
        raise RuntimeError(f"recording failed: {firmware.failure!r}")
    size = sum(os.path.getsize(os.path.join(storage, n)) for n in os.listdir(storage))
    return LongEvent(device_dir, device_pub, secret, storage, media_s, size)


if __name__ == "__main__":
    out, minutes = sys.argv[1], float(sys.argv[2])
    fmt = HD_10M
    if len(sys.argv) > 3:
        fmt = dataclasses.replace(HD_10M, width=int(sys.argv[3]), height=int(sys.argv[4]),
                                  bitrate_bps=int(sys.argv[5]))
    event = record_long_event(out, minutes * 60, fmt)
    print(f"{event.storage}: {event.storage_bytes / 1e9:.2f} GB, key {event.custodian_key}")
