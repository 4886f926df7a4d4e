"""FLT-1, the writer's side: the camera's cord is pulled for 5 s in the middle of an event.

What a custodian must find afterwards: the audio recorded straight through the loss, on the
card within a flush of being captured (so a power cut during the loss keeps it), an
exported MP4 whose audio is continuous and whose video has nothing in the gap and comes
back at the first keyframe, at the time it was captured, and evidence that verifies.
"""
from __future__ import annotations

import logging

import numpy as np
import pytest

from camera_loss_rig import FRAME_US, Rig, decoded_audio, media_packets, us
from device.config import Policy
from device.evidence.decrypt import decrypt_segment
from device.evidence.keys import read_custodian_secret
from device.firmware import Firmware
from scenario_support import decode_frames

pytestmark = pytest.mark.scenario

AUDIO_FRAME_US = round(1024 * 1e6 / 48_000)
PRESS_S, LOSS_S, BACK_S, HOLD_S = 1.0, 3.5, 8.5, 11.0   # the cord is out for 5 s
BURST_S, BURST_HZ = 10.0, 3000                           # a sound after the loss, for A/V sync
FLUSH_S = 1.0
# Durable audio trails capture by at most a flush interval plus two AAC frames: one
# held by the encoder, one by the muxer's interleaving until the next packet arrives.
AUDIO_LAG_US = us(FLUSH_S) + 2 * AUDIO_FRAME_US


def _policy(**changes) -> Policy:
    # No announcement: the test listens to the room tone and its own burst only.
    return Policy(**{"pre_event_s": 1, "segment_s": 4, "flush_interval_s": FLUSH_S, "announce": "suppressed",
                     "announce_suppress_reason": "camera-loss test", **changes})


def _burst(rig: Rig) -> None:
    air = rig.world.air
    t = np.arange(2400) / 48_000
    tone = (0.5 * np.sin(2 * np.pi * BURST_HZ * t)).astype(np.float32)
    rig.at(BURST_S, lambda: air.emit(air.sample_index(rig.clock.monotonic_us()), tone))


@pytest.fixture
def reported(monkeypatch) -> list[int]:
    """Every on_committed value the firmware receives, in order."""
    values: list[int] = []
    real = Firmware._on_committed

    def on_committed(self, media_monotonic_us: int) -> None:
        values.append(media_monotonic_us)
        real(self, media_monotonic_us)

    monkeypatch.setattr(Firmware, "_on_committed", on_committed)
    return values


@pytest.fixture(scope="module")
def loss(tmp_path_factory, custodian):
    """One event with a 5 s camera loss, its health sampled once a simulated second."""
    rig = Rig(str(tmp_path_factory.mktemp("camera-loss")), custodian, _policy())
    rig.double_press(PRESS_S)
    rig.camera_loss(LOSS_S, BACK_S)
    rig.hold(HOLD_S, 3.0)
    _burst(rig)
    samples = []
    for t_s in range(1, 16):
        rig.run_until(t_s)
        rig.catch_up()
        samples.append((rig.t0 + us(t_s), *rig.writer.committed_us()))
    rig.shutdown()
    mp4, sidecar = rig.export()
    return rig, samples, mp4, sidecar


def test_committed_audio_keeps_up_while_the_camera_is_lost(loss):
    rig, samples, _, _ = loss
    in_loss = [s for s in samples if rig.t0 + us(LOSS_S + 1) <= s[0] <= rig.t0 + us(BACK_S)]
    assert len(in_loss) == 4   # at 5, 6, 7 and 8 s
    videos = {video for _, video, _ in in_loss}
    # Video stands still at the end of the last frame before the cord was pulled.
    assert videos == {rig.t0 + us(LOSS_S)}, videos
    audios = [audio for _, _, audio in in_loss]
    assert all(b > a for a, b in zip(audios, audios[1:])), audios
    for now_us, _, audio_us in in_loss:
        assert now_us - AUDIO_LAG_US <= audio_us <= now_us, (now_us, audio_us)


