"""Button gestures and trigger lines (ACT-1, ACT-2, ACT-9), driven in virtual time."""
import ast
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from micropython_support import run_micropython

from device.gestures import (
    DOUBLE_PRESS,
    HOLD,
    OFF,
    ON,
    PRESS,
    Debouncer,
    GestureDecoder,
    TriggerDecoder,
)

MS = 1000
S = 1_000_000
DEBOUNCE = 20 * MS
WINDOW = 500 * MS
HOLD_US = 3 * S
MAX_PRESS = 1 * S
MODULE_PATH = Path(__file__).resolve().parents[2] / "device" / "gestures.py"


def decoder(**kwargs):
    params = dict(debounce_us=DEBOUNCE, double_press_window_us=WINDOW, hold_us=HOLD_US, max_press_us=MAX_PRESS)
    params.update(kwargs)
    return GestureDecoder(**params)


class Firmware:
    """Drives a decoder the way the firmware will: one timer at next_deadline_us().

    Records (time emitted, gesture) so tests can check latency exactly.
    """

    def __init__(self, dec):
        self.dec = dec
        self.now_us = 0
        self.log = []

    def run_until(self, t_us):
        while True:
            deadline = self.dec.next_deadline_us()
            if deadline is None or deadline > t_us:
                break
            self.now_us = max(self.now_us, deadline)
            self.log += [(self.now_us, e) for e in self.dec.poll(self.now_us)]
            # The contract that lets the firmware use one timer: polling at the
            # deadline always moves the deadline on.
            after = self.dec.next_deadline_us()
            assert after is None or after > self.now_us, "deadline did not advance"
        self.now_us = max(self.now_us, t_us)

    def edge(self, active, t_us):
        self.run_until(t_us)
        self.log += [(t_us, e) for e in self.dec.edge(active, t_us)]

    def press(self, start_us, length_us, bounce_us=()):
        """A press at start_us lasting length_us; bounce_us are extra toggle offsets after each edge."""
        self.edge_with_bounce(True, start_us, bounce_us)
        self.edge_with_bounce(False, start_us + length_us, bounce_us)

    def edge_with_bounce(self, active, t_us, bounce_us):
        self.edge(active, t_us)
        level = active
        for offset in bounce_us:
            level = not level
            self.edge(level, t_us + offset)
        if level != active:
            raise AssertionError("bounce offsets must come in pairs")

    def gestures(self):
        return [e for _, e in self.log]


# --- single, double, hold -----------------------------------------------------


def test_short_press_is_emitted_when_the_double_press_window_expires():
    fw = Firmware(decoder())
    fw.press(1 * S, 150 * MS)
    release_us = 1 * S + 150 * MS
    fw.run_until(release_us + WINDOW - 1)
    assert fw.log == []
    fw.run_until(10 * S)
    assert fw.log == [(release_us + WINDOW, PRESS)]


def test_double_press_is_emitted_one_debounce_after_the_second_press_edge():
    fw = Firmware(decoder())
    fw.press(1 * S, 100 * MS)
    second_us = 1 * S + 100 * MS + 200 * MS
    fw.edge(True, second_us)
    fw.run_until(second_us + DEBOUNCE - 1)
    assert fw.log == []
    fw.run_until(second_us + DEBOUNCE)
    assert fw.log == [(second_us + DEBOUNCE, DOUBLE_PRESS)]
    fw.edge(False, second_us + 100 * MS)
    fw.run_until(20 * S)
    assert fw.gestures() == [DOUBLE_PRESS]


def test_double_press_latency_counts_from_the_last_bounce_of_the_second_press():
    fw = Firmware(decoder())
    fw.press(0, 100 * MS)
    fw.edge_with_bounce(True, 300 * MS, (2 * MS, 3 * MS, 7 * MS, 8 * MS))
    fw.run_until(308 * MS + DEBOUNCE - 1)
    assert fw.log == []
    fw.run_until(308 * MS + DEBOUNCE)
    assert fw.log == [(308 * MS + DEBOUNCE, DOUBLE_PRESS)]


def test_second_press_just_inside_the_window_is_double_and_at_the_window_is_not():
    fw = Firmware(decoder())
    fw.press(0, 100 * MS)
    fw.press(100 * MS + WINDOW - 1, 100 * MS)
    fw.run_until(10 * S)
    assert fw.gestures() == [DOUBLE_PRESS]

    fw = Firmware(decoder())
    fw.press(0, 100 * MS)
    fw.press(100 * MS + WINDOW, 100 * MS)
    fw.run_until(10 * S)
    assert fw.gestures() == [PRESS, PRESS]
    assert fw.log[0] == (100 * MS + WINDOW, PRESS)


