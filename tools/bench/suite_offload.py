"""The `offload` suite (DESIGN §4, issue 7), from tools/bench/offload.py's measurements.

- offload_mb_s: a whole card offloaded into a real intake on the same disk, against `cp -r`
  of the same files followed by `sync`, runs interleaved (ratio >= 0.5);
- bad_link_efficiency: payload bytes / bytes that crossed a 1 MB/s link that drops the
  connection every 1.5 MB (>= 0.95);
- fleet_aggregate_mb_s, fleet_request_ms: N devices at once into two replicas sharing one
  store, the aggregate rate and every request's latency from the intake's access logs.
Reduced: a 10 s card, one bad-link run of 8 s, 5 devices.
"""
from __future__ import annotations

import os

from tools.bench.model import BenchContext, Figure, Series, SuiteResult
from tools.bench.offload import bench_bad_link, bench_fleet, bench_loopback


def run(ctx: BenchContext) -> SuiteResult:
    result = SuiteResult("offload")
    loop = bench_loopback(os.path.join(ctx.work_dir, "l"), record_s=10 if ctx.reduced else 60, repeats=ctx.repeats)
    result.figures.append(Figure("offload_mb_s", "MB/s", loop["offload_mb_s"], "higher",
                                 "bwc offload of a whole card into an intake on the same disk",
                                 peer="cp -r + sync", peer_samples=loop["cp_then_sync_mb_s"],
                                 context={"payload_mb": loop["payload_mb"]}))
    efficiency, last = [], {}
    for n in range(1 if ctx.reduced else min(3, ctx.repeats)):
        last = bench_bad_link(os.path.join(ctx.work_dir, f"b{n}"), record_s=8 if ctx.reduced else 20)
        if last["exit_code"] != 0 or last["efficiency"] is None:
            raise RuntimeError(f"bwc offload over the bad link exited {last['exit_code']}")
        efficiency.append(last["efficiency"])
    result.figures.append(Figure("bad_link_efficiency", "fraction", efficiency, "higher",
                                 "payload bytes / bytes sent over a 1 MB/s link dropping every 1.5 MB",
                                 context={k: last[k] for k in ("payload_mb", "link_bytes_per_s", "drops", "part_kib")}))
    fleet = bench_fleet(os.path.join(ctx.work_dir, "f"), devices=5 if ctx.reduced else 20)
    if not fleet["all_exit_0"]:
        raise RuntimeError("a device of the fleet did not offload (exit != 0)")
    context = {"devices": fleet["devices"], "replicas": fleet["replicas"], "payload_mb": fleet["payload_mb"]}
    result.figures += [
        Figure("fleet_aggregate_mb_s", "MB/s", [fleet["aggregate_mb_s"]], "higher",
               "a fleet offloading at once into two intake replicas: total payload / wall time", context=context),
        Figure("fleet_request_ms", "ms", fleet["request_ms"], description="each intake request's duration "
               "(access log) during the fleet's offload", context=context),
    ]
    result.series.append(Series("offload_fleet_request_ms", "fleet: intake request latency", "", "ms",
                                [(0.0, ms) for ms in fleet["request_ms"]], kind="histogram"))
    return result
