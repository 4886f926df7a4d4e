"""`--rate-limit`: pace the bytes offload sends, to be kind to a home link (docs/offload.md §8).

A token bucket over bytes: it fills at `rate` bytes per second up to `burst` bytes,
and a send of n bytes waits until n tokens are there (a send larger than the bucket
runs it into debt, repaid before the next send). Time and sleeping are injected, so
tests run it on a virtual clock.
"""
from __future__ import annotations

import re
import time
from typing import Callable

_RATE = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<unit>[kKMG]?)\Z")
_UNITS = {"": 1, "k": 1000, "K": 1000, "M": 1000 ** 2, "G": 1000 ** 3}
RATE_MIN_BPS = 1000          # slower than this, the intake's body_timeout_s cuts every part
BURST_S = 0.25               # how far ahead of the mean rate a burst may run


class RateError(ValueError):
    pass


def parse_rate(text: str) -> int:
    """Bytes per second from `500k`, `2M`, `1.5M` or a plain number (decimal units, like a link's)."""
    match = _RATE.match(text.strip())
    if match is None:
        raise RateError(f"--rate-limit {text!r} is not a rate: give bytes per second, e.g. 500k, 2M or 1.5M")
    rate = int(float(match["number"]) * _UNITS[match["unit"]])
    if rate < RATE_MIN_BPS:
        raise RateError(f"--rate-limit {text!r} is below the least usable rate, 1k (1000 bytes per second)")
    return rate


class TokenBucket:
    def __init__(self, rate_bps: int, burst_bytes: int | None = None,
                 monotonic_s: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate_bps = rate_bps
        self.burst_bytes = burst_bytes if burst_bytes is not None else max(16 * 1024, int(rate_bps * BURST_S))
        self._now, self._sleep = monotonic_s, sleep
        self._tokens = float(self.burst_bytes)
        self._last_s = self._now()

    def _refill(self) -> None:
        now = self._now()
        self._tokens = min(float(self.burst_bytes), self._tokens + (now - self._last_s) * self.rate_bps)
        self._last_s = now

    def consume(self, n_bytes: int) -> None:
        """Wait until `n_bytes` may be sent (returns at once while the bucket holds them)."""
        self._refill()
        if self._tokens < min(n_bytes, self.burst_bytes):
            self._sleep((min(n_bytes, self.burst_bytes) - self._tokens) / self.rate_bps)
            self._refill()
        self._tokens -= n_bytes
        if self._tokens < 0:       # a send larger than the bucket: repay the debt now
            self._sleep(-self._tokens / self.rate_bps)
            self._refill()


class Unlimited:
    rate_bps = None

    def consume(self, n_bytes: int) -> None:
        pass