def test_second_press_still_unconfirmed_when_the_window_ends_is_a_double_press():
    # The press edge is inside the window; its debounce ends after the window.
    fw = Firmware(decoder())
    fw.press(0, 100 * MS)
    second_us = 100 * MS + WINDOW - 5 * MS
    fw.edge(True, second_us)
    fw.run_until(second_us + DEBOUNCE)
    assert fw.log == [(second_us + DEBOUNCE, DOUBLE_PRESS)]


def test_hold_is_emitted_at_exactly_press_plus_hold_while_still_held():
    dec = decoder()
    assert dec.edge(True, 5 * S) == []
    assert dec.next_deadline_us() == 5 * S + DEBOUNCE
    assert dec.poll(5 * S + DEBOUNCE) == []
    assert dec.next_deadline_us() == 5 * S + HOLD_US
    assert dec.poll(5 * S + HOLD_US - 1) == []
    assert dec.poll(5 * S + HOLD_US) == [HOLD]
    assert dec.pressed
    assert dec.next_deadline_us() is None


def test_hold_is_never_also_a_press():
    fw = Firmware(decoder())
    fw.press(1 * S, 4 * S)
    fw.run_until(30 * S)
    assert fw.log == [(1 * S + HOLD_US, HOLD)]


def test_release_at_exactly_hold_time_is_a_hold_and_just_before_is_nothing():
    fw = Firmware(decoder())
    fw.press(0, HOLD_US)
    fw.run_until(10 * S)
    assert fw.gestures() == [HOLD]

    fw = Firmware(decoder())
    fw.press(0, HOLD_US - 1)
    fw.run_until(10 * S)
    assert fw.gestures() == []


@pytest.mark.parametrize("length_us", [MAX_PRESS, 2 * S, HOLD_US - 10 * MS])
def test_long_press_shorter_than_hold_produces_nothing(length_us):
    fw = Firmware(decoder())
    fw.press(0, length_us)
    fw.run_until(10 * S)
    assert fw.log == []


def test_long_press_then_short_press_is_one_press_not_a_double():
    fw = Firmware(decoder())
    fw.press(0, 1500 * MS)
    fw.press(1700 * MS, 100 * MS)
    fw.run_until(10 * S)
    assert fw.log == [(1800 * MS + WINDOW, PRESS)]


def test_triple_press_is_double_press_then_press():
    fw = Firmware(decoder())
    for start_ms in (0, 250, 500):
        fw.press(start_ms * MS, 100 * MS)
    fw.run_until(10 * S)
    assert fw.gestures() == [DOUBLE_PRESS, PRESS]


def test_quadruple_press_is_two_double_presses():
    fw = Firmware(decoder())
    for start_ms in (0, 250, 500, 750):
        fw.press(start_ms * MS, 100 * MS)
    fw.run_until(10 * S)
    assert fw.gestures() == [DOUBLE_PRESS, DOUBLE_PRESS]


def test_second_press_of_a_double_held_on_does_not_become_a_hold():
    fw = Firmware(decoder())
    fw.press(0, 100 * MS)
    fw.press(250 * MS, 5 * S)
    fw.run_until(20 * S)
    assert fw.gestures() == [DOUBLE_PRESS]


def test_hold_after_a_double_press_is_a_separate_gesture():
    fw = Firmware(decoder())
    fw.press(0, 100 * MS)
    fw.press(250 * MS, 100 * MS)
    fw.press(2 * S, 4 * S)
    fw.run_until(20 * S)
    assert fw.log == [(250 * MS + DEBOUNCE, DOUBLE_PRESS), (2 * S + HOLD_US, HOLD)]


def test_button_down_at_boot_yields_nothing_until_released():
    fw = Firmware(decoder(initial_active=True))
    fw.run_until(10 * S)
    fw.edge(False, 10 * S)
    fw.press(11 * S, 100 * MS)
    fw.run_until(20 * S)
    assert fw.gestures() == [PRESS]


# --- debounce -------------------------------------------------------------------


