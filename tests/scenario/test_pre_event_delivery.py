"""BUF-2: delivered pre-event is >= configured and < configured + one keyframe interval,
read back from the burned-in frame times of the exported MP4."""
from __future__ import annotations

import json

import pytest

from device.evidence.keys import read_custodian_secret, read_device_public
from scenario_support import (
    DOUBLE_PRESS_TO_ACTIVATION_US, START_US, decode_frames, make_device, record, scenario_toml, us,
)
from tools.export import export_storage

pytestmark = pytest.mark.scenario

# (keyframe interval s, pre-event s, activation at monotonic s).
# The camera starts at monotonic 1.0 s, so keyframes sit at 1 + n*K s.
CASES = [
    pytest.param(1, 3, 6.27, id="K1-P3"),
    pytest.param(1, 0, 6.27, id="K1-P0"),
    pytest.param(4, 4, 11.79, id="K4-P4"),
    # P not a multiple of K: A - P = 8.27 s, so the pre-event starts at the keyframe
    # at 5 s (8.27 s delivered). A buffer that counts duration from its oldest frame,
    # or starts at the first keyframe after A - P (9 s), hands over 4.27 s < 5 s.
    pytest.param(4, 5, 13.27, id="K4-P5"),
    # A - P falls exactly on a keyframe (9.0 s): the pre-event must start *there*.
    pytest.param(4, 5, 14.0, id="K4-P5-on-keyframe"),
    # A - P falls 1 ms before a keyframe: the pre-event is just under P + K.
    pytest.param(4, 5, 13.999, id="K4-P5-just-before-keyframe"),
    pytest.param(4, 2, 11.29, id="K4-P2-shorter-than-gop"),
]


@pytest.mark.parametrize("keyframe_s, pre_event_s, activation_s", CASES)
def test_delivered_pre_event_read_back_from_export(tmp_path, custodian, keyframe_s, pre_event_s, activation_s):
    activation_us = us(activation_s)
    press_t_us = activation_us - START_US - DOUBLE_PRESS_TO_ACTIVATION_US
    text = scenario_toml(press_t_us / 1e6 + 3.0,
                         [{"t_s": press_t_us / 1e6, "do": "button.double_press"}],
                         keyframe_interval_s=keyframe_s, pre_event_s=pre_event_s, segment_s=60)
    rec = record(make_device(str(tmp_path / "device"), custodian), custodian, text, str(tmp_path / "export"))

    act = rec.activation
    assert act["source"] == "button"
    # The activation is stamped at the wearer's second press (the case above depends
    # on it), not when the gesture is recognised or on the writer thread.
    assert act["activation_monotonic_us"] == activation_us, (
        f"activation stamped at {act['activation_monotonic_us']} us, expected the second press at {activation_us} us")
    assert act["pre_event_s"] == pre_event_s

    first = decode_frames(rec.mp4_path, limit=1)[0]
    assert first.number is not None, "first exported frame has no readable burned-in code"
    assert first.key_frame, "the exported event does not start on a keyframe"
    assert first.pts_us == 0
    # Keyframes sit on whole milliseconds (integer fps and interval), so this is exact.
    first_frame_us = first.time_ms * 1000
    assert (first_frame_us - START_US) % us(keyframe_s) == 0, f"first frame at {first_frame_us} us is not on the GOP grid"
    delivered_us = act["activation_monotonic_us"] - first_frame_us

    assert delivered_us >= us(pre_event_s), (
        f"delivered pre-event {delivered_us / 1e6:.3f} s < configured {pre_event_s} s (K={keyframe_s} s)")
    assert delivered_us < us(pre_event_s + keyframe_s), (
        f"delivered pre-event {delivered_us / 1e6:.3f} s >= configured {pre_event_s} s + keyframe {keyframe_s} s")
    # The sidecar's own figures agree with what the pictures say.
    assert abs(act["delivered_pre_event_us"] - delivered_us) < 1000, (act, delivered_us)
    assert abs(rec.sidecar["origin_monotonic_us"] - first_frame_us) < 1000


@pytest.fixture(scope="module")
def back_to_back(tmp_path_factory, custodian):
    """Event 1: double press at 4 s, stopped by a 3 s hold from 6 s (recognised at 9 s);
    event 2: double press at 10 s, 1 s after the stop, with 3 s of pre-event configured."""
    root = tmp_path_factory.mktemp("back-to-back")
    device = make_device(str(root / "device"), custodian)
    text = scenario_toml(13.0, [{"t_s": 4.0, "do": "button.double_press"},
                                {"t_s": 6.0, "do": "button.hold", "hold_s": 3.0},
                                {"t_s": 10.0, "do": "button.double_press"}],
                         keyframe_interval_s=1, pre_event_s=3, segment_s=60)
    record(device, custodian, text, export_dir=None)
    _, exported = export_storage(device.storage, read_custodian_secret(custodian.secret_path),
                                 read_device_public(device.pub_path), str(root / "export"), True)
    events = []
    for ev in exported:
        with open(ev.sidecar_path, encoding="utf-8") as f:
            events.append((json.load(f), decode_frames(ev.mp4_path)))
    events.sort(key=lambda e: e[0]["activation"]["activation_monotonic_us"])
    assert len(events) == 2
    return events


def test_back_to_back_events_leave_no_frame_unrecorded(back_to_back):
    # The second event's pre-event reaches back into the first event (BUF-2 holds for
    # both), so together they cover every frame: no gap between them, only overlap.
    (_, first), (_, second) = back_to_back
    assert second[0].number <= first[-1].number + 1, (first[-1], second[0])
    assert second[-1].number > first[-1].number


def test_reactivation_soon_after_stop_still_delivers_full_pre_event(back_to_back):
    sidecar, frames = back_to_back[1]
    delivered_us = sidecar["activation"]["activation_monotonic_us"] - frames[0].time_ms * 1000
    assert delivered_us >= us(3), f"second event delivered {delivered_us / 1e6:.2f} s of pre-event, configured 3 s"
