import pytest

from loopback import Loopback, percentile, run_trials
from micropython_support import require_micropython

INTERPRETERS = ["micropython", "cpython"]


def need(interpreter):
    if interpreter == "micropython":
        require_micropython()   # fails, never skips, when it is missing


def report(interpreter, trials, press_us, led_us):
    print("\npod=%s over UDP 127.0.0.1, %d trials: press decoded -> camera receives gesture "
          "p50 %.2f ms p99 %.2f ms; camera beacon sent -> pod LED change p50 %.2f ms p99 %.2f ms (n=%d)"
          % (interpreter, trials, percentile(press_us, 50) / 1000.0, percentile(press_us, 99) / 1000.0,
             percentile(led_us, 50) / 1000.0, percentile(led_us, 99) / 1000.0, len(led_us)))


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_loopback_link_gesture_and_recording_5_trials(interpreter):
    need(interpreter)
    press_us, led_us, lb = run_trials(interpreter, 5)
    report(interpreter, 5, press_us, led_us)
    assert len(press_us) == 5 and all(0 < x < 500000 for x in press_us)
    assert all(0 < x < 500000 for x in led_us)
    shown = [w[1] for w in lb.pod_events if w[0] == "shown"]
    assert shown[:2] == ["link_lost", "buffering"] and shown.count("recording") == 5


@pytest.mark.slow
@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_loopback_latency_50_trials(interpreter):
    need(interpreter)
    press_us, led_us, lb = run_trials(interpreter, 50)
    report(interpreter, 50, press_us, led_us)
    assert len(press_us) == 50


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_loopback_recording_then_beacons_stop_link_lost(interpreter):
    need(interpreter)
    lb = Loopback(interpreter)
    try:
        lb.pump(["ready"])
        lb.pump(["shown", "buffering"])
        lb.command(b"double")
        lb.pump(["shown", "recording"])
        lb.beacons_on = False
        last_beacon_us = lb.beacons[-1][0]
        words = lb.pump(["shown", "link_lost"], 3.0)
        # The pod's information time is before the last beacon arrived, so link_lost comes
        # at most 1.5 s after it (plus the loop's 1 ms sleep and scheduling).
        assert int(words[3]) - last_beacon_us <= 1500000 + 50000
        assert [w[1] for w in lb.pod_events if w[0] == "shown"][-2:] == ["recording", "link_lost"]
    finally:
        lb.close()


@pytest.mark.parametrize("interpreter", [
    "micropython", "cpython"])   # one junk datagram once stopped a MicroPython pod
def test_pod_survives_a_junk_datagram(interpreter):
    import socket
    import time
    need(interpreter)
    lb = Loopback(interpreter)
    try:
        lb.pump(["ready"])
        lb.pump(["shown", "buffering"])
        junk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        junk.sendto(b"\x01C" + bytes(40), ("127.0.0.1", lb.radio_port))
        junk.close()
        lb.pump(None, 0.3)
        assert lb.proc.poll() is None, lb.proc.stderr.read()[-500:]
    finally:
        lb.close()
