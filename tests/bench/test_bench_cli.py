"""`bwc bench run` with tiny fake suites registered for the test: the exit codes a tester
scripts against (0 all hold, 1 one fails, 3 a figure skipped, 2 usage), one-line errors,
and the report's JSON shape and self-contained HTML."""
from __future__ import annotations

import json
import re
import sys
import types

import pytest

from tools.bench import machine, registry
from tools.bench.model import Figure, Series, SuiteResult
from tools.cli import main


def _suite(name: str, figures, series=(), crash: str | None = None):
    module = types.ModuleType(f"fake_suite_{name}")

    def run(ctx):
        if crash:
            raise RuntimeError(crash)
        assert ctx.hal == "sim" and ctx.work_dir and ctx.disk_write_mb_s > 0
        return SuiteResult(name, list(figures), list(series), notes=[f"repeats {ctx.repeats} seed {ctx.seed}"])
    module.run = run
    return module


GOOD = [Figure("rss_over_buffer_mib", "MiB", [80.0, 90.0, 85.0], description="peak minus buffer"),
        Figure("buffer_share_mib", "MiB", [120.0, 121.0])]
SERIES = [Series("rss", "RSS over time", "s", "MiB", [(0.0, 90.0), (1.0, 95.0), (2.0, 99.0)]),
          Series("lat", "latency", "", "ms", [(0, 3.0), (0, 4.0), (0, 9.0)], kind="histogram")]


@pytest.fixture
def suites(monkeypatch):
    monkeypatch.setattr(machine, "DISK_PROBE_BYTES", 4 * 1024 * 1024)   # the probe itself is not under test

    def register(**modules):
        table = dict(registry.SUITES)
        for name, module in modules.items():
            monkeypatch.setitem(sys.modules, module.__name__, module)
            table[name] = module.__name__
        monkeypatch.setattr(registry, "SUITES", table)
    return register


def _bench(tmp_path, *args) -> int:
    return main(["bench", "run", *args, "--hal", "sim", "--out", str(tmp_path / "out")])


def _report(tmp_path) -> dict:
    return json.loads((tmp_path / "out" / "report.json").read_text())


def test_all_thresholds_hold_exit_0_and_the_report(tmp_path, suites, capsys):
    suites(memory=_suite("memory", GOOD, SERIES))
    assert _bench(tmp_path, "memory", "--repeats", "3", "--seed", "7") == 0
    out = capsys.readouterr().out
    assert re.search(r"^memory\.rss_over_buffer_mib  median 85 MiB  spread 10  n 3  PASS \(max 90 <= 150\)$", out, re.M)
    assert re.search(r"^memory\.buffer_share_mib .* INFO$", out, re.M)
    report = _report(tmp_path)
    assert report["exit_code"] == 0 and report["verdict"] == "pass"
    assert report["arguments"] == {"suites": ["memory"], "hal": "sim", "thresholds": None, "reduced": False,
                                   "out": str(tmp_path / "out"), "repeats": 3, "seed": 7, "pi_config": None}
    assert {"cpu_model", "cores", "python", "kernel", "disk_write_mb_s"} <= set(report["machine"])
    assert report["machine"]["bytecode_compiled"] is True
    (suite,) = report["suites"]
    assert suite["notes"] == ["repeats 3 seed 7"] and suite["error"] is None
    fig = suite["figures"][0]
    assert fig["samples"] == [80.0, 90.0, 85.0] and fig["stats"]["median"] == 85.0 and fig["stats"]["spread"] == 10.0
    assert fig["threshold"] == {"stat": "max", "min": None, "max": 150.0} and fig["verdict"] == "pass"
    assert suite["figures"][1]["verdict"] == "info" and suite["figures"][1]["threshold"] is None
    assert [s["name"] for s in suite["series"]] == ["rss", "lat"] and suite["series"][0]["points"][1] == [1.0, 95.0]
    page = (tmp_path / "out" / "report.html").read_text()
    assert not re.search(r"https?://", page), "the report must open offline"
    assert page.count("<svg") == 2 and "<table>" in page and page.index("<table>") < page.index("<svg")
    assert "rss_over_buffer_mib" in page and "<script" not in page and "<link" not in page


