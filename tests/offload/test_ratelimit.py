"""`--rate-limit` (docs/offload.md §8): parsing with clear errors, and the pacing itself on
an injected virtual clock (no real sleeping)."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from tools.offload.ratelimit import RateError, TokenBucket, parse_rate


class VirtualTime:
    def __init__(self) -> None:
        self.now_s = 0.0

    def monotonic(self) -> float:
        return self.now_s

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now_s += seconds


@pytest.mark.parametrize("text,rate", [("500k", 500_000), ("2M", 2_000_000), ("1.5M", 1_500_000),
                                       ("250000", 250_000), ("1G", 10 ** 9), ("64K", 64_000)])
def test_rates_parse_in_decimal_units(text, rate):
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "fast", "2MB/s", "-1M", "1.5.2M", "2 M", "0", "999", "1e6", "nan"])
def test_a_bad_rate_is_one_clear_error(text):
    with pytest.raises(RateError, match=r"--rate-limit .*(not a rate|below)"):
        parse_rate(text)


@given(st.text(max_size=20))
def test_parse_rate_never_raises_anything_else(text):
    try:
        assert parse_rate(text) >= 1000
    except RateError:
        pass


@pytest.mark.parametrize("rate,send", [(1_000_000, 16 * 1024), (500_000, 300_000), (2_000_000, 1000)])
def test_the_mean_rate_is_the_limit(rate, send):
    vt = VirtualTime()
    bucket = TokenBucket(rate, monotonic_s=vt.monotonic, sleep=vt.sleep)
    total = 0
    while total < 20 * rate:
        bucket.consume(send)
        total += send
    # The whole transfer takes total/rate seconds, less at most one burst sent up front.
    assert total / rate - bucket.burst_bytes / rate - 1e-6 <= vt.now_s <= total / rate + 1e-6


def test_a_burst_within_the_bucket_goes_at_once_and_idle_time_refills_it_only_to_the_burst():
    vt = VirtualTime()
    bucket = TokenBucket(1_000_000, burst_bytes=100_000, monotonic_s=vt.monotonic, sleep=vt.sleep)
    bucket.consume(100_000)
    assert vt.now_s == 0
    vt.now_s += 60          # a long idle spell does not bank a minute of bytes
    bucket.consume(100_000)
    start = vt.now_s
    bucket.consume(100_000)
    assert vt.now_s - start == pytest.approx(0.1)
