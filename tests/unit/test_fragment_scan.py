"""device/fragment_scan.py: what the writer believes is durable rests on it, so it must count
exactly what a demuxer reads in the muxer's real output, however the bytes are cut up, and
meet anything else with FragmentScanError: no other exception, no hang."""
from __future__ import annotations

import struct

import av
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device.fragment_scan import MOOF_MAX_BYTES, FragmentScanError, FragmentScanner
from device.muxer import FragmentMuxer
from hal.media import AudioFormat, VideoFormat
from simulator.audio import SimAir, SimMicrophone
from simulator.camera import SimCamera
from simulator.clock import VirtualClock

VIDEO = VideoFormat(width=160, height=90, fps=10, keyframe_interval_s=1.0, bitrate_bps=100_000)


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _traf(track: int, samples: int) -> bytes:
    tfhd = _box(b"tfhd", struct.pack(">II", 0x020000, track))
    trun = _box(b"trun", struct.pack(">II", 0, samples))
    return _box(b"traf", tfhd + trun)


def _fragment(counts: dict[int, int], mdat_bytes: int) -> bytes:
    moof = _box(b"moof", _box(b"mfhd", bytes(8)) + b"".join(_traf(t, n) for t, n in counts.items()))
    return moof + _box(b"mdat", bytes(mdat_bytes))


def _feed_in_pieces(data: bytes, cuts: list[int]) -> dict[int, int]:
    scanner, total = FragmentScanner(), {}
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    for start, end in zip(bounds, bounds[1:]):
        for track, n in scanner.feed(data[start:end]).items():
            total[track] = total.get(track, 0) + n
    return total


_fragments = st.lists(st.tuples(st.dictionaries(st.integers(1, 3), st.integers(0, 500), max_size=3),
                                st.integers(0, 3000)), max_size=6)


@given(_fragments, st.lists(st.integers(0, 20_000), max_size=12))
def test_any_split_of_well_formed_fragments_counts_the_same(fragments, cuts):
    data = _box(b"ftyp", b"isom") + b"".join(_fragment(c, m) for c, m in fragments)
    expected: dict[int, int] = {}
    for counts, _ in fragments:
        for track, n in counts.items():
            expected[track] = expected.get(track, 0) + n
    assert _feed_in_pieces(data, cuts) == expected


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000), st.lists(st.integers(0, 2000), max_size=6))
def test_arbitrary_bytes_give_counts_or_a_clear_error(data, cuts):
    try:
        counts = _feed_in_pieces(data, cuts)
    except FragmentScanError as exc:
        assert str(exc)
    else:
        assert all(isinstance(t, int) and n >= 0 for t, n in counts.items())


@given(st.binary(min_size=1, max_size=200), st.sampled_from([b"moof", b"traf", b"tfhd", b"trun"]))
def test_damaged_boxes_inside_a_moof_are_refused_or_read_whole(junk, kind):
    # A moof whose children do not parse is refused with FragmentScanError (anything
    # else escaping would fail this test), never half-counted.
    moof = _box(b"moof", _box(kind, junk[:3]) + junk)
    try:
        counts = FragmentScanner().feed(moof)
    except FragmentScanError:
        return
    assert sum(counts.values()) >= 0


def test_oversized_or_endless_boxes_are_refused():
    for data in (struct.pack(">I4s", MOOF_MAX_BYTES + 1, b"moof"), struct.pack(">I4s", 0, b"mdat"),
                 struct.pack(">I4s", 4, b"mdat"), struct.pack(">I4sQ", 1, b"moof", 12)):
        try:
            FragmentScanner().feed(data)
        except FragmentScanError as exc:
            assert "box" in str(exc) or "moof" in str(exc)
        else:
            raise AssertionError(f"accepted {data!r}")


def test_the_muxers_own_output_is_counted_exactly(tmp_path):
    clock = VirtualClock()
    camera, mic = SimCamera(clock, VIDEO), SimMicrophone(clock, SimAir())
    packets = []
    camera.start(packets.append)
    mic.start(packets.append)
    t0 = clock.monotonic_us()
    clock.wait_until(t0 + 3_500_000)
    muxer = FragmentMuxer(VIDEO, AudioFormat(), 1_000_000, 0)
    data, muxed = [], {"video": 0, "audio": 0}
    for packet in packets:
        if muxer.add(packet, packet.timestamp_us - t0):
            muxed[packet.kind] += 1
        data.append(muxer.take_output())
        delivered = muxer.delivered("video")
        # What the muxer says it delivered never runs ahead of what it was given.
        assert delivered is None or delivered[0] <= packet.timestamp_us - t0 or packet.kind == "audio"
    data.append(muxer.close())
    assert muxer.undelivered("video") == muxer.undelivered("audio") == 0
    path = tmp_path / "out.mp4"
    path.write_bytes(b"".join(data))
    with av.open(str(path)) as container:
        demuxed = {kind: sum(1 for p in container.demux(getattr(container.streams, kind)[0]) if p.size)
                   for kind in ("video",)}
    with av.open(str(path)) as container:
        demuxed["audio"] = sum(1 for p in container.demux(container.streams.audio[0]) if p.size)
    assert demuxed == muxed
    last_video = [p for p in packets if p.kind == "video"][-1]
    assert muxer.delivered("video") == (last_video.timestamp_us - t0,
                                        last_video.timestamp_us - t0 + last_video.duration_us)