def test_bounce_bursts_on_press_and_release_make_one_press():
    fw = Firmware(decoder())
    burst = (1 * MS, 2 * MS, 4 * MS, 5 * MS, 9 * MS, 12 * MS)
    fw.press(1 * S, 150 * MS, bounce_us=burst)
    fw.run_until(10 * S)
    # Dated at the last release bounce: 1.15 s + 12 ms.
    assert fw.log == [(1 * S + 150 * MS + 12 * MS + WINDOW, PRESS)]


def test_bounce_burst_does_not_turn_one_press_into_a_double():
    # A burst whose gaps are each shorter than the debounce never settles.
    fw = Firmware(decoder())
    fw.edge(True, 0)
    level = True
    for t_ms in range(3, 60, 3):
        level = not level
        fw.edge(level, t_ms * MS)
    fw.edge(True, 61 * MS)
    fw.edge(False, 200 * MS)
    fw.run_until(10 * S)
    assert fw.gestures() == [PRESS]


def test_glitch_shorter_than_debounce_is_ignored():
    fw = Firmware(decoder())
    fw.edge(True, 1 * S)
    fw.edge(False, 1 * S + DEBOUNCE - 1)
    fw.run_until(10 * S)
    assert fw.log == []
    assert not fw.dec.pressed


def test_release_glitch_across_the_hold_deadline_delays_the_hold_to_the_glitch_end():
    dec = decoder()
    dec.edge(True, 0)
    dec.poll(DEBOUNCE)
    dec.edge(False, HOLD_US - 5 * MS)  # unconfirmed release spans the hold deadline
    assert dec.poll(HOLD_US) == []
    assert dec.next_deadline_us() == HOLD_US - 5 * MS + DEBOUNCE
    assert dec.edge(True, HOLD_US + 5 * MS) == [HOLD]  # it was a glitch: still held
    assert dec.poll(20 * S) == []


def test_real_release_just_before_the_hold_deadline_is_no_hold():
    dec = decoder()
    dec.edge(True, 0)
    dec.edge(False, HOLD_US - 5 * MS)
    assert dec.poll(HOLD_US) == []
    assert dec.poll(20 * S) == []


def test_repeated_level_restarts_the_debounce_wait():
    # Two "active" reports in a row mean an unseen release in between.
    deb = Debouncer(DEBOUNCE)
    deb.raw_edge(True, 0)
    deb.raw_edge(True, 10 * MS)
    assert deb.confirm_at_us() == 10 * MS + DEBOUNCE


def test_zero_debounce_acts_on_the_edge_itself():
    dec = decoder(debounce_us=0)
    dec.edge(True, 0)
    dec.edge(False, 100 * MS)
    assert dec.edge(True, 200 * MS) == [DOUBLE_PRESS]


def test_time_going_backwards_is_clamped():
    dec = decoder()
    dec.poll(1 * S)
    dec.edge(True, 900 * MS)  # queued behind the poll: treated as at 1 s
    assert dec.next_deadline_us() == 1 * S + DEBOUNCE
    assert dec.poll(1 * S + HOLD_US) == [HOLD]


def test_next_deadline_is_none_when_idle():
    dec = decoder()
    assert dec.next_deadline_us() is None
    dec.edge(True, 0)
    dec.edge(False, 100 * MS)
    dec.poll(100 * MS + WINDOW)
    assert dec.next_deadline_us() is None


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(debounce_us=-1),
        dict(max_press_us=DEBOUNCE),
        dict(max_press_us=HOLD_US + 1),
        dict(double_press_window_us=DEBOUNCE),
    ],
)
def test_inconsistent_timings_are_rejected(kwargs):
    with pytest.raises(ValueError):
        decoder(**kwargs)


def test_defaults_match_act_1():
    dec = GestureDecoder()
    assert dec.hold_us == 3 * S
    assert dec.debounce_us < dec.max_press_us <= dec.hold_us


# Press lengths and gaps kept well away from every threshold, so a bounce burst
# (a few ms, under the debounce) cannot move an edge across one.
_press_length_ms = st.one_of(st.integers(40, 400), st.integers(1100, 2500), st.integers(3200, 4000))
_gap_ms = st.one_of(st.integers(60, 400), st.integers(600, 1500))
# Each bounce is a toggle away and back 1 µs later, starting at a multiple of
# 250 µs within 5 ms of the clean edge, so the line ends where it started.
_burst = st.sets(st.integers(1, 19), max_size=4).map(
    lambda slots: tuple(t for slot in sorted(slots) for t in (slot * 250, slot * 250 + 1))
)


