"""The activation suite on --hal sim, in its reduced form: what it reports, not how fast.

Speed is the bench's to judge (its thresholds); here: the figures defaults.toml names,
one sample per press, and the order of things a wearer would observe."""
from __future__ import annotations

import random
import tomllib
from pathlib import Path

import pytest

from device.config import Policy
from tools.bench import suite_activation
from tools.bench.model import BenchContext
from tools.bench.rig_gpio import mock_loopback_prototype

DEFAULTS = Path(suite_activation.__file__).with_name("defaults.toml")


@pytest.fixture(scope="module", params=["sim", "pi-mock"])
def result(request, tmp_path_factory):
    """--hal sim through rig_sim; and the --hal pi path through rig_gpio, the firmware on the
    Pi board's GPIO over MockFactory wired to the rig (a virtual clock, replayed media)."""
    work_dir = tmp_path_factory.mktemp("activation")
    rig = None
    if request.param == "pi-mock":
        policy = Policy(pre_event_s=5.0, segment_s=60)
        rig = mock_loopback_prototype(str(work_dir / "proto"), policy, suite_activation.HD_10M)
    ctx = BenchContext(hal="sim" if rig is None else "pi", work_dir=str(work_dir), reduced=True, seed=7,
                       rng=random.Random(7), rig=rig)
    return suite_activation.run(ctx)


def figures(result) -> dict:
    return {figure.name: figure for figure in result.figures}


def test_every_figure_the_thresholds_name_is_measured_once_per_press(result):
    judged = set(tomllib.loads(DEFAULTS.read_text())["activation"])
    got = figures(result)
    assert judged <= set(got)
    assert "edge_to_record_led_ms" in got   # informational, not judged
    for name in got:
        assert got[name].skipped is None, got[name].skipped
        assert len(got[name].samples) == 6, name


def test_the_wearer_feels_the_start_before_the_record_led_says_media_is_on_the_card(result):
    got = figures(result)
    # The start pattern's vibration comes at the gesture (after the debounce); the LED only
    # once media is durable (docs/indicators.md, IND-1).
    assert "vibration" in got["edge_to_indicator_ms"].description
    for feel, led, durable in zip(got["edge_to_indicator_ms"].samples, got["edge_to_record_led_ms"].samples,
                                  got["edge_to_first_media_durable_ms"].samples):
        assert 0 < feel <= led
        assert durable <= led
    assert not [note for note in result.notes if "saw nothing" in note]


def test_every_press_delivered_at_least_the_configured_pre_event(result):
    got = figures(result)
    assert min(got["delivered_pre_event_excess_s"].samples) >= 0
    # Less than one GOP (1 s at 1080p30) more than asked: the buffer starts at a keyframe.
    assert max(got["delivered_pre_event_excess_s_max"].samples) < 1.0


def test_the_pre_event_figure_carries_the_disk_rate_it_is_judged_against(result):
    context = figures(result)["pre_event_durable_excess_ms"].context
    assert context["disk_write_mb_s"] > 0
    # 5 s of 10 Mbit/s video (plus up to a GOP): about 6 MB.
    assert 5.5 < context["pre_event_mb"] < 8.0
    assert [s.kind for s in result.series] == ["histogram"] * 4


@pytest.mark.slow
def test_on_the_real_clock_the_pi_path_measures_every_press(tmp_path):
    """--hal pi's timing path: the firmware's timers on a thread of the suite's, fast-forward
    by waiting (about a minute of real time, so slow-marked)."""
    from hal.realclock import RealClock

    policy = Policy(pre_event_s=5.0, segment_s=60)
    proto = mock_loopback_prototype(str(tmp_path / "proto"), policy, suite_activation.HD_10M,
                                    clock_factory=RealClock)
    ctx = BenchContext(hal="pi", work_dir=str(tmp_path), reduced=True, rng=random.Random(3), rig=proto)
    result = suite_activation.run(ctx)
    got = figures(result)
    assert all(len(got[name].samples) == 6 for name in got)
    assert not [note for note in result.notes if "saw nothing" in note or "no activation record" in note]
    assert min(got["delivered_pre_event_excess_s"].samples) >= 0
