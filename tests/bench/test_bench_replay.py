"""The replay camera's distinct payloads (simulator/replay.py): what the memory suite relies
on for a pre-event buffer that really holds its seconds of bytes."""
from __future__ import annotations

import av

from hal.media import VideoFormat
from simulator.clock import VirtualClock
from simulator.replay import ReplayCamera, packet_counter

SMALL = VideoFormat(width=320, height=180, fps=30, keyframe_interval_s=1.0, bitrate_bps=600_000)


def _deliver(distinct: bool, seconds: float = 3.0) -> list:
    clock = VirtualClock()
    camera = ReplayCamera(clock, SMALL, distinct_payloads=distinct)
    packets: list = []
    camera.start(packets.append)
    clock.wait_until(clock.monotonic_us() + round(seconds * 1e6))
    camera.stop()
    return packets


def test_distinct_payloads_are_fresh_bytes_each_and_decode():
    packets = _deliver(True)
    assert len(packets) >= 90
    assert len({id(p.data) for p in packets}) == len(packets)
    assert len({p.data for p in packets}) == len(packets), "no two packets share their bytes"
    assert [packet_counter(p.data) for p in packets] == list(range(len(packets)))
    decoder = av.CodecContext.create("h264", "r")
    frames = [f for p in packets for f in decoder.decode(av.Packet(p.data))]
    frames += decoder.decode(None)
    assert len(frames) == len(packets)


def test_the_default_replays_the_loop_without_copying():
    packets = _deliver(False)
    assert len({id(p.data) for p in packets}) == 60   # two GOPs of 30 frames
    assert packet_counter(packets[0].data) is None
