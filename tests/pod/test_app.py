import pytest

from device.link import roles
from pod.clock import PERIOD_2_30_US
from pod.show import LONG_PULSE_US, SHORT_PULSE_US
from pod.sim import LinkSim

S = 1000000
MS = 1000


def link_up(start_us=0, **kw):
    sim = LinkSim(start_us=start_us, **kw)
    sim.run_until(start_us + 2 * S)
    assert sim.app.shown == roles.BUFFERING, sim.app.shown_changes
    return sim


def double_press(sim, t_us):
    sim.board.script_press(t_us, 80 * MS)
    sim.board.script_press(t_us + 200 * MS, 80 * MS)


def test_boot_shows_link_lost_without_a_pulse():
    sim = LinkSim()
    sim.beacons_on = False
    sim.run_until(100 * MS)
    assert sim.app.shown == roles.LINK_LOST
    assert sim.board.motor_history == []
    assert sim.board.led == "amber"


def test_pairing_link_up_gesture_recording():
    sim = link_up()
    double_press(sim, 2 * S)
    sim.run_until(3 * S)
    name, press_us, received_us = sim.camera_gestures[0]
    # Dated at the second press edge (the camera subtracts press_age_ms from its receive time,
    # so the transit delay and ms rounding are in it).
    assert name == "double_press" and 2200 * MS <= press_us <= 2200 * MS + sim.delay_us
    assert sim.app.shown == roles.RECORDING and sim.board.led == "red"
    t_rec = [t for p, t in sim.app.shown_changes if p == roles.RECORDING][0]
    # Recording is shown only after a beacon saying record_led was sent and carried.
    first_led_beacon = [t for t, st in sim.beacons_sent if st["record_led"]][0]
    assert t_rec >= first_led_beacon + sim.delay_us
    assert (t_rec, True) in sim.board.motor_history and (t_rec + SHORT_PULSE_US, False) in sim.board.motor_history


def test_not_recording_until_the_camera_says_so():
    sim = link_up()
    sim.beacons_on = False          # the gesture goes out, but no beacon comes back
    double_press(sim, 2 * S)
    sim.run_until(3 * S)
    assert sim.camera_gestures and sim.status["record_led"]
    assert sim.app.shown != roles.RECORDING


@pytest.mark.parametrize("start_us", [0, PERIOD_2_30_US - 2 * S - 700 * MS])   # the second runs across the tick's wrap
def test_beacons_stop_while_recording_link_lost_within_freshness(start_us):
    sim = link_up(start_us)
    double_press(sim, start_us + 2 * S)
    sim.run_until(start_us + 3 * S)
    assert sim.app.shown == roles.RECORDING
    sim.beacons_on = False
    sim.run_until(start_us + 8 * S)
    info_us = sim.app.role.link.info_us
    lost = [t for p, t in sim.app.shown_changes if p == roles.LINK_LOST][-1]
    assert info_us < lost <= info_us + 1500 * MS + 1
    # Never red after the bound.
    red_after = [t for t, c in sim.board.led_history if c == "red" and t > info_us + 1500 * MS]
    assert red_after == []
    assert (lost, True) in sim.board.motor_history and (lost + LONG_PULSE_US, False) in sim.board.motor_history


def test_fault_pattern_and_three_pulses():
    sim = link_up()
    sim.set_status(faults=("storage_low",))
    sim.run_until(3 * S)
    assert sim.app.shown == roles.FAULT
    t = [t for p, t in sim.app.shown_changes if p == roles.FAULT][0]
    ons = [u for u, on in sim.board.motor_history if on and u >= t]
    assert len(ons) == 3
    leds = [(u - t, c) for u, c in sim.board.led_history if t <= u < t + 500 * MS]
    assert leds == [(0, "amber"), (125 * MS, None), (250 * MS, "amber"), (375 * MS, None)]


def test_buffering_blinks_green_50ms_every_2s():
    sim = link_up()
    t = [t for p, t in sim.app.shown_changes if p == roles.BUFFERING][0]
    sim.run_until(t + 4100 * MS)
    leds = [(u - t, c) for u, c in sim.board.led_history if u >= t]
    assert leds == [(0, "green"), (50 * MS, None), (2 * S, "green"), (2050 * MS, None), (4 * S, "green"), (4050 * MS, None)]


def test_link_lost_alternates_amber_green_at_1hz():
    sim = LinkSim()
    sim.beacons_on = False
    sim.run_until(2100 * MS)
    assert [c for u, c in sim.board.led_history] == ["amber", "green", "amber", "green", "amber"]
    assert [u for u, c in sim.board.led_history] == [0, 500 * MS, 1000 * MS, 1500 * MS, 2000 * MS]


def test_gesture_retried_until_acknowledged():
    sim = link_up()
    sim.beacons_on = False
    sim.board.script_press(2 * S, 80 * MS)
    sim.run_until(4 * S)
    assert [g for g, t in sim.app.gestures] == ["press"]
    assert len(sim.camera_gestures) == 1        # retransmissions are not acted on twice


def test_hold_stops():
    sim = link_up()
    double_press(sim, 2 * S)
    sim.run_until(3 * S)
    sim.board.script_press(4 * S, 3500 * MS)
    sim.run_until(8 * S)
    assert [g[0] for g in sim.camera_gestures] == ["double_press", "hold"]
    assert sim.app.shown == roles.BUFFERING


def test_next_deadline_is_never_in_the_past_once_idle():
    sim = link_up()
    sim.run_until(10 * S)
    assert sim.app.next_deadline_us() > sim.now_us - 1


def test_garbage_datagrams_are_counted_not_fatal():
    sim = link_up()
    sim.board.inbox.extend([b"", b"x" * 40, bytes(78), b"\x01C" + bytes(40)])
    sim.run_until(2500 * MS)
    assert sum(sim.app.role.rejected.values()) == 4
    assert sim.app.shown == roles.BUFFERING


from hypothesis import given, settings, strategies as st


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=100), max_size=8))
def test_random_datagrams_never_break_the_pod(datagrams):
    sim = link_up()
    sim.board.inbox.extend(datagrams)
    sim.run_until(2200 * MS)
    assert sum(sim.app.role.rejected.values()) == len(datagrams)
    assert sim.app.shown == roles.BUFFERING


def test_counter_reserved_before_the_first_frame():
    sim = LinkSim()
    assert sim.board.store.writes == 1 and sim.board.store.value == 1 + 4096
    assert sim.board.outbox == []       # nothing sent before the reservation was durable


def test_host_pod_with_a_bad_pairing_file_says_one_line():
    import subprocess
    import sys
    from loopback import REPO
    code = "import sys\nsys.path.insert(0, %r)\nfrom pod import host\nsys.exit(host.main('{}', 0, 0))\n" % REPO
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and result.stderr == ""
    assert result.stdout.strip() == "error link.json: missing field pod_id"
