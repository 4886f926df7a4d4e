"""The simulator's throughput figure: measured against ffmpeg, or skipped with a note."""
from __future__ import annotations

import os
import sys

import pytest

from tools.bench import measure_sim
from tools.bench.model import BenchContext

pytestmark = pytest.mark.slow  # runs `bwc run` and ffmpeg for real (about 10 s)


def test_the_simulator_is_measured_against_ffmpeg_in_the_same_run(tmp_path):
    figures, _ = measure_sim.measure(BenchContext(hal="sim", work_dir=str(tmp_path), reduced=True, repeats=2))
    ratio, absolute = {f.name: f for f in figures}["simulator_x_realtime"], figures[1]
    assert ratio.skipped is None
    assert len(ratio.samples) == len(ratio.peer_samples) == 2
    assert ratio.ratio() > 0 and absolute.stats()["median"] > 0
    assert "ultrafast" in ratio.description and "testsrc2" in ratio.peer


def test_without_ffmpeg_the_ratio_is_skipped_with_how_to_install(tmp_path, monkeypatch):
    python_dir = os.path.dirname(os.path.realpath(sys.executable))
    monkeypatch.setenv("PATH", python_dir)   # no ffmpeg on it
    figures, _ = measure_sim.measure(BenchContext(hal="sim", work_dir=str(tmp_path), reduced=True, repeats=1))
    ratio = figures[0]
    assert ratio.skipped == "ffmpeg not installed: apt-get install ffmpeg"
    assert figures[1].samples   # the simulator's own speed needs no peer
