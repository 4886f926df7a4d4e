"""Thresholds (tools/bench/thresholds.py): the defaults parse, an override replaces a
default key by key, anything malformed is one line naming the file and key, and judging
says pass / fail / skipped / info as a tester reading the report would expect."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tools.bench.model import Figure
from tools.bench.registry import INFO_FIGURES, SUITES
from tools.bench.thresholds import STATS, Threshold, ThresholdError, judge, load_defaults, load_thresholds, \
    parse_thresholds

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _known() -> dict[str, set[str]]:
    known: dict[str, set[str]] = {}
    for suite, figure in load_defaults():
        known.setdefault(suite, set()).add(figure)
    for suite, figures in INFO_FIGURES.items():
        known.setdefault(suite, set()).update(figures)
    return known


def test_defaults_hold_the_design_targets():
    d = load_defaults()
    assert d[("memory", "rss_over_buffer_mib")] == Threshold("max", None, 150.0)
    assert d[("activation", "edge_to_indicator_ms")] == Threshold("p99", None, 50.0)
    assert d[("throughput", "writer_mb_s")] == Threshold("ratio", 1.0, None)
    assert d[("powercut", "tampered")] == Threshold("max", None, 0.0)
    assert {suite for suite, _ in d} <= set(SUITES)


def test_an_override_replaces_only_its_keys(tmp_path):
    path = tmp_path / "pi-zero.toml"
    path.write_text('[memory.rss_over_buffer_mib]\nstat = "p99"\nmax = 200\n'
                    '[memory.rss_mib_pre_event_0_s]\nstat = "max"\nmax = 120\n')
    merged = load_thresholds(str(path), INFO_FIGURES)
    assert merged[("memory", "rss_over_buffer_mib")] == Threshold("p99", None, 200.0)
    assert merged[("memory", "rss_mib_pre_event_0_s")] == Threshold("max", None, 120.0)
    assert merged[("activation", "edge_to_indicator_ms")] == load_defaults()[("activation", "edge_to_indicator_ms")]


@pytest.mark.parametrize("text, says", [
    ('[nosuch.x]\nstat = "max"\nmax = 1\n', "unknown suite 'nosuch'"),
    ('[memory.nosuch]\nstat = "max"\nmax = 1\n', "unknown figure 'nosuch'"),
    ('[memory.rss_over_buffer_mib]\nstat = "mean"\nmax = 1\n', "stat must be one of"),
    ('[memory.rss_over_buffer_mib]\nstat = "max"\nmax = "150"\n', "must be a finite number"),
    ('[memory.rss_over_buffer_mib]\nstat = "max"\nmax = nan\n', "must be a finite number"),
    ('[memory.rss_over_buffer_mib]\nstat = "max"\nmax = true\n', "must be a finite number"),
    ('[memory.rss_over_buffer_mib]\nstat = "max"\n', "needs min or max"),
    ('[memory.rss_over_buffer_mib]\nstat = "max"\nmin = 2\nmax = 1\n', "min 2 is above max 1"),
    ('[memory.rss_over_buffer_mib]\nstat = "max"\nmax = 1\nmaximum = 2\n', "unknown key 'maximum'"),
    ('memory = 3\n', "must be a table"),
    ('[memory]\nrss_over_buffer_mib = 150\n', "must be a table with stat"),
    ('[memory.rss_over_buffer_mib\n', "not TOML"),
])
def test_a_bad_file_is_one_line_naming_what(tmp_path, text, says):
    path = tmp_path / "t.toml"
    path.write_text(text)
    with pytest.raises(ThresholdError) as err:
        load_thresholds(str(path), INFO_FIGURES)
    assert says in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(ThresholdError, match="No such file"):
        load_thresholds(str(tmp_path / "absent.toml"))
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ThresholdError, match="not UTF-8"):
        load_thresholds(str(tmp_path / "bin.toml"))


_value = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5),
                   st.booleans(), st.none(), st.lists(st.integers(-9, 9), max_size=2))


def _toml(value) -> str:
    """A TOML literal for `value` ("" for None: the key is left out)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(value), repr(value))
    if isinstance(value, str):
        return '"' + value.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


@SETTINGS
@given(suite=st.sampled_from(sorted(_known()) + ["x", "memory "]), figure=st.sampled_from(
    sorted(set().union(*_known().values())) + ["", "rss"]), rule=st.dictionaries(
    st.sampled_from(["stat", "min", "max", "other"]), st.one_of(_value, st.sampled_from(STATS)), max_size=4))
