"""`bwc bench run`: run suites, judge their figures, write report.json and report.html.

Exit codes (docs/bench.md#exit-codes): 0 every threshold holds; 1 one failed (or a suite
crashed); 3 none failed but a figure was skipped (a peer tool absent: its note says how to
install it) or a threshold's figure was not measured. Usage errors (2) are raised as
HarnessError before anything runs.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import tempfile
import time
import traceback
from typing import Callable

from tools.bench import machine, registry
from tools.bench.model import BenchContext, Figure, SuiteResult
from tools.bench.thresholds import Threshold, ThresholdError, Thresholds, judge, load_thresholds

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_SKIPPED = 0, 1, 2, 3
SCHEMA_VERSION = 1


class HarnessError(Exception):
    """A usage error found before running: one line, exit 2."""


def _num(value):
    if isinstance(value, float):
        return round(value, 6)
    return value


def figure_json(figure: Figure, threshold: Threshold | None) -> dict:
    verdict, value, note = judge(figure, threshold)
    peer_stats = (Figure(figure.name, figure.unit, figure.peer_samples).stats()
                  if figure.peer_samples else None)
    return {"name": figure.name, "unit": figure.unit, "better": figure.better,
            "description": figure.description, "samples": [_num(s) for s in figure.samples],
            "stats": {k: _num(v) for k, v in figure.stats().items()},
            "peer": figure.peer, "peer_samples": [_num(s) for s in figure.peer_samples or []] or None,
            "peer_stats": peer_stats and {k: _num(v) for k, v in peer_stats.items()},
            "ratio": _num(figure.ratio()), "threshold": threshold.to_json() if threshold else None,
            "judged_value": _num(value), "verdict": verdict, "note": note or figure.skipped or "",
            "context": figure.context}


def suite_json(result: SuiteResult, thresholds: Thresholds, duration_s: float, error: str | None) -> dict:
    figures = [figure_json(f, thresholds.get((result.suite, f.name))) for f in result.figures]
    measured = {f.name for f in result.figures}
    for (suite, name), threshold in sorted(thresholds.items()):
        if suite == result.suite and name not in measured and error is None:
            # A target the suite did not measure is not held: never a silent pass.
            figures.append({"name": name, "unit": "", "better": None, "description": "", "samples": [],
                            "stats": {"n": 0}, "peer": None, "peer_samples": None, "peer_stats": None,
                            "ratio": None, "threshold": threshold.to_json(), "judged_value": None,
                            "verdict": "skipped", "note": "not measured: the suite reported no such figure",
                            "context": {}})
    return {"suite": result.suite, "duration_s": round(duration_s, 2), "error": error, "notes": result.notes,
            "figures": figures,
            "series": [{"name": s.name, "title": s.title, "x_unit": s.x_unit, "y_unit": s.y_unit,
                        "kind": s.kind, "points": [[_num(x), _num(y)] for x, y in s.points]}
                       for s in result.series]}


def _fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def figure_line(suite: str, fig: dict) -> str:
    stats = fig["stats"]
    parts = [f"{suite}.{fig['name']}", f"median {_fmt(stats.get('median'))} {fig['unit']}".rstrip(),
             f"spread {_fmt(stats.get('spread'))}", f"n {stats.get('n', 0)}"]
    if fig["ratio"] is not None:
        parts.append(f"ratio {fig['ratio']:.3g}x vs {fig['peer']}")
    verdict = fig["verdict"].upper()
    if fig["threshold"]:
        t = fig["threshold"]
        bound = " and ".join(b for b in ((f">= {t['min']:g}" if t["min"] is not None else ""),
                                         (f"<= {t['max']:g}" if t["max"] is not None else "")) if b)
        verdict += f" ({t['stat']} {_fmt(fig['judged_value'])} {bound})"
    if fig["note"] and fig["verdict"] in ("skipped", "fail"):
        verdict += f": {fig['note']}"
    return "  ".join(parts + [verdict])


def overall_exit(suites: list[dict]) -> int:
    verdicts = [f["verdict"] for s in suites for f in s["figures"]]
    if "fail" in verdicts or any(s["error"] for s in suites):
        return EXIT_FAIL
    return EXIT_SKIPPED if "skipped" in verdicts else EXIT_PASS


def check_arguments(suites: list[str], out: str, thresholds_path: str | None, repeats: int | None,
                    hal: str = "sim", pi_config: str | None = None) -> Thresholds:
    unknown = [s for s in suites if s not in registry.SUITES]
    if unknown:
        raise HarnessError(f"unknown suite {unknown[0]!r} (suites: {', '.join(registry.SUITES)})")
    if not suites:
        raise HarnessError("name at least one suite")
    if os.path.exists(out) and not os.path.isdir(out):
        raise HarnessError(f"--out {out}: exists and is not a directory")
    if repeats is not None and repeats < 1:
        raise HarnessError(f"--repeats must be at least 1, not {repeats}")
    if pi_config is not None and hal != "pi":
        raise HarnessError("--pi-config is for --hal pi")
    if pi_config is not None and not os.path.isfile(pi_config):
        raise HarnessError(f"--pi-config {pi_config}: no such file")
    try:
        import matplotlib  # noqa: F401  (report.html's plots; checked before hours of measuring)
    except ImportError:
        raise HarnessError("report.html needs matplotlib: pip install 'openbwc[bench]'") from None
    try:
        return load_thresholds(thresholds_path, registry.INFO_FIGURES)
    except ThresholdError as exc:
        raise HarnessError(str(exc)) from None


def run(suites: list[str], hal: str, out: str, thresholds_path: str | None = None, reduced: bool = False,
        repeats: int | None = None, seed: int = 0, emit: Callable[[str], None] = print,
        pi_config: str | None = None) -> int:
    """Run `suites` in order; write out/report.json and out/report.html; return the exit code."""
    thresholds = check_arguments(suites, out, thresholds_path, repeats, hal, pi_config)
    os.makedirs(out, exist_ok=True)
    started = time.time()
    work_root = tempfile.mkdtemp(prefix="bench-work-", dir=out)
    report: dict = {"schema": SCHEMA_VERSION, "tool": "bwc bench run",
                    "started_utc": dt.datetime.fromtimestamp(started, dt.timezone.utc).isoformat(timespec="seconds"),
                    "arguments": {"suites": suites, "hal": hal, "thresholds": thresholds_path, "out": out,
                                  "reduced": reduced, "repeats": repeats, "seed": seed,
                                  "pi_config": pi_config}}
    try:
        report["machine"] = machine.describe(work_root)
        report["machine"]["bytecode_compiled"] = machine.compile_bytecode()
        emit(f"machine: {report['machine']['cpu_model']}, {report['machine']['cores']} cores, "
             f"disk {report['machine']['disk_write_mb_s']} MB/s (4 MiB writes + fsync)")
        results = []
        for name in suites:
            results.append(_run_one(name, hal, work_root, reduced, repeats, seed, thresholds,
                                    report["machine"]["disk_write_mb_s"], emit, pi_config))
    finally:
        shutil.rmtree(work_root, ignore_errors=True)
    report["suites"] = results
    report["duration_s"] = round(time.time() - started, 1)
    report["exit_code"] = overall_exit(results)
    report["verdict"] = {EXIT_PASS: "pass", EXIT_FAIL: "fail", EXIT_SKIPPED: "skipped"}[report["exit_code"]]
    with open(os.path.join(out, "report.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    from tools.bench.report_html import write_html
    write_html(report, os.path.join(out, "report.html"))
    counts = {v: sum(f["verdict"] == v for s in results for f in s["figures"])
              for v in ("pass", "fail", "skipped", "info")}
    emit(f"{report['verdict']}: {', '.join(f'{n} {v}' for v, n in counts.items())}; "
         f"report {os.path.join(out, 'report.json')} and report.html")
    return report["exit_code"]


def _run_one(name: str, hal: str, work_root: str, reduced: bool, repeats: int | None, seed: int,
             thresholds: Thresholds, disk_mb_s: float, emit, pi_config: str | None = None) -> dict:
    work_dir = os.path.join(work_root, name)
    os.makedirs(work_dir)
    ctx = BenchContext(hal=hal, work_dir=work_dir, reduced=reduced,
                       repeats=repeats or (2 if reduced else 5), seed=seed,
                       rng=random.Random(f"{seed}:{name}"), disk_write_mb_s=disk_mb_s, pi_config=pi_config)
    emit(f"suite {name} ({'reduced, ' if reduced else ''}{ctx.repeats} repeats, seed {seed})")
    started = time.perf_counter()
    error = None
    try:
        result = registry.load_suite(name).run(ctx)
    except Exception as exc:   # a suite that crashes fails the run; the others still run
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        result = SuiteResult(name, notes=["".join(traceback.format_exception(exc))[-4000:]])
        emit(f"{name}: suite failed: {error}")
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    out = suite_json(result, thresholds, time.perf_counter() - started, error)
    for fig in out["figures"]:
        emit(figure_line(name, fig))
    return out
