"""The `throughput` suite: the writer against `age`, verify against `openssl`/`sha256sum`/
`b2sum`, export against `age -d` + `ffmpeg -c copy`, firmware CPU, the simulator against
`ffmpeg` (docs/bench.md#throughput). Glue only: each part measures itself and returns its
figures and series (measure_writer.py, measure_read.py, measure_sim.py); this concatenates
them in that order, whatever figures they are.
"""
from __future__ import annotations

from tools.bench import measure_read, measure_sim, measure_writer
from tools.bench.model import BenchContext, SuiteResult

PARTS = (("writer", measure_writer), ("read", measure_read), ("sim", measure_sim))


def run(ctx: BenchContext) -> SuiteResult:
    result = SuiteResult("throughput")
    for name, part in PARTS:
        figures, series = part.measure(ctx)
        result.figures.extend(figures)
        result.series.extend(series)
        if not figures and not series:
            result.notes.append(f"measure_{name}: no figures")
    return result
