"""ACT-1, ACT-2, ACT-4, SEG-6: trigger-started events record their source, a start_stop
trigger's release stops the event, and a marker press lands in the sidecar, timed
against the media."""
from __future__ import annotations

import pytest

from scenario_support import MAIN, START_US, make_device, record, scenario_toml, us

pytestmark = pytest.mark.scenario

ON_T_S, OFF_T_S, DURATION_S = 4.0, 8.0, 11.0
TRIGGER_DEBOUNCE_US = 100_000  # upper bound on the trigger line's debounce (50 ms default)


@pytest.fixture(scope="module", params=["start_stop", "start"])
def holster_recording(request, tmp_path_factory, custodian):
    root = tmp_path_factory.mktemp(f"holster-{request.param}")
    device = make_device(str(root / "device"), custodian, device_id="holster-cam")
    text = scenario_toml(DURATION_S, [{"t_s": ON_T_S, "do": "trigger.on", "name": "holster"},
                                      {"t_s": OFF_T_S, "do": "trigger.off", "name": "holster"}],
                         keyframe_interval_s=1, pre_event_s=2, segment_s=60,
                         triggers={"holster": request.param})
    return request.param, record(device, custodian, text, str(root / "export"))


def test_trigger_start_records_its_source(holster_recording):
    _, rec = holster_recording
    entries = rec.audit_entries()
    activation = next(e for e in entries if e["type"] == "activation")
    assert activation["source"] == "trigger:holster", activation
    assert rec.activation["source"] == "trigger:holster", rec.activation
    on_us = START_US + us(ON_T_S)
    assert on_us <= activation["monotonic_us"] <= on_us + TRIGGER_DEBOUNCE_US, activation
    assert rec.activation["activation_monotonic_us"] == activation["monotonic_us"]
    assert activation["event_id"] == rec.sidecar["event_id"]


def test_trigger_off_stops_only_with_start_stop_policy(holster_recording):
    mode, rec = holster_recording
    stop = next(e for e in rec.audit_entries() if e["type"] == "deactivation")
    off_us, end_us = START_US + us(OFF_T_S), START_US + us(DURATION_S)
    last_ms = rec.frames[-1].time_ms
    if mode == "start_stop":
        assert stop["source"] == "trigger:holster", stop
        assert rec.sidecar["deactivation"]["source"] == "trigger:holster"
        assert off_us <= stop["monotonic_us"] <= off_us + TRIGGER_DEBOUNCE_US, stop
        # The media ends at the release, not at the end of the scenario.
        assert off_us - 100_000 <= last_ms * 1000 <= off_us + TRIGGER_DEBOUNCE_US + 100_000, last_ms
    else:
        # "start" only: releasing the holster does not stop the recording.
        assert stop["source"] == "shutdown", stop
        assert last_ms * 1000 >= end_us - 100_000, last_ms


def test_marker_press_lands_in_sidecar(main_recording):
    rec = main_recording
    markers = rec.sidecar["markers"]
    assert len(markers) == 1, markers
    marker = markers[0]
    assert marker["source"] == "button"
    press_us = START_US + us(MAIN["marker_t_s"])
    origin_us = rec.sidecar["origin_monotonic_us"]
    marker_us = origin_us + marker["media_us"]
    # Stamped at the press (or, at the latest, when the short press is recognised,
    # after the double-press window).
    assert press_us <= marker_us <= press_us + 1_000_000, (marker, press_us)
    audit = [e for e in rec.audit_entries() if e["type"] == "marker"]
    assert len(audit) == 1 and audit[0]["event_id"] == rec.sidecar["event_id"], audit
    assert audit[0]["monotonic_us"] == marker_us
    # Timed against the media: the frame shown at the marker's media time was captured then.
    frame = min(rec.frames, key=lambda f: abs(f.pts_us - marker["media_us"]))
    assert abs(frame.time_ms * 1000 - marker_us) <= 34_000, (frame, marker_us)
