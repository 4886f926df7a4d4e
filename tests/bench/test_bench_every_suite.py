"""Every registered suite, in its reduced form, through `bwc bench run` (issue 10: the
harness must not rot). Checks that each suite ran to the end and that report.json and
report.html hold what a tester reads; the verdicts themselves are the bench's business,
not this test's (no timed assertion: a busy CI machine may fail a threshold)."""
from __future__ import annotations

import json
import re

import pytest

from tools.bench.registry import SUITES
from tools.cli import main

pytestmark = pytest.mark.slow


def test_every_suite_runs_reduced_and_reports(tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["bench", "run", *SUITES, "--hal", "sim", "--reduced", "--out", str(out), "--seed", "3"])
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert code == report["exit_code"] and code in (0, 1, 3), printed
    assert [s["suite"] for s in report["suites"]] == list(SUITES)
    assert {s["suite"]: s["error"] for s in report["suites"] if s["error"]} == {}, printed
    for suite in report["suites"]:
        assert suite["figures"], f"{suite['suite']} reported no figure"
        for fig in suite["figures"]:
            assert fig["verdict"] in ("pass", "fail", "skipped", "info"), fig
            assert fig["verdict"] == "skipped" or fig["samples"], fig
            assert f"{suite['suite']}.{fig['name']}" in printed
    page = (out / "report.html").read_text()
    assert not re.search(r"https?://", page)
    assert page.count("<svg") == sum(1 for s in report["suites"] for series in s["series"] if series["points"])
    assert report["machine"]["disk_write_mb_s"] > 0 and report["arguments"]["reduced"] is True
    assert not [p for p in out.iterdir() if p.name.startswith("bench-work-")], "scratch space removed"
