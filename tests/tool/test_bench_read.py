"""tools/bench/measure_read.py in its reduced form: the read path's figures exist, carry
the names the default thresholds judge, and each is measured or says why not (no
timing is asserted here: speed is the bench's to report)."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tools.bench import measure_read
from tools.bench.model import BenchContext

pytestmark = [pytest.mark.tool, pytest.mark.slow]

DEFAULTS = Path(measure_read.__file__).with_name("defaults.toml")


def test_reduced_read_figures(tmp_path):
    figures, series = measure_read.measure(BenchContext(hal="sim", work_dir=str(tmp_path), reduced=True, repeats=1))
    names = [f.name for f in figures]
    assert names == ["verify_mb_s", "export_x_realtime", "export_x_realtime_abs", "export_peak_rss_mib",
                     "export_peak_rss_growth_mib"]
    assert set(names) <= set(tomllib.loads(DEFAULTS.read_text())["throughput"])
    for figure in figures:
        # Growth may be below zero (flat memory: the longer export peaked a little lower).
        floor = -50 if figure.name == "export_peak_rss_growth_mib" else 0
        assert figure.skipped or (len(figure.samples) == 1 and figure.samples[0] > floor), figure
        if figure.peer and not figure.skipped:
            assert figure.peer_samples and figure.ratio() is not None, figure
    verify = figures[0]
    assert {"sha256sum_mb_s", "b2sum_mb_s"} <= set(verify.context)
    (rss,) = series
    assert rss.name == "export_rss_mib" and rss.points and all(mib > 0 for _, mib in rss.points)
