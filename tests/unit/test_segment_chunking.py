"""device/evidence/segment_file.py cuts a fragment handed over in pieces into chunks: the
chunks' bytes must be exactly those of the joined pieces, cut every `limit` bytes, as the
format (and every verifier) reads them, wherever the pieces' edges fall."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from device.evidence.segment_file import _split


@given(st.lists(st.binary(max_size=40), max_size=10), st.integers(1, 64))
def test_runs_are_the_joined_pieces_cut_every_limit_bytes(parts, limit):
    whole = b"".join(parts)
    runs = [b"".join(bytes(p) for p in run) for run in _split(parts, limit)]
    assert runs == [whole[i:i + limit] for i in range(0, max(len(whole), 1), limit)]