@settings(max_examples=200, deadline=None)
@given(
    script=st.lists(st.tuples(_press_length_ms, _gap_ms), min_size=1, max_size=6),
    bursts=st.lists(st.tuples(_burst, _burst), min_size=6, max_size=6),
)
def test_bounce_never_changes_the_gestures(script, bursts):
    clean, bouncy = Firmware(decoder()), Firmware(decoder())
    t_us = 1 * S
    for (length_ms, gap_ms), (press_burst, release_burst) in zip(script, bursts):
        clean.press(t_us, length_ms * MS)
        bouncy.edge_with_bounce(True, t_us, press_burst)
        bouncy.edge_with_bounce(False, t_us + length_ms * MS, release_burst)
        t_us += (length_ms + gap_ms) * MS
    clean.run_until(t_us + 10 * S)
    bouncy.run_until(t_us + 10 * S)
    assert bouncy.gestures() == clean.gestures()
    # Every gesture is at most one per press, so a bounce never adds one.
    assert len(bouncy.gestures()) <= len(script)


# --- trigger lines --------------------------------------------------------------


def test_trigger_on_and_off_after_stable_level():
    trig = TriggerDecoder(debounce_us=50 * MS)
    assert trig.edge(True, 1 * S) == []
    assert trig.next_deadline_us() == 1 * S + 50 * MS
    assert trig.poll(1 * S + 50 * MS - 1) == []
    assert trig.poll(1 * S + 50 * MS) == [ON]
    assert trig.active
    assert trig.next_deadline_us() is None
    trig.edge(False, 5 * S)
    assert trig.poll(6 * S) == [OFF]


def test_trigger_bounce_burst_gives_one_on():
    trig = TriggerDecoder(debounce_us=50 * MS)
    events = []
    for i, t_ms in enumerate([0, 5, 7, 20, 30, 31, 40]):
        events += trig.edge(i % 2 == 0, t_ms * MS)
    events += trig.poll(10 * S)
    assert events == [ON]


def test_trigger_glitch_gives_nothing():
    trig = TriggerDecoder(debounce_us=50 * MS)
    events = trig.edge(True, 0) + trig.edge(False, 49 * MS) + trig.poll(10 * S)
    assert events == []
    assert not trig.active


def test_trigger_active_at_boot_reports_only_changes():
    trig = TriggerDecoder(debounce_us=50 * MS, initial_active=True)
    assert trig.poll(1 * S) == []
    trig.edge(False, 1 * S)
    assert trig.poll(2 * S) == [OFF]


# --- ACT-9: the module must stay MicroPython-clean ------------------------------


def test_gestures_module_uses_only_micropython_safe_constructs():
    tree = ast.parse(MODULE_PATH.read_text())
    own_classes = {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    for node in ast.walk(tree):
        assert not isinstance(node, (ast.Import, ast.ImportFrom)), "no imports: MicroPython lacks them"
        assert not isinstance(node, ast.JoinedStr), "no f-strings: keep to % formatting"
        if isinstance(node, ast.ClassDef):
            assert not node.decorator_list, "no dataclasses"
            bases = {b.id if isinstance(b, ast.Name) else None for b in node.bases}
            assert bases <= own_classes, "plain classes only (no Enum): bases must be this module's own"
        if isinstance(node, ast.AnnAssign):
            raise AssertionError("no variable annotations")



MICROPYTHON_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, REPO)
    from device.gestures import GestureDecoder, TriggerDecoder
    d = GestureDecoder()
    out = []
    out += d.edge(True, 0) + d.edge(False, 100000) + d.edge(True, 250000)
    out += d.poll(d.next_deadline_us())
    out += d.edge(False, 300000) + d.edge(True, 2000000)
    out += d.poll(d.next_deadline_us())
    out += d.poll(d.next_deadline_us())
    t = TriggerDecoder()
    out += t.edge(True, 0) + t.poll(t.next_deadline_us())
    print(",".join(out))
    """
)


def test_gestures_run_under_micropython(tmp_path):
    script = tmp_path / "drive.py"
    repo = str(MODULE_PATH.parents[1])
    script.write_text(MICROPYTHON_SCRIPT.replace("REPO", repr(repo)))
    result = run_micropython([str(script)], timeout_s=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "double_press,hold,on"
