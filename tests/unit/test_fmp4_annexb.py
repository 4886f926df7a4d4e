"""Annex B access units into MP4 samples (device/fmp4.py): every NAL unit, length-prefixed,
exactly as a plain start-code search finds them, whatever the bytes."""
from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from device.fmp4 import annexb_to_samples, start_codes


def reference(data: bytes) -> list[bytes]:
    """The NAL units as repeated bytes.find from each start code's end finds them."""
    nals, pos = [], data.find(b"\x00\x00\x01")
    while pos >= 0:
        start = pos + 3
        nxt = data.find(b"\x00\x00\x01", start)
        end = len(data) if nxt < 0 else nxt
        while end > start and data[end - 1] == 0:
            end -= 1
        if end > start:
            nals.append(data[start:end])
        pos = nxt
    return nals


def samples(data: bytes) -> tuple[int, list[bytes]]:
    out: list = []
    size = annexb_to_samples(data, out)
    pieces = [bytes(p) for p in out]
    nals = []
    for length, nal in zip(pieces[::2], pieces[1::2]):
        assert struct.unpack(">I", length)[0] == len(nal)
        nals.append(nal)
    return size, nals


# Bytes rich in 00 and 01, so start codes, 4-byte codes and trailing zeros are common.
annexb = st.lists(st.sampled_from([b"\x00", b"\x01", b"\x00\x00\x01", b"\x00\x00\x00\x01", b"\x65", b"\xff"]),
                  max_size=60).map(b"".join)


@settings(max_examples=400, deadline=None)
@given(annexb | st.binary(max_size=200))
def test_every_nal_unit_found_as_a_plain_search_finds_it(data):
    size, nals = samples(data)
    assert nals == reference(data)
    assert size == sum(4 + len(n) for n in nals)
    assert start_codes(data) == [i for i in range(len(data) - 2) if data[i:i + 3] == b"\x00\x00\x01"]


def test_a_camera_access_unit():
    sps, pps, idr = b"\x67\x64\x00\x28", b"\x68\xee\x3c\x80", b"\x65" + bytes(range(1, 200))
    data = b"\x00\x00\x00\x01" + sps + b"\x00\x00\x01" + pps + b"\x00\x00\x01" + idr + b"\x00"
    assert samples(data) == (12 + len(sps) + len(pps) + len(idr), [sps, pps, idr])