def test_the_event_verifies_and_the_segments_meet_at_the_keyframe_after_the_loss(loss):
    rig, _, _, _ = loss
    report = rig.verify()
    assert report.outcome == "authentic" and report.problems == [], report.to_json()
    segments = report.segments
    origin = segments[0].header["event_origin_monotonic_us"]
    starts = [origin + s.header["media_start_us"] for s in segments]
    ends = [origin + s.report.last.media_end_us for s in segments]
    # No split while there is no keyframe to split at (the loss is longer than
    # segment_s); the next segment starts exactly at the frame that ends the loss.
    assert rig.t0 + us(BACK_S) in starts
    assert not [t for t in starts if rig.t0 + us(LOSS_S) < t < rig.t0 + us(BACK_S)], starts
    assert ends[:-1] == starts[1:]


def test_audio_only_checkpoints_claim_audio_not_video(loss):
    rig, _, _, _ = loss
    report = rig.verify()
    secret = read_custodian_secret(rig.custodian.secret_path)
    first = report.segments[0]
    with open(first.path, "rb") as f:
        media = decrypt_segment(f.read(), first.report, secret).media
    path = str(rig.device.directory) + "/first-segment.mp4"
    with open(path, "wb") as f:
        f.write(media)
    video = media_packets(path, "video")
    # The device's own file: the last frame before the loss lasts one frame, nothing
    # pretends to cover the gap.
    assert video[-1][0] + video[-1][1] == us(LOSS_S) - first.header["event_origin_monotonic_us"] + rig.t0
    assert video[-1][1] in (FRAME_US, FRAME_US + 1)


