"""What a bench suite measures and reports (docs/bench.md#model).

A Figure is one measured quantity, sampled `len(samples)` times (repeated runs, or many
presses in one run). When it is compared with a peer tool, the peer's samples come from
the same run, interleaved with ours, and the ratio is of medians: for a rate ("higher"
is better) ours / peer's, for a time ("lower") peer's / ours, so a ratio >= 1 always
means "at least as good as the peer".
"""
from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass, field
from typing import Literal

Better = Literal["higher", "lower"]


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list: a value that occurred."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Figure:
    name: str                 # e.g. "writer_mb_s"; the key thresholds use
    unit: str                 # "MB/s", "ms", "%", "MiB", "x realtime", "s"
    samples: list[float]
    better: Better = "lower"
    description: str = ""     # one line for the report's table
    peer: str | None = None   # e.g. "age -r X25519 + sync"
    peer_samples: list[float] | None = None
    # Why there is no figure (a peer tool absent, a hal without the part): the report
    # shows the note and the threshold is not judged ("skipped"), never passed silently.
    skipped: str | None = None
    # Context a threshold may use (e.g. {"disk_write_mb_s": 812.0, "pre_event_mb": 37.5}).
    context: dict = field(default_factory=dict)

    def stats(self) -> dict:
        """median, min, max, p99, spread (max - min) and n of the samples."""
        if not self.samples:
            return {"n": 0}
        return {"n": len(self.samples), "median": statistics.median(self.samples),
                "min": min(self.samples), "max": max(self.samples),
                "p99": percentile(self.samples, 99),
                "spread": max(self.samples) - min(self.samples)}

    def ratio(self) -> float | None:
        """Ours against the peer's median, oriented so that >= 1 means as good or better."""
        if not self.samples or not self.peer_samples:
            return None
        ours, theirs = statistics.median(self.samples), statistics.median(self.peer_samples)
        if self.better == "higher":
            return ours / theirs if theirs else None
        return theirs / ours if ours else None


@dataclass
class Series:
    """Points for one plot: (x, y) pairs, e.g. (elapsed s, RSS MiB)."""
    name: str                 # e.g. "shift_rss_mib"
    title: str
    x_unit: str
    y_unit: str
    points: list[tuple[float, float]]
    kind: Literal["line", "histogram"] = "line"   # histogram: y values only matter


@dataclass
class SuiteResult:
    suite: str
    figures: list[Figure] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class BenchContext:
    """What a suite is run with."""
    hal: Literal["sim", "pi"]
    work_dir: str             # scratch space on the disk being measured; removed afterwards
    reduced: bool = False     # the short form the slow test runs: fewer repeats, less data
    repeats: int = 5          # runs per figure (reduced: 2)
    seed: int = 0
    rng: random.Random = field(default_factory=random.Random)
    rig: object | None = None  # tools/bench/rig.py BenchRig, for hal "pi"
    disk_write_mb_s: float | None = None  # measured once per run in work_dir (machine.py)
    pi_config: str | None = None  # hal "pi": the prototype's pi.toml (None: the default wiring)
