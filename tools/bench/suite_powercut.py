"""The `powercut` suite: the power-cut harness (tools/bench/powercut.py) — real process
kills at seeded random phases — as figures.

media_lost_ms: per kill that fell while an event was recording, capture time at the kill
minus the end of the durable, exported media (DESIGN §4: <= one flush interval, 1 s; the
threshold allows 100 ms for the kill itself). authentic / cut_short / tampered: how the
card verified after each kill (tampered must be 0), and violations: every other broken
promise (a run that exited non-zero, an intact event that does not export). Reduced: N = 4.
"""
from __future__ import annotations

from tools.bench.model import BenchContext, Figure, Series, SuiteResult
from tools.bench.powercut import run_harness

FULL_KILLS = 24


def run(ctx: BenchContext) -> SuiteResult:
    kills = 4 if ctx.reduced else FULL_KILLS
    result = run_harness(ctx.work_dir, kills, seed=ctx.seed)
    lost_ms = [us / 1e3 for us in result.lost_us]
    context = {"kills": kills, "seed": ctx.seed, "kill_window_s": 4.5}
    suite = SuiteResult("powercut", notes=[result.summary()] + result.violations)
    suite.figures = [
        Figure("media_lost_ms", "ms", lost_ms, context=context,
               description="media lost per kill while recording: kill instant minus end of durable media",
               skipped=None if lost_ms else "no kill fell while an event was recording (raise N or change --seed)"),
        Figure("authentic", "kills", [float(result.outcomes.get("authentic", 0))], "higher",
               "kills after which the card verified authentic"),
        Figure("cut_short", "kills", [float(result.outcomes.get("truncated", 0))], "lower",
               "kills after which the card verified cut short by power loss (explained)"),
        Figure("tampered", "kills", [float(sum(n for o, n in result.outcomes.items()
                                               if o not in ("authentic", "truncated", "nothing on the card yet")))],
               description="kills after which the card read as tampered or failed to verify (must be 0)"),
        Figure("violations", "count", [float(len(result.violations))],
               description="other broken promises: a non-zero exit, an intact event that does not export"),
    ]
    suite.series.append(Series("powercut_media_lost_ms", "media lost per kill", "", "ms",
                               [(0.0, v) for v in lost_ms], kind="histogram"))
    return suite
