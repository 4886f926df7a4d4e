"""An activation makes its pre-event durable at once, in bounded checkpointed chunks (issue 10).

A real SegmentWriter on SimFS is handed an activation with 10 s of buffered media, the press
falling mid-GOP. Power is cut at every fsync of the segment file in turn: what the card holds
afterwards verifies as cut short by power loss (never tampered), and is everything the disk
had taken: the first checkpoint after the header already holds the first GOP, and the one
that ends the write-out holds the partial GOP up to the press, without waiting for the next
keyframe.
"""
from __future__ import annotations

import os

import pytest

from device.evidence.format import segment_file_name
from device.evidence.keys import read_device_public
from device.evidence.storage_verify import verify_storage
from hal.media import VideoFormat
from simulator.simfs import SimFS
from tools.bench.devices import make_device
from tools.bench.measure_writer import WriterRig, packets_for, start_item

VIDEO = VideoFormat(width=320, height=180, fps=30, keyframe_interval_s=1.0, bitrate_bps=2_000_000)
PRESS_US = 10_500_000     # mid-GOP: half a second after the 11th keyframe


@pytest.fixture(scope="module")
def pre_event():
    return packets_for(VIDEO, end_us=PRESS_US)


def _press(root: str, packets, cut_at_fsync: int | None):
    """Hand the writer the activation; returns (storage report, segment fsyncs seen)."""
    fs = SimFS()
    device_dir, _ = make_device(root)
    rig = WriterRig(os.path.join(root, "run"), device_dir, VIDEO, fs=fs)
    segment = os.path.join(rig.storage_dir, segment_file_name(1))
    if cut_at_fsync is not None:
        fs.arm_power_cut("fsync", nth=cut_at_fsync, mode="drop", under=segment)
    rig.writer.put(start_item(PRESS_US, packets, pre_event_s=10))
    rig.writer.wait_idle()
    fsyncs = fs.op_count("fsync", under=segment)
    if cut_at_fsync is None:
        rig.writer.close()
    else:
        fs.power_restore()
    key = read_device_public(os.path.join(device_dir, "device.pub"))
    return verify_storage(rig.storage_dir, key), fsyncs


def test_a_power_cut_during_the_pre_event_write_out_keeps_every_chunk_written_before_it(tmp_path, pre_event):
    _, fsyncs = _press(str(tmp_path / "whole"), pre_event, None)
    # Bounded chunks: more than one checkpoint, far fewer than one per GOP (11 GOPs + header).
    assert 3 <= fsyncs < 11
    last_video = [p for p in pre_event if p.kind == "video"][-1]
    first_gop_end_us = next(p.timestamp_us for p in pre_event if p.kind == "video" and p.keyframe
                            and p.timestamp_us > 0)
    durable_ends = []
    for k in range(2, fsyncs + 1):   # fsync 1 is the header's own checkpoint
        report, _ = _press(str(tmp_path / f"cut{k}"), pre_event, cut_at_fsync=k + 1)
        assert report.outcome == "truncated" and report.problems == [], report.to_json()
        durable_ends.append(report.segments[-1].report.last.media_end_us)
    # The first media checkpoint holds at least the first GOP ...
    assert durable_ends[0] >= first_gop_end_us - VIDEO_FRAME_US
    # ... each later one more, and the last one every frame up to the press.
    assert durable_ends == sorted(durable_ends) and len(set(durable_ends)) == len(durable_ends)
    assert durable_ends[-1] >= last_video.timestamp_us


VIDEO_FRAME_US = round(1e6 / VIDEO.fps)


def test_a_card_that_fills_during_the_pre_event_write_out_ends_the_event_cleanly(tmp_path, pre_event):
    # Room for about half the pre-event: the bounded chunks (one written in the
    # background while the next is encrypted) must still leave the reserve that closes
    # the segment, so the card holds a cleanly closed segment, not a storage fault.
    fs = SimFS()
    device_dir, _ = make_device(str(tmp_path))
    rig = WriterRig(str(tmp_path / "run"), device_dir, VIDEO, fs=fs)
    full = []
    rig.writer._on_storage_full = lambda: full.append(True)
    fs.fill(sum(len(p.data) for p in pre_event) // 2 + (2 << 20))
    rig.writer.put(start_item(PRESS_US, pre_event, pre_event_s=10))
    rig.writer.wait_idle()
    rig.writer.close()
    report = verify_storage(rig.storage_dir, read_device_public(os.path.join(device_dir, "device.pub")))
    assert full and report.outcome == "authentic", report.to_json()
    assert report.segments[-1].report.last.final
