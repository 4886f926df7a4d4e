"""--source VIDEO through the whole firmware: the exported recording shows the clip at its
own speed and its audio carries the clip's soundtrack, in step with the picture."""
from __future__ import annotations

import os
import sys
from fractions import Fraction

import av
import numpy as np
import pytest

from device.config import load_identity, load_policy
from device.evidence.keys import read_custodian_secret, read_device_public
from scenario_support import HEIGHT, WIDTH, decode_frames, make_custodian, make_device, scenario_toml
from simulator.runner import run_scenario
from simulator.scenario import parse_scenario
from tools.export import export_storage

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "unit"))
from sim_source_clips import best_lag, chirp, read_clip_frame, resample_linear, write_clip  # noqa: E402

pytestmark = pytest.mark.scenario

AIR_HZ, CLIP_S, CLIP_FPS, SOURCE_HZ = 48_000, 2, 25, 44_100


def decode_audio(mp4_path: str) -> tuple[int, np.ndarray]:
    """(pts of the first sample in µs, mono float samples) of the export's audio track."""
    chunks, first_us = [], None
    with av.open(mp4_path) as container:
        stream = container.streams.audio[0]
        assert stream.sample_rate == AIR_HZ
        for frame in container.decode(stream):
            if first_us is None:
                first_us = round(frame.pts * frame.time_base * 1_000_000)
            chunks.append(frame.to_ndarray().reshape(-1))
    return first_us, np.concatenate(chunks)


def export_luma_frames(mp4_path: str) -> list[np.ndarray]:
    with av.open(mp4_path) as container:
        return [f.reformat(format="yuv420p").to_ndarray()[:HEIGHT] for f in container.decode(video=0)]


def test_an_exported_recording_carries_the_clip_and_its_soundtrack(tmp_path):
    source = tmp_path / "clip.mp4"
    sound = chirp(CLIP_S, SOURCE_HZ)
    write_clip(source, list(range(CLIP_FPS * CLIP_S)), Fraction(1, CLIP_FPS), width=WIDTH, height=HEIGHT,
               audio=np.stack([sound, sound]), audio_rate_hz=SOURCE_HZ, rate=CLIP_FPS)
    track = resample_linear(sound, SOURCE_HZ, AIR_HZ)

    custodian = make_custodian(str(tmp_path / "keys"))
    device = make_device(str(tmp_path / "device"), custodian)
    text = scenario_toml(10.0, [{"t_s": 3.0, "do": "button.double_press"},
                                {"t_s": 6.0, "do": "button.hold", "hold_s": 3.0}],
                         pre_event_s=2, segment_s=2)
    scenario = parse_scenario(text, "<source test>")
    policy = scenario.apply_policy(load_policy(os.path.join(device.directory, "policy.toml")))
    result = run_scenario(scenario, load_identity(device.directory), policy, device.directory, device.storage,
                          source_path=str(source))
    assert result.firmware.failure is None
    origin_us = result.world.camera.source_origin_us
    assert origin_us == result.start_us   # source time 0 when the camera started, at boot

    report, exported = export_storage(device.storage, read_custodian_secret(custodian.secret_path),
                                      read_device_public(device.pub_path), str(tmp_path / "export"), True)
    assert report.outcome == "authentic" and len(exported) == 1
    mp4 = exported[0].mp4_path

    # The picture: each exported frame shows the clip frame of its capture time (1.0x).
    frames = decode_frames(mp4)
    lumas = export_luma_frames(mp4)
    shown = [read_clip_frame(y, HEIGHT) for y in lumas]
    expected = [((f.time_ms * 1000 - origin_us) * CLIP_FPS // 1_000_000) % (CLIP_FPS * CLIP_S) for f in frames]
    assert len(frames) > 150 and shown == expected

    # The sound: the export's audio, placed on the device clock by the burned-in capture
    # time of the first frame, is the clip's soundtrack at the same source time.
    first_audio_us, audio = decode_audio(mp4)
    to_monotonic_us = frames[0].time_ms * 1000 - frames[0].pts_us
    max_lag = AIR_HZ // 20
    lags = []
    for offset_s in (0.5, 2.0, 3.5, 5.0):   # across the pre-event, the activation and two loops
        start = round(offset_s * AIR_HZ)
        heard = audio[start : start + AIR_HZ // 2]
        source_us = first_audio_us + round(offset_s * 1e6) + to_monotonic_us - origin_us
        first = round(source_us * AIR_HZ / 1e6) - max_lag
        reference = track[np.arange(first, first + len(heard) + 2 * max_lag) % len(track)]
        lag, corr = best_lag(heard, reference, max_lag)
        assert corr > 0.9, (offset_s, corr)
        lags.append(lag)
    # Within 1 ms through the whole chain (microphone, AAC, muxer, export); the room
    # itself has the soundtrack exactly on time (below), so any offset is the chain's.
    assert all(abs(lag) <= AIR_HZ // 1000 for lag in lags), [lag / AIR_HZ * 1000 for lag in lags]
    air = result.world.air
    heard = air.heard(origin_us + 4_000_000, origin_us + 4_500_000) / 32768.0
    first = round(4.0 * AIR_HZ) - max_lag
    reference = track[np.arange(first, first + len(heard) + 2 * max_lag) % len(track)]
    assert best_lag(heard, reference, max_lag)[0] == 0
