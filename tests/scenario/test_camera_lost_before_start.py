"""FLT-1 before the activation: the camera's cord is pulled while the device buffers, then
the wearer starts recording. The wearer felt "start" and the people were told they are
being recorded, so the event must exist: it starts on audio, the activation is logged,
video joins at its first keyframe when the camera comes back (in a new segment), and a
camera that never comes back leaves an audio-only event that verifies and exports.
The pre-event handed over never reaches back past the loss (BUF-1, BUF-2).
"""
from __future__ import annotations

import json

import av
import pytest

from camera_loss_rig import FRAME_US, Rig, media_packets, us
from device.config import Policy
from scenario_support import audit_entries, bwc_many, decode_frames

pytestmark = pytest.mark.scenario

AUDIO_FRAME_US = round(1024 * 1e6 / 48_000)
PRE_EVENT_S = 2
KEYFRAME_INTERVAL_US = 1_000_000   # camera_loss_rig.VIDEO


def _policy(**changes) -> Policy:
    return Policy(**{"pre_event_s": PRE_EVENT_S, "segment_s": 30, "flush_interval_s": 1.0,
                     "announce": "suppressed", "announce_suppress_reason": "camera-loss test", **changes})


def _event(rig: Rig) -> tuple[dict, dict]:
    entries = audit_entries(rig.device.storage)
    activation = [e for e in entries if e["type"] == "activation"]
    deactivation = [e for e in entries if e["type"] == "deactivation"]
    assert len(activation) == 1 and len(deactivation) == 1, [e["type"] for e in entries]
    assert activation[0]["event_id"] == deactivation[0]["event_id"]
    return activation[0], deactivation[0]


@pytest.fixture(scope="module")
def returns(tmp_path_factory, custodian):
    """Cord out at 1 s, double press at 4 s, cord back at 7 s, hold to stop at 10 s."""
    rig = Rig(str(tmp_path_factory.mktemp("lost-before-start")), custodian, _policy())
    rig.at(1.0, rig.world.camera.disconnect)
    rig.double_press(4.0)
    rig.at(7.0, rig.world.camera.reconnect)
    rig.hold(10.0, 3.0)
    rig.run_until(15)
    rig.shutdown()
    mp4, sidecar = rig.export()
    return rig, mp4, sidecar


@pytest.fixture(scope="module")
def never(tmp_path_factory, custodian):
    """Cord out at 1 s for good; pre-event audio kept; double press at 20 s, stop at 26 s."""
    rig = Rig(str(tmp_path_factory.mktemp("lost-for-good")), custodian, _policy(pre_event_audio=True))
    rig.at(1.0, rig.world.camera.disconnect)
    rig.double_press(20.0)
    rig.hold(26.0, 3.0)
    rig.run_until(31)
    rig.shutdown()
    mp4, sidecar = rig.export()
    return rig, mp4, sidecar


def test_an_event_started_with_the_camera_lost_is_logged_and_verifies(returns):
    rig, _, sidecar = returns
    activation, _ = _event(rig)
    assert rig.t0 + us(4.0) <= activation["monotonic_us"] < rig.t0 + us(4.5), activation   # the second press
    report = rig.verify()
    assert report.outcome == "authentic" and report.problems == [], report.to_json()
    assert sidecar["activation"]["activation_monotonic_us"] == activation["monotonic_us"]
    # No pre-event audio kept and no usable video buffered: the event starts at the
    # first audio frame after the press, so (almost) nothing is delivered before it.
    assert -2 * AUDIO_FRAME_US <= sidecar["activation"]["delivered_pre_event_us"] <= 2 * AUDIO_FRAME_US


def test_audio_starts_at_the_activation(returns):
    rig, mp4, sidecar = returns
    activation, _ = _event(rig)
    origin = rig.verify().segments[0].header["event_origin_monotonic_us"]
    audio = media_packets(mp4, "audio")
    assert abs(origin + audio[0][0] - activation["monotonic_us"]) <= 2 * AUDIO_FRAME_US, (origin, audio[0])
    steps = {b[0] - a[0] for a, b in zip(audio, audio[1:])}
    assert steps <= {AUDIO_FRAME_US, AUDIO_FRAME_US + 1}, sorted(steps)[:10]
    # The audio runs to the stop.
    assert origin + audio[-1][0] + audio[-1][1] >= rig.t0 + us(10.0) - 2 * AUDIO_FRAME_US