def test_a_failed_threshold_exits_1(tmp_path, suites, capsys):
    suites(memory=_suite("memory", [Figure("rss_over_buffer_mib", "MiB", [151.0])]))
    assert _bench(tmp_path, "memory") == 1
    assert "FAIL (max 151 <= 150)" in capsys.readouterr().out
    assert _report(tmp_path)["verdict"] == "fail"


def test_a_skipped_peer_exits_3_and_says_how_to_install(tmp_path, suites, capsys):
    note = "age not found: apt-get install age"
    suites(memory=_suite("memory", GOOD + [Figure("extra", "MB/s", [], peer="age", skipped=note)]))
    assert _bench(tmp_path, "memory") == 3
    assert note in capsys.readouterr().out
    skipped = [f for f in _report(tmp_path)["suites"][0]["figures"] if f["verdict"] == "skipped"]
    assert [f["note"] for f in skipped] == [note]
    assert note in (tmp_path / "out" / "report.html").read_text()


def test_a_threshold_the_suite_did_not_measure_is_not_a_pass(tmp_path, suites):
    suites(memory=_suite("memory", [Figure("buffer_share_mib", "MiB", [1.0])]))
    assert _bench(tmp_path, "memory") == 3
    missing = [f for f in _report(tmp_path)["suites"][0]["figures"] if f["name"] == "rss_over_buffer_mib"]
    assert missing[0]["verdict"] == "skipped" and "not measured" in missing[0]["note"]


def test_a_crashing_suite_fails_the_run_in_one_line_and_the_others_still_run(tmp_path, suites, capsys):
    suites(memory=_suite("memory", GOOD), shift=_suite("shift", [], crash="no card"))
    assert _bench(tmp_path, "shift", "memory") == 1
    out = capsys.readouterr().out
    assert "shift: suite failed: RuntimeError: no card" in out and "memory.rss_over_buffer_mib" in out
    report = _report(tmp_path)
    assert [s["suite"] for s in report["suites"]] == ["shift", "memory"]
    assert report["suites"][0]["error"] == "RuntimeError: no card"
    assert "suite failed" in (tmp_path / "out" / "report.html").read_text()


def test_thresholds_file_overrides(tmp_path, suites):
    suites(memory=_suite("memory", GOOD))
    path = tmp_path / "proto.toml"
    path.write_text('[memory.rss_over_buffer_mib]\nstat = "median"\nmax = 50\n')
    assert _bench(tmp_path, "memory", "--thresholds", str(path)) == 1
    fig = _report(tmp_path)["suites"][0]["figures"][0]
    assert fig["threshold"]["stat"] == "median" and fig["judged_value"] == 85.0


@pytest.mark.parametrize("args, says", [
    (["nosuch"], "bwc bench: unknown suite 'nosuch' (suites: activation, throughput, memory"),
    (["memory", "--thresholds", "THRESHOLDS"], "unknown figure 'typo' in suite 'memory'"),
    (["memory", "--repeats", "0"], "--repeats must be at least 1"),
    (["memory", "--pi-config", "THRESHOLDS"], "--pi-config is for --hal pi"),
])
def test_usage_errors_are_one_line_exit_2(tmp_path, suites, capsys, args, says):
    suites(memory=_suite("memory", GOOD))
    bad = tmp_path / "bad.toml"
    bad.write_text('[memory.typo]\nstat = "max"\nmax = 1\n')
    args = [str(bad) if a == "THRESHOLDS" else a for a in args]
    assert _bench(tmp_path, *args) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists(), "nothing runs, nothing is written"


def test_out_that_is_a_file_is_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "out").write_text("")
    assert _bench(tmp_path, "memory") == 2
    err = capsys.readouterr().err
    assert err == f"bwc bench: --out {tmp_path / 'out'}: exists and is not a directory\n"
