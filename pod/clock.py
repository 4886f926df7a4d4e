"""A monotonic 64-bit microsecond count from a wrapping tick (docs/pod.md "Clock").

MicroPython's `time.ticks_us()` wraps (period 2^30 us, about 17.9 minutes, on most ports)
and only `time.ticks_diff` compares two readings. The link's freshness rules need one
time base that never wraps or goes back (device/link/endpoint.py), so this extends the
tick: each read adds the forward difference since the previous read. That is exact as
long as reads are less than half a period apart; the pod's main loop reads every pass.
"""

PERIOD_2_30_US = 1 << 30


def make_ticks_diff(period_us):
    """A ticks_diff for a tick that wraps at `period_us` (a power of two or not): the
    signed difference new - old in [-period/2, period/2), as MicroPython defines it."""
    if period_us < 2:
        raise ValueError("a tick period is at least 2, got %d" % period_us)
    half = period_us // 2

    def ticks_diff(new, old):
        return ((new - old + half) % period_us) - half
    return ticks_diff


class ExtendedClock:
    """`now_us()` counts microseconds from `start_us` (the first read) upward forever.

    `read_ticks()` returns the raw tick; `ticks_diff(new, old)` is its signed difference
    (time.ticks_diff on MicroPython, make_ticks_diff(period) elsewhere).
    """

    def __init__(self, read_ticks, ticks_diff, start_us=0):
        self._read = read_ticks
        self._diff = ticks_diff
        self._last_ticks = read_ticks()
        self._now_us = start_us

    def now_us(self):
        ticks = self._read()
        step_us = self._diff(ticks, self._last_ticks)
        if step_us > 0:
            # A negative step can only be a tick read out of order (an interrupt's
            # reading older than ours): keep the later base so time never goes back.
            self._now_us += step_us
            self._last_ticks = ticks
        return self._now_us

    def to_us(self, ticks, now_us=None):
        """The extended time of a raw tick taken a little before now (an edge stamped in
        an interrupt handler): now minus how long ago it was."""
        if now_us is None:
            now_us = self.now_us()
        # An edge stamped after our last read (between it and this call) is dated now,
        # not in the future: the decoder must never see an edge ahead of its poll.
        return now_us - max(0, self._diff(self._last_ticks, ticks))
