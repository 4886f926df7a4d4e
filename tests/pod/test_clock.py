from hypothesis import given, strategies as st

from pod.clock import PERIOD_2_30_US, ExtendedClock, make_ticks_diff


class Tick:
    def __init__(self, period_us, start_us=0):
        self.period_us = period_us
        self.true_us = start_us

    def read(self):
        return self.true_us % self.period_us


def test_wraps_at_2_30():
    tick = Tick(PERIOD_2_30_US, PERIOD_2_30_US - 10)
    clock = ExtendedClock(tick.read, make_ticks_diff(PERIOD_2_30_US), start_us=tick.true_us)
    tick.true_us += 25    # across the wrap: the raw tick went from 2^30-10 to 15
    assert tick.read() == 15
    assert clock.now_us() == PERIOD_2_30_US + 15


def test_many_wraps_stay_exact():
    tick = Tick(PERIOD_2_30_US)
    clock = ExtendedClock(tick.read, make_ticks_diff(PERIOD_2_30_US))
    step_us = PERIOD_2_30_US // 2 - 1     # the longest safe gap between reads
    for _ in range(100):
        tick.true_us += step_us
        assert clock.now_us() == tick.true_us
    assert tick.true_us > 49 * PERIOD_2_30_US


def test_ticks_diff_matches_micropython_definition():
    diff = make_ticks_diff(PERIOD_2_30_US)
    assert diff(5, 3) == 2
    assert diff(3, 5) == -2
    assert diff(0, PERIOD_2_30_US - 1) == 1
    assert diff(PERIOD_2_30_US - 1, 0) == -1


@given(st.integers(2, 10 ** 6), st.integers(0, 10 ** 9),
       st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=200))
def test_generic_period_exact_and_monotonic(period_us, start_us, fractions):
    tick = Tick(period_us, start_us)
    clock = ExtendedClock(tick.read, make_ticks_diff(period_us), start_us=start_us)
    last_us = clock.now_us()
    for f in fractions:
        tick.true_us += int(f * ((period_us - 1) // 2))   # under half a period
        now_us = clock.now_us()
        assert now_us == tick.true_us
        assert now_us >= last_us
        last_us = now_us


@given(st.integers(2, 1 << 31), st.lists(st.integers(0, 1 << 31), max_size=100))
def test_never_goes_backwards_whatever_the_tick_does(period_us, raws):
    raws = [r % period_us for r in raws]
    it = iter([0] + raws)
    clock = ExtendedClock(lambda: next(it), make_ticks_diff(period_us))
    last_us = 0
    for _ in raws:
        now_us = clock.now_us()
        assert now_us >= last_us
        last_us = now_us


def test_to_us_dates_an_older_tick_across_the_wrap():
    tick = Tick(PERIOD_2_30_US, PERIOD_2_30_US - 100)
    clock = ExtendedClock(tick.read, make_ticks_diff(PERIOD_2_30_US), start_us=tick.true_us)
    edge_ticks = tick.read()           # stamped in the interrupt handler
    tick.true_us += 300
    now_us = clock.now_us()
    assert clock.to_us(edge_ticks, now_us) == now_us - 300


def test_to_us_never_dates_an_edge_in_the_future():
    tick = Tick(PERIOD_2_30_US, 1000)
    clock = ExtendedClock(tick.read, make_ticks_diff(PERIOD_2_30_US), start_us=1000)
    now_us = clock.now_us()
    tick.true_us += 50                  # an interrupt after our read
    assert clock.to_us(tick.read(), now_us) == now_us
