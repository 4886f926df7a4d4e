"""The redaction plan parser (docs/release.md §2): a custodian's file, read strictly."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tools.release.plan import PlanError, check_against_event, parse_plan, plan_from_data

GOOD = """
version = 1
[release]
released_by = "A. Custodian, Records Unit"
reason = "public records request 2026-114"

[faces]
margin_fraction = 0.3
review_file = "faces.reviewed.json"
review_required = true

[[region]]
start_s = 1.0
end_s = 4.5
box = [10, 20, 100, 50]
style = "mask"
label = "house number"

[[audio]]
start_s = 2
end_s = 3
mode = "tone"
tone_hz = 800
"""


def test_a_plan_reads_as_written():
    plan = parse_plan(GOOD, "plan.toml")
    assert plan.released_by == "A. Custodian, Records Unit"
    assert plan.faces.enabled and plan.faces.margin_fraction == 0.3 and plan.faces.review_required
    (region,) = plan.regions
    assert (region.start_s, region.end_s, region.box, region.style, region.label) == (1.0, 4.5, (10, 20, 100, 50),
                                                                                      "mask", "house number")
    (span,) = plan.audio
    assert (span.mode, span.tone_hz) == ("tone", 800.0)
    check_against_event(plan, media_s=10.0, width=640, height=360)


@pytest.mark.parametrize("change, message", [
    (("version = 1", "version = 2"), "version must be 1"),
    (('reason = "public records request 2026-114"', ""), "reason is required"),
    (("style = \"mask\"", "style = \"smudge\""), "style must be one of blur, mask"),
    (("end_s = 4.5", "end_s = 0.5"), "end_s (0.5) must be after start_s (1.0)"),
    (("box = [10, 20, 100, 50]", "box = [10, 20, 100]"), "box must be [x, y, width, height]"),
    (("box = [10, 20, 100, 50]", "box = [10, 20, 0, 50]"), "width and height of at least 1"),
    (("box = [10, 20, 100, 50]", "box = [10, 20, 100.5, 50]"), "four whole pixel numbers"),
    (("tone_hz = 800", "tone_hz = nan"), "tone_hz must be a finite number"),
    (("tone_hz = 800", "tone_hz = 5"), "tone_hz must be 20..20000"),
    (("label = \"house number\"", "lable = \"x\""), "unknown key 'lable'"),
    (("review_required = true", "review_required = 1"), "review_required must be true or false"),
])
def test_a_wrong_plan_is_refused_with_its_place(change, message):
    with pytest.raises(PlanError) as caught:
        parse_plan(GOOD.replace(*change), "plan.toml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("plan.toml")
    assert "\n" not in str(caught.value)


def test_what_the_event_cannot_hold_is_refused():
    plan = parse_plan(GOOD, "plan.toml")
    with pytest.raises(PlanError, match="ends after the event, which is 4.000 s long"):
        check_against_event(plan, media_s=4.0, width=640, height=360)
    with pytest.raises(PlanError, match="reaches outside the 100x60 frame"):
        check_against_event(plan, media_s=10.0, width=100, height=60)
    no_review = parse_plan(GOOD.replace('review_file = "faces.reviewed.json"\n', ""), "plan.toml")
    with pytest.raises(PlanError, match="review_required is set but no review_file"):
        check_against_event(no_review, media_s=10.0, width=640, height=360)


def test_overlapping_cuts_are_refused():
    text = GOOD + '[[cut]]\nstart_s = 1\nend_s = 3\nreason = "a"\n[[cut]]\nstart_s = 2\nend_s = 4\nreason = "b"\n'
    with pytest.raises(PlanError, match="overlap"):
        parse_plan(text, "plan.toml")


_values = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats() | st.text(max_size=8),
                       lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                       max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_any_text_is_a_plan_or_one_clear_refusal(text):
    try:
        parse_plan(text, "p.toml")
    except PlanError as exc:
        assert str(exc).startswith("p.toml") and "\n" not in str(exc)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["region", "audio", "cut"]), st.dictionaries(
    st.sampled_from(["start_s", "end_s", "box", "style", "track", "label", "mode", "tone_hz", "reason", "x"]),
    _values, max_size=6))
def test_any_entry_reads_whole_and_sane_or_is_refused(kind, entry):
    """Whatever a [[region]], [[audio]] or [[cut]] holds: refused in one line, or every
    value that was read is of its type and in range (nothing half-read)."""
    data = {"version": 1, "release": {"released_by": "x", "reason": "y"}, kind: [entry]}
    try:
        plan = plan_from_data(data, "p.toml")
    except PlanError as exc:
        assert str(exc).startswith("p.toml") and "\n" not in str(exc)
        return
    for item in (*plan.regions, *plan.audio, *plan.cuts):
        assert 0 <= item.start_s < item.end_s and all(map(math.isfinite, (item.start_s, item.end_s)))
    for region in plan.regions:
        assert all(isinstance(v, int) for v in region.box) and region.box[2] >= 1 and region.box[3] >= 1
        assert region.style in ("blur", "mask") and isinstance(region.track, bool)
    for span in plan.audio:
        assert span.mode in ("mute", "tone") and 20 <= span.tone_hz <= 20_000
    for cut in plan.cuts:
        assert isinstance(cut.reason, str) and cut.reason.strip()
