"""The suites `bwc bench run` knows: name -> module, imported only when run (a suite's
imports, PyAV or gpiozero, cost nothing to a run that does not use it).

A suite module has `run(ctx: BenchContext) -> SuiteResult` (tools/bench/model.py).
INFO_FIGURES names figures with no default threshold that a --thresholds file may still set.
"""
from __future__ import annotations

import importlib

SUITES: dict[str, str] = {
    "activation": "tools.bench.suite_activation",
    "throughput": "tools.bench.suite_throughput",
    "memory": "tools.bench.suite_memory",
    "shift": "tools.bench.suite_shift",
    "powercut": "tools.bench.suite_powercut",
    "offload": "tools.bench.suite_offload",
    "release": "tools.bench.suite_release",
}

INFO_FIGURES: dict[str, set[str]] = {
    "activation": {"edge_to_record_led_ms"},
    "memory": {"rss_mib_pre_event_0_s", "rss_mib_pre_event_120_s", "buffer_share_mib"},
    "powercut": {"authentic", "cut_short"},
    "offload": {"fleet_aggregate_mb_s", "fleet_request_ms"},
    "release": {"redact_faces_x_realtime"},
}


def load_suite(name: str):
    """The suite's module; KeyError for a name not in SUITES."""
    return importlib.import_module(SUITES[name])