def test_video_joins_at_the_first_keyframe_after_reconnection_in_a_new_segment(returns):
    rig, mp4, _ = returns
    report = rig.verify()
    segments = report.segments
    origin = segments[0].header["event_origin_monotonic_us"]
    starts = [origin + s.header["media_start_us"] for s in segments]
    ends = [origin + s.report.last.media_end_us for s in segments]
    assert len(segments) == 2 and ends[:-1] == starts[1:], (starts, ends)
    assert all(s.header["video"]["codec"] == "h264" for s in segments)   # the track exists from the start
    frames = decode_frames(mp4)
    first = frames[0]
    # The first picture is the keyframe captured on reconnection, shown at its capture
    # time (burned in by the simulated sensor), exactly where the second segment starts.
    assert first.key_frame and origin + first.pts_us == starts[1]
    assert rig.t0 + us(7.0) <= starts[1] < rig.t0 + us(7.0) + FRAME_US
    assert abs(first.time_ms * 1000 - (origin + first.pts_us)) < 1000, (first, origin)
    off = [f for f in frames if f.time_ms is None or abs(f.time_ms * 1000 - (f.pts_us + origin)) >= 1000]
    assert not off, off[:5]
    video = media_packets(mp4, "video")
    assert origin + video[-1][0] + video[-1][1] >= rig.t0 + us(10.0) - FRAME_US


def test_a_camera_that_never_returns_leaves_an_audio_only_event(never):
    rig, mp4, sidecar = never
    activation, deactivation = _event(rig)
    report = rig.verify()
    assert report.outcome == "authentic" and report.problems == [], report.to_json()
    assert len(report.segments) == 1 and report.segments[0].header["video"] is not None
    # The export holds an audio track only (docs/format.md §3.4).
    with av.open(mp4) as container:
        assert [s.type for s in container.streams] == ["audio"]
    audio = media_packets(mp4, "audio")
    origin = report.segments[0].header["event_origin_monotonic_us"]
    assert origin + audio[-1][0] + audio[-1][1] >= deactivation["monotonic_us"] - 2 * AUDIO_FRAME_US
    assert sidecar["activation"]["activation_monotonic_us"] == activation["monotonic_us"]


def test_the_pre_event_after_a_long_loss_reaches_back_no_further_than_policy(never):
    # The last GOP before the loss is 19 s old: handing it over (with 19 s of audio)
    # would deliver ten times the configured pre-event. BUF-2: at least the pre-event,
    # less than the pre-event plus one keyframe interval; here audio only, from the
    # frame that holds activation - pre_event_s.
    rig, mp4, sidecar = never
    activation, _ = _event(rig)
    delivered_us = sidecar["activation"]["delivered_pre_event_us"]
    assert us(PRE_EVENT_S) <= delivered_us < us(PRE_EVENT_S) + AUDIO_FRAME_US, delivered_us
    origin = rig.verify().segments[0].header["event_origin_monotonic_us"]
    assert origin == activation["monotonic_us"] - delivered_us
    first_us = origin + media_packets(mp4, "audio")[0][0]
    assert activation["monotonic_us"] - first_us < us(PRE_EVENT_S) + KEYFRAME_INTERVAL_US


def test_bwc_verify_says_authentic_for_both_events(returns, never):
    # What a custodian runs: exit 0, nothing wrong, with or without a picture.
    results = bwc_many([["verify", rig.device.storage, "--device-pub", rig.device.pub_path, "--json"]
                        for rig in (returns[0], never[0])])
    for result in results:
        assert result.returncode == 0, (result.stdout, result.stderr)
        report = json.loads(result.stdout)
        assert report["outcome"] == "authentic" and report["problems"] == [], report
