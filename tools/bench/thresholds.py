"""Thresholds of `bwc bench run` (docs/bench.md#thresholds): parse, validate, judge.

defaults.toml holds the design targets; a prototype's file (--thresholds FILE) has the same
tables and replaces the defaults key by key ([suite.figure] stat/min/max). Validation is
strict, because a misspelt figure in an override file would otherwise leave the default
silently in force: an unknown suite or figure, an unknown key, a stat outside
median|p99|min|max|ratio, a bound that is not a finite number, a table with no bound, or
min > max, is one ThresholdError line.
"""
from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass

from tools.bench.model import Figure

STATS = ("median", "p99", "min", "max", "ratio")
DEFAULTS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "defaults.toml")


class ThresholdError(Exception):
    """A thresholds file that cannot be used: one line naming the file and the key."""


@dataclass(frozen=True)
class Threshold:
    stat: str
    min: float | None = None
    max: float | None = None

    def to_json(self) -> dict:
        return {"stat": self.stat, "min": self.min, "max": self.max}

    def describe(self) -> str:
        bounds = []
        if self.min is not None:
            bounds.append(f">= {self.min:g}")
        if self.max is not None:
            bounds.append(f"<= {self.max:g}")
        return f"{self.stat} {' and '.join(bounds)}"


Thresholds = dict[tuple[str, str], Threshold]


def _parse_text(text: str, source: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ThresholdError(f"{source}: not TOML: {str(exc).splitlines()[0]}") from None
    except (ValueError, RecursionError) as exc:   # tomllib's own limits (deep nesting)
        raise ThresholdError(f"{source}: not TOML: {type(exc).__name__}") from None


def _bound(value, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ThresholdError(f"{where}: must be a finite number, not {_show(value)}")
    return float(value)


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_thresholds(text: str, source: str, known: dict[str, set[str]] | None) -> Thresholds:
    """Tables [suite.figure] -> Threshold. `known`: suite -> figure names a file may name
    (None: anything, used for defaults.toml itself, which defines the names)."""
    doc = _parse_text(text, source)
    out: Thresholds = {}
    for suite, table in doc.items():
        if not isinstance(table, dict):
            raise ThresholdError(f"{source}: {_show(suite)} must be a table [suite.figure]")
        if known is not None and suite not in known:
            raise ThresholdError(f"{source}: unknown suite {_show(suite)} (known: {', '.join(sorted(known))})")
        for figure, rule in table.items():
            where = f"{source}: [{suite}.{figure}]"
            if not isinstance(rule, dict):
                raise ThresholdError(f"{where}: must be a table with stat and min and/or max")
            if known is not None and figure not in known[suite]:
                raise ThresholdError(f"{source}: unknown figure {_show(figure)} in suite {suite!r}")
            extra = sorted(set(rule) - {"stat", "min", "max"})
            if extra:
                raise ThresholdError(f"{where}: unknown key {_show(extra[0])} (keys: stat, min, max)")
            stat = rule.get("stat")
            if stat not in STATS:
                raise ThresholdError(f"{where}: stat must be one of {', '.join(STATS)}, not {_show(stat)}")
            low, high = _bound(rule.get("min"), f"{where} min"), _bound(rule.get("max"), f"{where} max")
            if low is None and high is None:
                raise ThresholdError(f"{where}: needs min or max")
            if low is not None and high is not None and low > high:
                raise ThresholdError(f"{where}: min {low:g} is above max {high:g}")
            out[(suite, figure)] = Threshold(stat, low, high)
    return out


def load_defaults() -> Thresholds:
    with open(DEFAULTS_PATH, encoding="utf-8") as f:
        return parse_thresholds(f.read(), "defaults.toml", None)


def load_thresholds(path: str | None, extra_known: dict[str, set[str]] | None = None) -> Thresholds:
    """The defaults, with FILE's tables replacing theirs. `extra_known`: per suite, figure names
    with no default that a file may still set (the informational figures of docs/bench.md)."""
    merged = load_defaults()
    if path is None:
        return merged
    known: dict[str, set[str]] = {}
    for suite, figure in merged:
        known.setdefault(suite, set()).add(figure)
    for suite, figures in (extra_known or {}).items():
        known.setdefault(suite, set()).update(figures)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise ThresholdError(f"{path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ThresholdError(f"{path}: not UTF-8 text") from None
    merged.update(parse_thresholds(text, path, known))
    return merged


def judged_value(figure: Figure, stat: str) -> float | None:
    """The figure's value for `stat`, or None when it has none (no samples, no peer)."""
    if stat == "ratio":
        return figure.ratio()
    return figure.stats().get(stat)


def judge(figure: Figure, threshold: Threshold | None) -> tuple[str, float | None, str]:
    """(verdict, judged value, note): pass, fail, skipped (no figure: its note says why) or
    info (no threshold)."""
    if figure.skipped:
        return "skipped", None, figure.skipped
    if threshold is None:
        return "info", None, ""
    # A NaN or infinite sample is a broken measurement: it fails the figure, never slips
    # through (sorting around a NaN would give any median or max, e.g. a pass).
    broken = [name for name, values in (("sample", figure.samples), ("peer sample", figure.peer_samples or []))
              if any(not math.isfinite(v) for v in values)]
    if broken:
        return "fail", None, f"a {broken[0]} is not a finite number: the measurement is broken"
    value = judged_value(figure, threshold.stat)
    if value is None or not math.isfinite(value):
        if threshold.stat != "ratio":
            what = "no samples"
        elif figure.samples and figure.peer_samples:
            what = "a median of zero"
        else:
            what = "no peer samples"
        return "skipped", None, f"{what}: {threshold.stat} cannot be judged"
    ok = (threshold.min is None or value >= threshold.min) and (threshold.max is None or value <= threshold.max)
    return ("pass" if ok else "fail"), value, ""