def test_exported_audio_is_continuous_through_the_loss(loss):
    rig, _, mp4, sidecar = loss
    audio = media_packets(mp4, "audio")
    steps = {b[0] - a[0] for a, b in zip(audio, audio[1:])}
    assert steps <= {AUDIO_FRAME_US, AUDIO_FRAME_US + 1}, sorted(steps)[:10]
    first_us, pcm = decoded_audio(mp4)
    span_us = audio[-1][0] + audio[-1][1] - audio[0][0]
    assert abs(len(pcm) - span_us * 48_000 / 1e6) <= 2, (len(pcm), span_us)
    # The room tone (-30 dBFS, RMS -33 dBFS) is there in every 10 ms of the loss.
    origin = rig.verify().segments[0].header["event_origin_monotonic_us"]
    start = round((rig.t0 + us(LOSS_S) - origin - first_us) * 48_000 / 1e6)
    stop = round((rig.t0 + us(BACK_S) - origin - first_us) * 48_000 / 1e6)
    windows = pcm[start:stop][: (stop - start) // 480 * 480].reshape(-1, 480)
    rms_dbfs = 20 * np.log10(np.sqrt((windows ** 2).mean(axis=1)))
    assert rms_dbfs.min() > -36, rms_dbfs.min()


def test_exported_video_skips_the_gap_and_resumes_in_sync(loss):
    rig, _, mp4, _ = loss
    origin = rig.verify().segments[0].header["event_origin_monotonic_us"]
    frames = decode_frames(mp4)
    assert all(f.time_ms is not None for f in frames)
    before = [f for f in frames if f.pts_us + origin < rig.t0 + us(LOSS_S)]
    after = [f for f in frames if f.pts_us + origin >= rig.t0 + us(LOSS_S)]
    # No frame in the gap; the first after it is the keyframe captured on reconnection,
    # shown at its capture time, and every frame's burned-in time is its place.
    assert after[0].pts_us + origin == rig.t0 + us(BACK_S) and after[0].key_frame
    assert before[-1].pts_us + origin == rig.t0 + us(LOSS_S) - FRAME_US - 1 or \
        before[-1].pts_us + origin == rig.t0 + us(LOSS_S) - FRAME_US
    off = [f for f in frames if abs(f.time_ms * 1000 - (f.pts_us + origin)) >= 1000]
    assert not off, off[:5]
    # Audio after the loss is in sync too: the burst sounds where it was made.
    first_us, pcm = decoded_audio(mp4)
    onset_us = first_us + np.argmax(np.abs(pcm) > 0.2) * 1e6 / 48_000
    assert abs(origin + onset_us - (rig.t0 + us(BURST_S))) < 1000, onset_us


def test_a_power_cut_during_the_loss_keeps_the_audio_up_to_the_last_flush(tmp_path, custodian, reported):
    rig = Rig(str(tmp_path), custodian, _policy())
    rig.double_press(PRESS_S)
    rig.camera_loss(LOSS_S, BACK_S)
    rig.run_until(LOSS_S + 3.0)
    rig.catch_up()
    video_us, audio_us = rig.writer.committed_us()
    assert audio_us >= rig.t0 + us(LOSS_S + 3.0) - AUDIO_LAG_US
    # on_committed is about video: nothing new was reported while only audio arrived.
    assert max(reported) <= rig.t0 + us(LOSS_S)
    rig.power_cut()

    report = rig.verify()
    assert report.outcome == "truncated" and report.problems == [], report.to_json()
    last = report.segments[-1]
    origin = last.header["event_origin_monotonic_us"]
    # The last checkpoint claims the audio it made durable, not video that is not there.
    assert origin + last.report.last.media_end_us == audio_us
    mp4, _ = rig.export()
    audio = media_packets(mp4, "audio")
    # Within a millisecond, far less than an audio frame: the export's audio sits 16
    # samples (333 us) earlier than the device stamped it, with or without a loss.
    assert abs(origin + audio[-1][0] + audio[-1][1] - audio_us) < 1000, (origin + audio[-1][0], audio_us)
    video = media_packets(mp4, "video")
    assert origin + video[-1][0] + video[-1][1] == video_us == rig.t0 + us(LOSS_S)


def test_a_short_loss_ends_the_segment_at_the_keyframe_after_it(tmp_path, custodian):
    # segment_s is far off: the split at the keyframe after the loss is for the gap alone.
    rig = Rig(str(tmp_path), custodian, _policy(segment_s=30))
    rig.double_press(PRESS_S)
    rig.camera_loss(3.0, 4.2)
    rig.hold(6.0, 3.0)
    rig.run_until(10)
    rig.shutdown()
    report = rig.verify()
    assert report.outcome == "authentic" and report.problems == [], report.to_json()
    origin = report.segments[0].header["event_origin_monotonic_us"]
    assert [origin + s.header["media_start_us"] for s in report.segments][1:] == [rig.t0 + us(4.2)]
    mp4, _ = rig.export()
    frames = decode_frames(mp4)
    resumed = [f for f in frames if f.pts_us + origin >= rig.t0 + us(3.0)]
    assert resumed[0].pts_us + origin == rig.t0 + us(4.2) and resumed[0].time_ms == (rig.t0 + us(4.2)) // 1000


def test_after_a_gap_video_waits_for_a_keyframe(tmp_path, custodian, caplog, monkeypatch):
    # The link drops 1.5 s of frames while the encoder runs on: after the gap come
    # P-frames (their references are gone) until the keyframe at 6 s. The watchdog's
    # reopening of the camera (which would start a fresh GOP) is held off, so the
    # writer alone has to find the keyframe.
    from device.monitor import Monitor
    monkeypatch.setattr(Monitor, "_reopen", lambda self, track, now_us: None)
    rig = Rig(str(tmp_path), custodian, _policy(segment_s=30), camera_gap_s=(3.5, 5.5))
    rig.double_press(PRESS_S)
    rig.hold(7.0, 3.0)
    with caplog.at_level(logging.INFO, logger="device.writer"):
        rig.run_until(11)
        rig.shutdown()
    dropped = round((6.0 - 5.5) * 30)
    assert any(f"{dropped} frame(s) before this keyframe dropped" in r.getMessage() for r in caplog.records), \
        [r.getMessage() for r in caplog.records]
    report = rig.verify()
    assert report.outcome == "authentic" and report.problems == [], report.to_json()
    mp4, _ = rig.export()
    origin = report.segments[0].header["event_origin_monotonic_us"]
    frames = decode_frames(mp4)
    resumed = [f for f in frames if f.pts_us + origin >= rig.t0 + us(3.5)]
    assert resumed[0].key_frame and resumed[0].pts_us + origin == rig.t0 + us(6.0)
    assert all(f.time_ms * 1000 == f.pts_us + origin for f in resumed if (f.pts_us + origin) % 1000 == 0)
