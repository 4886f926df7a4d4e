"""Part sizes follow the link (tools/offload/part_sizer.py): a quarter second of it, within
64 KiB..4 MiB, halved after a drop and growing back as parts get through."""
from __future__ import annotations

from hypothesis import given, strategies as st

from tools.offload.part_sizer import SIZER_MAX_BYTES, SIZER_MIN_BYTES, PartSizer


def test_a_fast_link_gets_big_parts_and_a_slow_one_small():
    fast, slow = PartSizer(), PartSizer()
    for _ in range(5):
        fast.sent(262144, 0.002)          # ~130 MB/s on loopback
        slow.sent(65536, 0.065)           # ~1 MB/s
    assert fast.next_part_bytes() == SIZER_MAX_BYTES
    assert slow.next_part_bytes() == 128 * 1024     # 0.25 s of 1 MB/s, rounded down to a power of two


def test_a_drop_halves_the_part_and_success_lets_it_grow_back():
    sizer = PartSizer()
    for _ in range(5):
        sizer.sent(1 << 20, 0.01)
    assert sizer.next_part_bytes() == SIZER_MAX_BYTES
    sizer.dropped()
    assert sizer.next_part_bytes() == SIZER_MAX_BYTES // 2
    sizer.dropped()
    assert sizer.next_part_bytes() == SIZER_MAX_BYTES // 4
    sizer.sent(1 << 20, 0.01)
    assert sizer.next_part_bytes() == SIZER_MAX_BYTES // 2


@given(st.lists(st.one_of(st.tuples(st.integers(0, 1 << 24), st.floats(-1, 100, allow_nan=False)), st.none()),
                max_size=50))
def test_always_a_power_of_two_in_range(events):
    sizer = PartSizer()
    for event in events:
        sizer.dropped() if event is None else sizer.sent(*event)
        size = sizer.next_part_bytes()
        assert SIZER_MIN_BYTES <= size <= SIZER_MAX_BYTES and size & (size - 1) == 0
