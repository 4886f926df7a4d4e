"""The `memory` suite (DESIGN §4: <= 150 MiB plus the buffer's bytes with 120 s of pre-event
at 10 Mbit/s): peak RSS of a firmware process (tools/bench/memory_child.py) with no
pre-event and with 120 s, each buffering and then recording one event. The camera delivers
real, distinct payloads, so the buffer really holds 120 s of bytes.

Figures: rss_mib_pre_event_0_s, rss_mib_pre_event_120_s (peak: the child's VmHWM),
buffer_share_mib (their difference; context expected_buffer_mib = bitrate x (pre-event + one
keyframe interval)) and rss_over_buffer_mib = peak RSS(120) - expected buffer MiB. Runs of
the two are interleaved. Reduced: 20 s pre-event, 1 repeat.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tools.bench.memory_child import HD_10M
from tools.bench.model import BenchContext, Figure, Series, SuiteResult
from simulator.replay import encode_video_loop, save_loop
from tools.provision import keygen, provision

MIB = 1024 * 1024
RECORD_S = 10.0
_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_child(device_dir: str, pre_event_s: float, out_path: str, loop_path: str) -> tuple[float, dict]:
    """(peak RSS MiB, the child's own report) of one firmware process.

    The peak is the child's VmHWM, read by itself at its end: its own address space's
    high-water mark since exec. Not wait4's ru_maxrss, which Linux carries over from the
    parent's address space at exec (the child is vforked): it would report this harness's
    peak whenever that is the larger (seen: 127 MiB for a child that never exceeded 83)."""
    env = dict(os.environ, PYTHONPATH=_REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "tools.bench.memory_child", device_dir, str(pre_event_s),
                             str(RECORD_S), out_path, loop_path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    if proc.returncode != 0:
        last = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"memory child (pre-event {pre_event_s:g} s) exited {proc.returncode}: {last[0]}")
    with open(out_path, encoding="utf-8") as f:
        child = json.load(f)
    if child["failure"]:
        raise RuntimeError(f"memory child (pre-event {pre_event_s:g} s): firmware failed: {child['failure']}")
    child["ru_maxrss_mib"] = usage.ru_maxrss / 1024
    return child["vm_hwm_mib"], child


def run(ctx: BenchContext) -> SuiteResult:
    pre_event_s = 20.0 if ctx.reduced else 120.0
    repeats = 1 if ctx.reduced else ctx.repeats
    _, public = keygen(os.path.join(ctx.work_dir, "custodian"))
    loop_path = os.path.join(ctx.work_dir, "video-loop.bin")
    save_loop(encode_video_loop(HD_10M), loop_path)
    result = SuiteResult("memory")
    peaks: dict[float, list[float]] = {0.0: [], pre_event_s: []}
    last: dict[float, dict] = {}
    for run_n in range(repeats):
        for pre in (0.0, pre_event_s):   # interleaved: the machine's drift hits both alike
            device_dir = os.path.join(ctx.work_dir, f"device-{pre:g}-{run_n}")
            provision("bench-cam", [public], device_dir)
            peak, last[pre] = run_child(device_dir, pre, os.path.join(ctx.work_dir, f"child-{pre:g}-{run_n}.json"),
                                        loop_path)
            peaks[pre].append(peak)
    expected_mib = HD_10M.bitrate_bps / 8 * (pre_event_s + HD_10M.keyframe_interval_s) / MIB
    context = {"pre_event_s": pre_event_s, "video": "1920x1080@30 10 Mbit/s CBR, distinct payloads",
               "record_s": RECORD_S, "expected_buffer_mib": round(expected_mib, 2),
               "buffer_held_mib": round(last[pre_event_s]["buffer"].get("bytes_held", 0) / MIB, 2)}
    shares = [w - wo for w, wo in zip(peaks[pre_event_s], peaks[0.0])]
    result.figures += [
        Figure("rss_mib_pre_event_0_s", "MiB", peaks[0.0], description="peak RSS, no pre-event, one event"),
        Figure("rss_mib_pre_event_120_s", "MiB", peaks[pre_event_s], context=dict(context),
               description=f"peak RSS, {pre_event_s:g} s pre-event, one event"),
        Figure("buffer_share_mib", "MiB", shares, context=dict(context),
               description="peak RSS with the pre-event minus without (same run pairs)"),
        Figure("rss_over_buffer_mib", "MiB", [p - expected_mib for p in peaks[pre_event_s]], context=dict(context),
               description="peak RSS with the pre-event minus the buffer's expected bytes (DESIGN §4: <= 150)"),
    ]
    for pre, child in last.items():
        result.series.append(Series(f"memory_rss_pre_event_{pre:g}_s", f"RSS, {pre:g} s pre-event (last run)",
                                    "virtual s", "MiB", [tuple(p) for p in child["rss_samples"]]))
    if ctx.reduced:
        result.notes.append(f"reduced: {pre_event_s:g} s pre-event (the _120_s figure names keep the full "
                            "form's name), 1 run")
    return result
