"""BUF-4, SEG-1, SEG-5: the exported event is one continuous run of frames across the
buffer -> recording hand-over and every segment boundary, and a standard H.264 + AAC MP4."""
from __future__ import annotations

import av
import pytest

from scenario_support import MAIN, START_US, assert_continuous, packets, us

pytestmark = pytest.mark.scenario


def test_frames_continuous_across_handover_and_segments(main_recording):
    rec = main_recording
    segments = rec.sidecar["segments"]
    assert len(segments) >= 3, f"expected several segments with segment_s={MAIN['segment_s']}, got {len(segments)}"
    assert len(rec.segment_files()) == len(segments)

    frames = rec.frames
    assert_continuous(frames)
    assert len(frames) == rec.sidecar["packets"]["video"] == len(packets(rec.mp4_path, "video"))
    pts = [f.pts_us for f in frames]
    assert pts == sorted(pts) and len(set(pts)) == len(pts)

    # The run spans the hand-over: frames from the buffer (captured before the
    # activation) and frames recorded live after it.
    activation_ms = rec.activation["activation_monotonic_us"] // 1000
    assert frames[0].time_ms < activation_ms - MAIN["pre_event_s"] * 1000 <= activation_ms < frames[-1].time_ms
    # Burned-in capture times advance one frame period per frame, with no jump.
    period_ms = 1000 / rec.sidecar["video"]["fps"]
    steps = [b.time_ms - a.time_ms for a, b in zip(frames, frames[1:])]
    assert all(abs(s - period_ms) <= 1 for s in steps), sorted(set(steps))
    # Export timeline = capture timeline (no stretch or shift at any join).
    origin_ms = frames[0].time_ms
    off = [f for f in frames if abs((f.time_ms - origin_ms) * 1000 - f.pts_us) > 1000]
    assert not off, f"{len(off)} frames are not at their capture time in the export, e.g. {off[:3]}"

    # SEG-1: segments abut in media time, and each boundary is a keyframe whose
    # neighbours on both sides are present (continuity above covers the numbers).
    by_pts = {f.pts_us: i for i, f in enumerate(frames)}
    for before, after in zip(segments, segments[1:]):
        assert after["media_start_s"] == before["media_end_s"], (before, after)
        index = by_pts.get(us(after["media_start_s"]))
        assert index is not None, f"no frame at segment boundary {after['media_start_s']} s"
        assert frames[index].key_frame, f"segment {after['seq']} does not start on a keyframe"
        assert 0 < index < len(frames)


def test_export_is_h264_aac_mp4_of_expected_length(main_recording):
    rec = main_recording
    act = rec.activation
    assert rec.audit_entries()[0]["monotonic_us"] == START_US  # scenario t = 0 on the device clock
    stop = next(e for e in rec.audit_entries() if e["type"] == "deactivation")
    assert stop["source"] == "button"  # the hold stopped it, not the end of the scenario
    # The stop is stamped at the wearer's press; recording runs until the hold is
    # recognised hold_s later (the footage of the hold itself is kept).
    hold_us, stopped_us = START_US + us(MAIN["hold_t_s"]), START_US + us(MAIN["hold_t_s"] + MAIN["hold_s"])
    assert hold_us <= stop["monotonic_us"] <= stopped_us, stop
    event_s = (stopped_us - act["activation_monotonic_us"]) / 1e6
    pre_s, keyframe_s = MAIN["pre_event_s"], MAIN["keyframe_interval_s"]
    activation_media_s = act["media_us"] / 1e6

    with av.open(rec.mp4_path) as container:
        assert "mp4" in container.format.name
        video, audio = container.streams.video, container.streams.audio
        assert len(video) == 1 and len(audio) == 1
        assert video[0].codec_context.name == "h264"
        assert (video[0].codec_context.width, video[0].codec_context.height) == (
            rec.sidecar["video"]["width"], rec.sidecar["video"]["height"])
        assert audio[0].codec_context.name == "aac"
        duration_s = container.duration / 1e6
        # Every audio packet decodes.
        audio_tb = audio[0].time_base
        audio_frames = list(container.decode(audio[0]))
    assert pre_s + event_s - 0.1 <= duration_s <= pre_s + keyframe_s + event_s + 0.1, (
        f"duration {duration_s:.3f} s, expected pre-event {pre_s} s + event {event_s:.3f} s "
        f"(+ up to one {keyframe_s} s keyframe interval)")

    # The recording ends where the hold was recognised, not at the press nor later.
    last_ms = rec.frames[-1].time_ms
    assert abs(last_ms * 1000 - stopped_us) <= 100_000, (last_ms, stopped_us)

    audio_packets = packets(rec.mp4_path, "audio")
    assert len(audio_frames) >= len(audio_packets) - 2
    assert len(audio_packets) == rec.sidecar["packets"]["audio"]
    first_audio_s = float(audio_packets[0].pts * audio_tb)
    last_audio_end_s = float((audio_packets[-1].pts + audio_packets[-1].duration) * audio_tb)
    # pre_event_audio is off by default: audio starts at about the activation, not
    # with the pre-event video, and then runs to about the end of the event.
    assert abs(first_audio_s - activation_media_s) <= 0.25, (first_audio_s, activation_media_s)
    assert last_audio_end_s >= duration_s - 0.25, (last_audio_end_s, duration_s)
    gaps = [float((b.pts - a.pts - a.duration) * audio_tb) for a, b in zip(audio_packets, audio_packets[1:])]
    assert max(gaps) < 0.05, f"audio has a gap of {max(gaps):.3f} s"
