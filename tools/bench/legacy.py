"""`bwc bench`: measured performance figures against DESIGN §4, written as a report.

Figures:
- firmware CPU per minute of buffering and of recording (1080p30, 10 Mbit/s CBR),
  with pre-encoded media replayed so the simulated encoder is not counted;
- peak resident memory of a real `bwc run` process with a 30 s pre-event at
  10 Mbit/s, and of the same run with no pre-event (the difference is the buffer);
- wall time of `bwc demo`, and the simulator's speed relative to real time;
- offload into a real intake: loopback MB/s against `cp`, efficiency over a slow link that
  drops, and a fleet of devices into two replicas (tools.bench.offload.py).
"""
from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

from device.config import Policy, load_identity
from device.firmware import Firmware
from hal.media import VideoFormat
from simulator.board import build_sim_board
from simulator.clock import VirtualClock
from simulator.replay import ReplayCamera, ReplayMicrophone
from tools.provision import keygen, provision

MIB = 1024 * 1024
HD_10M = VideoFormat(width=1920, height=1080, fps=30, keyframe_interval_s=1.0, bitrate_bps=10_000_000)


def _device(root: str) -> str:
    _, public = keygen(os.path.join(root, "custodian"))
    device_dir = os.path.join(root, "device")
    provision("bench-cam", [public], device_dir)
    return device_dir


def bench_firmware_cpu(root: str, video: VideoFormat = HD_10M, pre_event_s: float = 30.0,
                       record_s: float = 60.0) -> dict:
    device_dir = _device(root)
    clock = VirtualClock()
    world = build_sim_board(clock, device_dir, os.path.join(device_dir, "storage"), video)
    board = dataclasses.replace(world.board, camera=ReplayCamera(clock, video),
                                microphone=ReplayMicrophone(clock))
    firmware = Firmware(board, load_identity(device_dir), Policy(pre_event_s=pre_event_s, segment_s=60))
    firmware.boot()
    t0 = clock.monotonic_us()
    cpu_start = time.process_time()
    clock.wait_until(t0 + round(pre_event_s * 1e6) + 2_000_000)
    cpu_buffering = time.process_time() - cpu_start
    buffering_s = pre_event_s + 2
    for at_us, level in ((0, True), (120_000, False), (270_000, True), (390_000, False)):
        clock.call_at(clock.monotonic_us() + at_us, lambda level=level: world.inputs.set("record", level))
    cpu_start = time.process_time()
    wall_start = time.perf_counter()
    clock.wait_until(clock.monotonic_us() + round(record_s * 1e6))
    firmware.writer.wait_idle()
    cpu_recording = time.process_time() - cpu_start
    wall_recording = time.perf_counter() - wall_start
    firmware.shutdown()
    written = sum(os.path.getsize(os.path.join(device_dir, "storage", n))
                  for n in os.listdir(os.path.join(device_dir, "storage")))
    per_min_rec = cpu_recording / record_s * 60
    # The recording phase also writes the whole pre-event buffer, so per minute of
    # media written is the fair figure for "CPU per recorded hour".
    per_media_min = cpu_recording / (record_s + pre_event_s) * 60
    return {
        "video": f"{video.width}x{video.height}@{video.fps} {video.bitrate_bps / 1e6:g} Mbit/s CBR",
        "buffering_cpu_s_per_min": round(cpu_buffering / buffering_s * 60, 4),
        "recording_cpu_s_per_min": round(per_min_rec, 4),
        "recording_core_pct": round(per_min_rec / 60 * 100, 3),
        "cpu_s_per_media_min": round(per_media_min, 4),
        "core_pct_per_recorded_hour": round(per_media_min / 60 * 100, 3),
        "recording_mb_written": round(written / 1e6, 1),
        "recording_wall_s": round(wall_recording, 2),
        "target": "<= 1% of one core per recorded hour (DESIGN §4)",
    }


_MEMORY_SCENARIO = """\
duration_s = {duration_s}
[camera]
width = 1920
height = 1080
fps = 30
keyframe_interval_s = 1
bitrate_bps = 10000000
constant_bitrate = true
[policy]
pre_event_s = {pre_event_s}
segment_s = 60
[[at]]
t_s = {start_s}
do = "button.double_press"
[[at]]
t_s = {stop_s}
do = "button.hold"
"""


def _run_bwc(args: list[str]) -> tuple[int, float, float]:
    """Run `bwc ARGS`; returns (exit code, peak RSS in MiB, wall seconds)."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "openbwc", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss / 1024, time.perf_counter() - started


def bench_run_memory(root: str, pre_event_s: float) -> dict:
    device_dir = _device(os.path.join(root, f"pre{pre_event_s:g}"))
    scenario = os.path.join(root, f"memory-{pre_event_s:g}.toml")
    start_s = max(pre_event_s, 5) + 5
    with open(scenario, "w") as f:
        f.write(_MEMORY_SCENARIO.format(duration_s=start_s + 15, pre_event_s=pre_event_s,
                                        start_s=start_s, stop_s=start_s + 10))
    code, rss_mib, wall_s = _run_bwc(["run", "--device", device_dir, "--hal", "sim", "--scenario", scenario])
    return {"pre_event_s": pre_event_s, "exit_code": code, "peak_rss_mib": round(rss_mib, 1),
            "wall_s": round(wall_s, 1)}


def bench_demo(root: str) -> dict:
    code, rss_mib, wall_s = _run_bwc(["demo", "--out", os.path.join(root, "demo")])
    simulated_s = 42.0
    return {"exit_code": code, "wall_s": round(wall_s, 2), "peak_rss_mib": round(rss_mib, 1),
            "simulated_s": simulated_s, "speed_x_realtime_incl_startup_and_export": round(simulated_s / wall_s, 1)}


def run_bench(out_dir: str, quick: bool = False) -> dict:
    os.makedirs(out_dir, exist_ok=True)
    report: dict = {"machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                                "platform": platform.platform()}}
    with tempfile.TemporaryDirectory() as root:
        report["demo"] = bench_demo(root)
        video = HD_10M if not quick else dataclasses.replace(HD_10M, width=640, height=360)
        report["firmware_cpu"] = bench_firmware_cpu(os.path.join(root, "cpu"), video,
                                                    record_s=60 if not quick else 10)
        if not quick:
            with_buffer = bench_run_memory(root, 30)
            without = bench_run_memory(root, 0)
            buffer_mib = HD_10M.bitrate_bps / 8 * 31 / MIB
            report["run_memory"] = {
                "with_30s_pre_event": with_buffer, "with_no_pre_event": without,
                "buffer_share_mib": round(with_buffer["peak_rss_mib"] - without["peak_rss_mib"], 1),
                "expected_buffer_bytes_mib": round(buffer_mib, 1),
                "target": "<= 150 MiB plus the buffer's bytes (DESIGN §4)",
            }
        from tools.bench.offload import bench_offload
        report["offload"] = bench_offload(os.path.join(root, "offload"), quick)
    with open(os.path.join(out_dir, "bench.json"), "w") as f:
        json.dump(report, f, indent=2)
    return report
