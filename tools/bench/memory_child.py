"""The firmware alone in a process, for the memory suite: `python -m tools.bench.memory_child
DEVICE_DIR PRE_EVENT_S RECORD_S OUT.json LOOP_FILE`.

Builds Firmware on the simulator's board with replay parts (pre-encoded 1080p30 10 Mbit/s
packets, a fresh bytes object each, as a real camera delivers them) on a VirtualClock
(the video loop encoded by the parent, LOOP_FILE, so no x264 encoder ever sat in this heap),
buffers for the pre-event plus 3 s, then one event of RECORD_S seconds, and shuts down.
Its RSS (VmRSS from /proc/self/status) is sampled once per virtual second; OUT.json gets
the samples, VmHWM at the end (the peak of this address space since exec: nothing of
the harness is counted) and what the ring buffer held.
"""
from __future__ import annotations

import dataclasses
import json
import sys

from device.config import Policy, load_identity
from device.firmware import Firmware
from hal.media import VideoFormat
from simulator.board import build_sim_board
from simulator.clock import VirtualClock
from simulator.replay import ReplayCamera, ReplayMicrophone, load_loop

HD_10M = VideoFormat(width=1920, height=1080, fps=30, keyframe_interval_s=1.0, bitrate_bps=10_000_000)
SAMPLE_EVERY_US = 1_000_000
BUFFER_EXTRA_S = 3.0   # past the pre-event, so the buffer is full when the button goes


def status_kib(field: str, pid: str = "self") -> int | None:
    """A `kB` field of /proc/PID/status (VmRSS, VmHWM), or None where there is none."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def main(device_dir: str, pre_event_s: float, record_s: float, out_path: str, loop_path: str) -> int:
    clock = VirtualClock()
    world = build_sim_board(clock, device_dir, f"{device_dir}/storage", HD_10M)
    board = dataclasses.replace(world.board, camera=ReplayCamera(clock, HD_10M, distinct_payloads=True,
                                                                  loop=load_loop(loop_path)),
                                microphone=ReplayMicrophone(clock))
    firmware = Firmware(board, load_identity(device_dir), Policy(pre_event_s=pre_event_s, segment_s=60))
    t0_us = clock.monotonic_us()
    samples: list[tuple[float, float]] = []
    held: dict = {}

    def sample() -> None:
        kib = status_kib("VmRSS")
        if kib is not None:
            samples.append(((clock.monotonic_us() - t0_us) / 1e6, kib / 1024))
        clock.call_at(clock.monotonic_us() + SAMPLE_EVERY_US, sample)

    firmware.boot()
    sample()
    press_us = t0_us + round((pre_event_s + BUFFER_EXTRA_S) * 1e6)
    clock.wait_until(press_us)
    buffer = getattr(firmware.recorder, "_buffer", None)   # read-only: what the ring holds
    if buffer is not None:
        held = {"bytes_held": buffer.bytes_held, "duration_s": buffer.duration_us / 1e6}
    # A double press, as the wearer gives it (two 120 ms presses 150 ms apart).
    for at_us, level in ((0, True), (120_000, False), (270_000, True), (390_000, False)):
        clock.call_at(press_us + at_us, lambda level=level: world.inputs.set("record", level))
    clock.wait_until(press_us + round(record_s * 1e6))
    firmware.writer.wait_idle()
    firmware.shutdown()
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump({"rss_samples": samples, "vm_hwm_mib": (status_kib("VmHWM") or 0) / 1024,
                   "press_s": (press_us - t0_us) / 1e6, "buffer": held,
                   "failure": repr(firmware.failure) if firmware.failure else None}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]))
