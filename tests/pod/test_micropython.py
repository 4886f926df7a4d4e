"""The pod's code under a real MicroPython (ACT-9): the interpreter the Pico runs.

Never skipped: a missing interpreter fails (tests/unit/micropython_support.py)."""
import os
import subprocess
import sys


from loopback import REPO
from micropython_support import require_micropython as micropython

SELFTEST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mp_selftest.py")


def run(part, interpreter=None):
    result = subprocess.run([interpreter or micropython(), SELFTEST, REPO, part],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip().endswith("done"), result.stdout + result.stderr
    out = {}
    for word in result.stdout.split():
        if "=" in word:
            k, v = word.split("=", 1)
            out[k] = v
    return out, result.stdout


def test_clock_wraps_under_micropython():
    out, _ = run("clock")
    assert out["wrap_2_30"] == "15"
    assert out["many_wraps_exact"] == "1" and out["wraps"] == "100" and out["backwards"] == "0"
    assert out["generic_period_exact"] == "1"


def test_app_boots_on_a_fake_board_under_micropython():
    out, stdout = run("boot")
    assert out["boot_shown"] == "link_lost" and out["leds"] == "amber,green,amber,green,amber"
    assert out["motor"] == "0" and out["sent"] == "5"       # a heartbeat every 500 ms
    assert "pairing_error=link.json: missing field link_id" in stdout


def test_link_scenario_same_on_cpython():
    out, _ = run("link", sys.executable)
    assert out["linked"] == "buffering"
    assert out["camera_got"] == "double_press" and out["shown"] == "recording" and out["led"] == "red"
    assert out["after_stop"] == "link_lost" and 0 < int(out["lost_after_info_us"]) <= 1500001


# LinkReject once called Exception.__init__, which MicroPython's Exception lacks: every
# refused frame crashed the pod. These two keep it fixed.
def test_link_reject_can_be_raised_under_micropython():
    code = ("import sys\nsys.path.insert(0, %r)\nfrom device.link import frame as fr\n"
            "try:\n    raise fr.LinkReject('stale')\nexcept fr.LinkReject as e:\n    print(e.reason)\n" % REPO)
    result = subprocess.run([micropython(), "-c", code], capture_output=True, text=True, timeout=30)
    assert result.stdout.strip() == "stale", result.stderr


def test_link_scenario_under_micropython():
    out, _ = run("link")
    assert out["linked"] == "buffering"
    assert out["camera_got"] == "double_press" and out["shown"] == "recording" and out["led"] == "red"
    assert out["after_stop"] == "link_lost" and 0 < int(out["lost_after_info_us"]) <= 1500001
