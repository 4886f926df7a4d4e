"""Property tests of what the interactive simulator parses from the network: a step body, an
input edge, any request body. Nothing raises past the one-line refusal, nothing malformed is
applied, and every step it accepts is saved as a scenario step that parses back the same."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.live_log import ActionLog, StepError, parse_live_step
from simulator.scenario import ACTIONS, STEP_KEYS, Scenario, parse_scenario
from sim_helpers import Sim

json_scalars = st.none() | st.booleans() | st.integers(-2**70, 2**70) | \
    st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4) |
                           st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
plausible_values = {
    "hold_s": st.floats(-1, 700) | st.integers(-5, 700), "name": st.sampled_from(["holster", "record", "X", ""]),
    "mode": st.sampled_from(["tear", "drop", "melt"]), "errno": st.sampled_from(["EIO", "ENOSPC", "EPERM"]),
    "op": st.sampled_from(["write", "fsync", "any", "read"]), "after_bytes": st.integers(-1, 2**41),
    "count": st.integers(-1, 10**7), "free_bytes": st.integers(-1, 2**51),
    "percent": st.floats(-10, 110), "rate_pct_per_min": st.floats(-1, 200),
    "delta_s": st.floats(-4e8, 4e8), "utc": st.sampled_from(["2026-03-01T12:00:00Z", "2026-03-01T07:00:00-05:00",
                                                            "yesterday", "2026-03-01T12:00:00"]),
    "target": st.sampled_from(["pod-1", "Pod", ""]),
}


@st.composite
def step_bodies(draw) -> dict:
    """Mostly near-valid steps: a real action, some of its keys and a stray one now and then."""
    action = draw(st.sampled_from(ACTIONS))
    keys = draw(st.lists(st.sampled_from(STEP_KEYS[action] or ("hold_s",)), unique=True, max_size=4))
    body = {"do": action, **{key: draw(plausible_values.get(key, json_values)) for key in keys}}
    if draw(st.booleans()) and draw(st.booleans()):
        body[draw(st.text(max_size=6))] = draw(json_values)
    return body


@settings(max_examples=400, deadline=None)
@given(st.one_of(step_bodies(), json_values))
def test_a_step_body_is_a_step_or_one_refusal_line(body):
    try:
        step = parse_live_step(body, 12.5, ("pod-1",))
    except StepError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert isinstance(body, dict) and step.action == body["do"] and step.t_s == 12.5


@settings(max_examples=300, deadline=None)
@given(st.lists(step_bodies(), min_size=1, max_size=6), st.floats(0, 3600))
def test_every_accepted_step_is_saved_as_a_scenario_step_that_reads_back_the_same(bodies, t_s):
    log, kept = ActionLog(Scenario(duration_s=86400, pods=("pod-1",)), 0), []
    for body in bodies:
        try:
            step = parse_live_step(body, round(t_s, 6), ("pod-1",))
            log.add(step)
        except StepError:
            continue
        kept.append(step)
    text = log.to_toml(round(t_s * 1e6) + 1_000_000)
    scenario = parse_scenario(text, "saved")
    assert list(scenario.steps) == kept


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    s = Sim(str(tmp_path_factory.mktemp("props")), triggers=("holster",), pods=("pod-1",))
    yield s
    s.close()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["/api/step", "/api/input"]),
       body=st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode()),
                      step_bodies().map(lambda v: json.dumps(v).encode())),
       content_type=st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", ""]))
def test_any_request_body_gets_an_answer_not_a_crash(sim, path, body, content_type):
    response = sim.client.post(path, content=body, headers={"Content-Type": content_type} if content_type else {})
    assert response.status_code in (200, 400, 404, 409, 413, 415)
    answer = response.json()
    if response.status_code == 200:
        assert "t_s" in answer
    else:
        assert "\n" not in answer["error"]