def test_property_whatever_the_table_one_line_or_a_usable_threshold(suite, figure, rule):
    body = "\n".join(f"{k} = {_toml(v)}" for k, v in rule.items() if _toml(v))
    text = f'[{_toml(suite)}.{_toml(figure)}]\n{body}\n'
    try:
        parsed = parse_thresholds(text, "f.toml", _known())
    except ThresholdError as exc:
        assert "\n" not in str(exc)
        return
    ((key, t),) = parsed.items()
    assert key[0] in _known() and key[1] in _known()[key[0]]
    assert t.stat in STATS and (t.min is not None or t.max is not None)
    assert all(b is None or (isinstance(b, float) and b == b and abs(b) != float("inf")) for b in (t.min, t.max))
    assert t.min is None or t.max is None or t.min <= t.max


@SETTINGS
@given(st.text(max_size=300))
def test_property_random_text_never_a_traceback(text):
    try:
        parse_thresholds(text, "f.toml", _known())
    except ThresholdError as exc:
        assert "\n" not in str(exc)


@SETTINGS
@given(st.binary(max_size=200))
def test_property_random_bytes_never_a_traceback(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("t") / "t.toml"
    path.write_bytes(data)
    try:
        load_thresholds(str(path), INFO_FIGURES)
    except ThresholdError as exc:
        assert "\n" not in str(exc)


def test_judging():
    latency = Figure("edge_ms", "ms", [10.0, 20.0, 30.0, 200.0])
    assert judge(latency, Threshold("median", None, 50.0))[:2] == ("pass", 25.0)
    assert judge(latency, Threshold("p99", None, 50.0))[:2] == ("fail", 200.0)
    assert judge(latency, Threshold("min", 10.0, None))[0] == "pass"
    assert judge(latency, Threshold("max", None, 199.0))[0] == "fail"
    assert judge(latency, None)[0] == "info"
    # ratio: >= 1 is as good as the peer, whichever way the figure is better.
    rate = Figure("writer_mb_s", "MB/s", [90.0, 110.0], better="higher", peer="age", peer_samples=[200.0])
    assert judge(rate, Threshold("ratio", 1.0, None))[:2] == ("fail", 0.5)
    time_s = Figure("export_s", "s", [1.0], peer="age -d", peer_samples=[2.0])
    assert judge(time_s, Threshold("ratio", 1.0, None))[:2] == ("pass", 2.0)
    # No peer: the ratio cannot be judged, and the report says so rather than passing.
    absent = Figure("verify_mb_s", "MB/s", [], better="higher", skipped="openssl not found: apt-get install openssl")
    assert judge(absent, Threshold("ratio", 0.9, None)) == ("skipped", None, absent.skipped)
    assert judge(Figure("x", "ms", [1.0]), Threshold("ratio", 1.0, None))[0] == "skipped"


@pytest.mark.parametrize("samples, peer", [
    ([float("nan"), 5.0, 2.0], None),      # sorted around, a NaN gave median 2.0: a pass
    ([1.0, float("nan"), 2.0], None),
    ([5.0, float("inf")], None),
    ([5.0, 6.0], [float("nan"), 4.0]),
])
def test_a_broken_sample_fails_the_figure_never_passes_it(samples, peer):
    figure = Figure("edge_ms", "ms", samples, peer="p" if peer else None, peer_samples=peer)
    for threshold in (Threshold("median", None, 3.0), Threshold("max", None, 100.0), Threshold("ratio", 0.1, None)):
        verdict, value, note = judge(figure, threshold)
        assert (verdict, value) == ("fail", None) and "not a finite number" in note


def test_a_zero_median_is_named_not_called_a_missing_peer():
    figure = Figure("rate", "MB/s", [5.0], better="higher", peer="p", peer_samples=[0.0])
    assert judge(figure, Threshold("ratio", 1.0, None)) == ("skipped", None, "a median of zero: ratio cannot be judged")


def test_the_documented_pi_zero_override_is_valid(tmp_path):
    doc = open("docs/bench.md", encoding="utf-8").read()
    block = doc.split("# pi-zero-2w.toml", 1)[1].split("\n", 1)[1].split("```", 1)[0]
    (tmp_path / "pi-zero-2w.toml").write_text(block)
    merged = load_thresholds(str(tmp_path / "pi-zero-2w.toml"), INFO_FIGURES)
    assert merged[("memory", "rss_over_buffer_mib")] == Threshold("max", None, 120.0)
