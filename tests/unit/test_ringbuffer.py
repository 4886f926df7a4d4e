"""The pre-event buffer (BUF-1..BUF-4): delivered pre-event, contiguity, byte bound, audio."""
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device.ringbuffer import DEFAULT_ACTIVATION_SLACK_US, PreEventBuffer
from hal.media import MediaPacket

S = 1_000_000
MS = 1000
AUDIO_FRAME_US = 1024 * S // 48_000  # one AAC frame at 48 kHz
BIG = 1 << 40  # a byte bound that never binds


def video_packet(index, fps, gop_frames, keyframe_bytes=400, delta_bytes=40):
    keyframe = index % gop_frames == 0
    size = keyframe_bytes if keyframe else delta_bytes
    # The frame number rides in the payload so tests can check contiguity.
    data = index.to_bytes(4, "big") + bytes(size - 4)
    return MediaPacket("video", data, index * S // fps, S // fps, keyframe)


def audio_packet(index, size=20):
    return MediaPacket("audio", index.to_bytes(4, "big") + bytes(size - 4), index * AUDIO_FRAME_US, AUDIO_FRAME_US, True)


def number(packet):
    return int.from_bytes(packet.data[:4], "big")


def camera(fps, keyframe_interval_s, run_us, **sizes):
    """Video packets captured up to run_us, and the timestamp of the next frame."""
    gop_frames = max(1, round(keyframe_interval_s * fps))
    packets, index = [], 0
    while index * S // fps <= run_us:
        packets.append(video_packet(index, fps, gop_frames, **sizes))
        index += 1
    return packets, index * S // fps


def feed(buffer, packets):
    for packet in packets:
        buffer.append(packet)


def video_of(packets):
    return [p for p in packets if p.kind == "video"]


def audio_of(packets):
    return [p for p in packets if p.kind == "audio"]


def assert_contiguous(packets):
    numbers = [number(p) for p in packets]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))


# --- BUF-1 ---------------------------------------------------------------------


@pytest.mark.parametrize("pre_event_s", [-0.001, 120.001, math.nan])
def test_pre_event_outside_0_to_120_s_is_rejected(pre_event_s):
    with pytest.raises(ValueError, match="pre_event_s"):
        PreEventBuffer(pre_event_s, BIG)


@pytest.mark.parametrize("pre_event_s", [0, 30, 120])
def test_pre_event_limits_are_accepted(pre_event_s):
    assert PreEventBuffer(pre_event_s, BIG).pre_event_us == pre_event_s * S


def test_non_positive_byte_bound_is_rejected():
    with pytest.raises(ValueError, match="max_bytes"):
        PreEventBuffer(30, 0)


# --- BUF-2 ---------------------------------------------------------------------


def test_long_keyframe_interval_still_delivers_the_full_pre_event():
    # 8 s GOPs, 5 s pre-event: a duration-from-oldest-frame buffer would
    # start at the keyframe at 16 s and deliver only 4.x s.
    buffer = PreEventBuffer(5, BIG)
    packets, _ = camera(30, 8, 20 * S)
    feed(buffer, packets)
    activation_us = packets[-1].timestamp_us
    taken = buffer.take(activation_us)
    assert taken[0].keyframe
    assert taken[0].timestamp_us == 8 * S  # newest keyframe at or before 15 s
    assert activation_us - taken[0].timestamp_us >= 5 * S


def test_camera_just_started_delivers_from_the_oldest_keyframe():
    buffer = PreEventBuffer(30, BIG)
    packets, _ = camera(30, 1, 3 * S)
    feed(buffer, packets)
    taken = buffer.take(3 * S)
    assert taken == packets


def test_zero_pre_event_starts_at_the_newest_keyframe_at_or_before_activation():
    buffer = PreEventBuffer(0, BIG)
    packets, _ = camera(25, 2, 9 * S)
    feed(buffer, packets)
    taken = buffer.take(9 * S)
    assert taken[0].timestamp_us == 8 * S
    assert taken == [p for p in packets if p.timestamp_us >= 8 * S]


def test_keyframe_exactly_at_activation_minus_pre_event_is_the_start():
    buffer = PreEventBuffer(2, BIG)
    packets, _ = camera(30, 1, 10 * S)
    feed(buffer, packets)
    taken = buffer.take(10 * S)
    assert taken[0].timestamp_us == 8 * S
    assert taken == packets[8 * 30 :]


def test_activation_stamped_before_the_newest_frame_gets_the_full_pre_event():
    # The button edge is stamped before frames that were already buffered when
    # the event is handled; the activation slack keeps the GOP it needs.
    buffer = PreEventBuffer(2, BIG)
    packets, _ = camera(30, 1, 10 * S)
    feed(buffer, packets)
    activation_us = 10 * S - 400 * MS
    taken = buffer.take(activation_us)
    assert taken[0].timestamp_us == 7 * S
    assert activation_us - taken[0].timestamp_us >= 2 * S


def test_frames_before_the_first_keyframe_are_not_kept():
    buffer = PreEventBuffer(10, BIG)
    packets, _ = camera(30, 1, 3 * S)
    feed(buffer, packets[5:])  # camera output joined mid-GOP
    taken = buffer.take(3 * S)
    assert taken[0].timestamp_us == 1 * S
    assert taken == packets[30:]


def test_buffer_stays_bounded_by_duration():
    buffer = PreEventBuffer(5, BIG, activation_slack_us=0)
    packets, _ = camera(60, 1, 600 * S)
    most_held_us = 0
    for packet in packets:
        buffer.append(packet)
        most_held_us = max(most_held_us, buffer.duration_us)
    # Pre-event plus at most one GOP plus the frame in hand.
    assert most_held_us <= 5 * S + 1 * S + S // 60 + 1
    assert buffer.dropped_for_bytes == 0


@settings(max_examples=120, deadline=None)
@given(
    fps=st.sampled_from([15, 25, 30, 60]),
    keyframe_interval_s=st.sampled_from([0.5, 1, 2, 4, 8]),
    pre_event_s=st.one_of(st.integers(0, 120), st.floats(0, 120, allow_nan=False)),
    run_beyond_pre_event_s=st.floats(-10, 20),
    activation_fraction=st.floats(0, 1, exclude_max=True),
    keep_audio=st.booleans(),
    audio_latency_us=st.integers(0, 60 * MS),
)
def test_buf2_delivered_pre_event_is_at_least_configured_and_less_than_one_gop_more(
    fps, keyframe_interval_s, pre_event_s, run_beyond_pre_event_s, activation_fraction, keep_audio, audio_latency_us
):
    pre_event_us = round(pre_event_s * S)
    run_us = max(0, pre_event_us + round(run_beyond_pre_event_s * S))
    video, next_video_us = camera(fps, keyframe_interval_s, run_us, keyframe_bytes=8, delta_bytes=4)
    # Audio arrives audio_latency_us after capture; video at capture time.
    audio_count = max(0, (run_us - audio_latency_us) // AUDIO_FRAME_US + 1)
    audio = [audio_packet(i, size=8) for i in range(audio_count)]
    arrivals = sorted(
        [(p.timestamp_us, 0, p) for p in video] + [(p.timestamp_us + audio_latency_us, 1, p) for p in audio],
        key=lambda item: item[:2],
    )
    buffer = PreEventBuffer(pre_event_s, BIG, keep_audio=keep_audio)
    feed(buffer, [p for _, _, p in arrivals])

    # Any activation from (newest packet - slack) until the next frame is captured.
    newest_us = max(p.timestamp_us for _, _, p in arrivals)
    earliest_us = max(0, newest_us - DEFAULT_ACTIVATION_SLACK_US)
    activation_us = earliest_us + int(activation_fraction * (next_video_us - earliest_us))
    keyframe_us = [p.timestamp_us for p in video if p.keyframe]
    gop_us = max((b - a for a, b in zip(keyframe_us, keyframe_us[1:])), default=0)
    gop_us = max(gop_us, math.ceil(max(1, round(keyframe_interval_s * fps)) * S / fps))

    taken = buffer.take(activation_us)
    taken_video = video_of(taken)
    first = taken[0]
    assert first.kind == "video" and first.keyframe
    assert_contiguous(taken_video)
    assert taken_video[-1] is video[-1]  # nothing after the start is missing
    if activation_us - pre_event_us >= 0:  # the camera has run long enough
        delivered_us = activation_us - first.timestamp_us
        assert pre_event_us <= delivered_us < pre_event_us + gop_us
    else:
        assert first is video[0]
    timestamps = [p.timestamp_us for p in taken]
    assert timestamps == sorted(timestamps)
    taken_audio = audio_of(taken)
    if keep_audio:
        assert taken_audio == [p for p in audio if p.timestamp_us >= first.timestamp_us]
    else:
        assert taken_audio == []
    # take() leaves the buffer as it was: the same activation again gets the same packets.
    assert buffer.take(activation_us) == taken


# --- BUF-3: the byte bound ------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    max_bytes=st.integers(1, 20_000),
    keyframe_bytes=st.integers(4, 3000),
    delta_bytes=st.integers(4, 300),
    keyframe_interval_s=st.sampled_from([0.5, 1, 2]),
)
def test_byte_bound_is_never_exceeded_and_drops_whole_gops(max_bytes, keyframe_bytes, delta_bytes, keyframe_interval_s):
    buffer = PreEventBuffer(30, max_bytes, keep_audio=True)
    video, _ = camera(30, keyframe_interval_s, 20 * S, keyframe_bytes=keyframe_bytes, delta_bytes=delta_bytes)
    audio = [audio_packet(i, size=20) for i in range(20 * S // AUDIO_FRAME_US)]
    arrivals = sorted(video + audio, key=lambda p: (p.timestamp_us, p.kind == "audio"))
    for packet in arrivals:
        buffer.append(packet)
        assert buffer.bytes_held <= max_bytes
    whole_run_bytes = sum(len(p.data) for p in arrivals)
    assert (buffer.dropped_for_bytes > 0) == (whole_run_bytes > max_bytes)
    taken = buffer.take(20 * S)
    assert sum(len(p.data) for p in taken) <= max_bytes
    taken_video = video_of(taken)
    if taken_video:
        assert taken[0].keyframe and taken[0].kind == "video"
        assert_contiguous(taken_video)


def test_byte_bound_drops_oldest_gops_and_counts_them():
    # 1 s GOPs of 400 + 29 * 40 = 1560 bytes; room for three and a bit.
    buffer = PreEventBuffer(30, 5000)
    video, _ = camera(30, 1, 10 * S - 1)
    feed(buffer, video)
    taken = buffer.take(10 * S)
    assert taken == video[7 * 30 :]  # the last three GOPs: 7 s, 8 s, 9 s
    assert buffer.dropped_for_bytes == 7 * 30


def test_gop_larger_than_the_bound_is_skipped_until_the_next_keyframe():
    buffer = PreEventBuffer(30, 1000)
    video, _ = camera(30, 1, 1 * S + 10 * S // 30)  # a 1560-byte GOP, then 11 frames of the next
    for packet in video:
        buffer.append(packet)
        assert buffer.bytes_held <= 1000
    # The first GOP went when it outgrew the bound, and its remaining frames with it.
    assert buffer.dropped_for_bytes == 30
    assert buffer.take(2 * S) == video[30:]


# --- audio (BUF-1 policy switch) --------------------------------------------------


def test_audio_is_dropped_by_default():
    buffer = PreEventBuffer(5, BIG)
    buffer.append(video_packet(0, 30, 30))
    buffer.append(audio_packet(0))
    assert buffer.bytes_held == 400
    assert buffer.take(1 * S) == [video_packet(0, 30, 30)]


def test_audio_captured_after_a_keyframe_but_arriving_before_it_is_kept():
    # The video encoder's latency lets audio stamped after the keyframe arrive first.
    buffer = PreEventBuffer(0, BIG, keep_audio=True)
    early = MediaPacket("audio", b"a0", 990 * MS, AUDIO_FRAME_US, True)
    late_stamped = MediaPacket("audio", b"a1", 1010 * MS, AUDIO_FRAME_US, True)
    keyframe = MediaPacket("video", b"k", 1000 * MS, 33 * MS, True)
    delta = MediaPacket("video", b"d", 1033 * MS, 33 * MS, False)
    feed(buffer, [video_packet(0, 30, 30), early, late_stamped, keyframe, delta])
    assert buffer.take(1100 * MS) == [keyframe, late_stamped, delta]


def test_audio_only_buffer_keeps_the_pre_event_by_frames():
    # Camera lost (FLT-1): audio alone still gives the configured pre-event.
    buffer = PreEventBuffer(2, BIG, keep_audio=True, activation_slack_us=0)
    audio = [audio_packet(i) for i in range(10 * S // AUDIO_FRAME_US)]
    feed(buffer, audio)
    activation_us = audio[-1].timestamp_us
    taken = buffer.take(activation_us)
    assert taken[0].timestamp_us <= activation_us - 2 * S < taken[1].timestamp_us
    assert taken == audio[-len(taken) :]


# --- BUF-4 and housekeeping -------------------------------------------------------


def test_take_keeps_the_buffer_so_a_second_activation_gets_full_pre_event():
    buffer = PreEventBuffer(2, BIG)
    video, _ = camera(30, 1, 8 * S - 1)
    feed(buffer, video[:45])
    assert buffer.take(1500 * MS) == video[:45]
    held = buffer.bytes_held
    assert held > 0
    # Recording goes on (the recorder keeps feeding the buffer), then a stop and a
    # new activation at 6 s: its pre-event reaches back 2 s, into the first event.
    feed(buffer, video[45:190])
    second = buffer.take(6 * S)
    assert second[0] == video[120] and second[0].keyframe   # newest keyframe <= 4 s
    assert second == video[120:190]


def test_bytes_held_and_duration():
    buffer = PreEventBuffer(30, BIG)
    assert buffer.duration_us == 0 and buffer.bytes_held == 0
    video, _ = camera(30, 1, 2 * S - 1)
    feed(buffer, video)
    assert buffer.bytes_held == 2 * (400 + 29 * 40)
    assert buffer.duration_us == video[-1].timestamp_us + video[-1].duration_us


def test_unknown_packet_kind_is_rejected():
    buffer = PreEventBuffer(5, BIG)
    with pytest.raises(ValueError, match="kind"):
        buffer.append(MediaPacket("subtitle", b"x", 0, 1, True))


# --- after a camera loss: nothing older than pre-event + one keyframe interval ---------


def _stream_with_gaps(fps, gop_frames, run_us, gaps, keep_audio):
    """Video (keyframe every gop_frames; a fresh keyframe after each gap, as a camera
    that restarts) and audio, both silent in each (start_us, end_us) gap of the video
    only; in arrival order."""
    def lost(t_us):
        return any(a <= t_us < b for a, b in gaps)

    video, index, since_key = [], 0, None
    while index * S // fps <= run_us:
        t_us = index * S // fps
        if lost(t_us):
            since_key = None
        else:
            keyframe = since_key is None or since_key >= gop_frames
            since_key = 1 if keyframe else since_key + 1
            data = index.to_bytes(4, "big") + bytes(4)
            video.append(MediaPacket("video", data, t_us, S // fps, keyframe))
        index += 1
    audio = [audio_packet(i, size=8) for i in range(run_us // AUDIO_FRAME_US + 1)] if keep_audio else []
    return sorted(video + audio, key=lambda p: (p.timestamp_us, p.kind != "video"))


@settings(max_examples=150, deadline=None)
@given(
    fps=st.sampled_from([15, 30]),
    keyframe_interval_s=st.sampled_from([0.5, 1, 2, 4]),
    pre_event_s=st.integers(0, 10),
    gaps=st.lists(st.tuples(st.integers(0, 60 * S), st.integers(1, 40 * S)), max_size=3),
    run_s=st.integers(1, 70),
    activation_back_us=st.integers(0, DEFAULT_ACTIVATION_SLACK_US),
    keep_audio=st.booleans(),
    configured=st.booleans(),
)
def test_take_never_reaches_back_more_than_pre_event_plus_one_keyframe_interval(
    fps, keyframe_interval_s, pre_event_s, gaps, run_s, activation_back_us, keep_audio, configured
):
    run_us = run_s * S
    gaps = [(start, start + length) for start, length in gaps]
    packets = _stream_with_gaps(fps, max(1, round(keyframe_interval_s * fps)), run_us, gaps, keep_audio)
    buffer = PreEventBuffer(pre_event_s, BIG, keep_audio=keep_audio,
                            keyframe_interval_s=keyframe_interval_s if configured else None)
    feed(buffer, packets)
    activation_us = max(0, run_us - activation_back_us)
    taken = buffer.take(activation_us)
    frame_us = S // fps
    # One keyframe interval is the stream's own: a GOP of whole frames can be a little
    # longer than the nominal interval (8 frames at 15 fps for 0.5 s is 0.533 s).
    gop_us = round(max(1, round(keyframe_interval_s * fps)) * S / fps) + 1
    interval_us = max(round(keyframe_interval_s * S), gop_us, 0 if configured else 2 * S)
    if taken:
        delivered_us = activation_us - taken[0].timestamp_us
        assert delivered_us < pre_event_s * S + interval_us + frame_us, (delivered_us, gaps)
        assert taken[0].kind == "audio" or taken[0].keyframe
        timestamps = [p.timestamp_us for p in taken]
        assert timestamps == sorted(timestamps)
        taken_video = video_of(taken)
        if taken_video:
            # Whatever video is handed over runs without a hole to the newest frame.
            assert taken_video[0].keyframe and taken_video[-1] is video_of(packets)[-1]
    video = video_of(packets)
    flowing = video and not any(a < activation_us and b > activation_us - pre_event_s * S - interval_us
                                for a, b in gaps)
    if flowing and activation_us >= pre_event_s * S + interval_us:
        # No gap anywhere near: BUF-2 exactly, from a keyframe.
        delivered_us = activation_us - taken[0].timestamp_us
        assert taken[0].kind == "video" and pre_event_s * S <= delivered_us < pre_event_s * S + interval_us


def test_a_keyframe_from_before_a_long_loss_is_not_handed_over():
    # Two minutes without a frame: the last GOP before the loss is not "pre-event".
    buffer = PreEventBuffer(2, BIG, keep_audio=True, keyframe_interval_s=1)
    video, _ = camera(30, 1, 10 * S - 1)
    audio = [audio_packet(i) for i in range(131 * S // AUDIO_FRAME_US)]
    feed(buffer, sorted(video + audio, key=lambda p: p.timestamp_us))
    activation_us = 130 * S
    taken = buffer.take(activation_us)
    assert video_of(taken) == []
    assert taken[0].timestamp_us <= activation_us - 2 * S < taken[0].timestamp_us + AUDIO_FRAME_US
    assert taken == [p for p in audio if p.timestamp_us >= taken[0].timestamp_us]


def test_after_a_loss_video_starts_at_the_first_keyframe_after_the_cutoff():
    # The camera came back 1 s before the press (pre-event 2 s): the old GOP goes,
    # audio starts at the cutoff and the video at the keyframe on reconnection.
    buffer = PreEventBuffer(2, BIG, keep_audio=True, keyframe_interval_s=1)
    before, _ = camera(30, 1, 5 * S - 1)
    back = [MediaPacket("video", b"k", 59 * S, S // 30, True), MediaPacket("video", b"d", 59 * S + S // 30, S // 30, False)]
    audio = [audio_packet(i) for i in range(60 * S // AUDIO_FRAME_US)]
    feed(buffer, sorted(before + back + audio, key=lambda p: p.timestamp_us))
    taken = buffer.take(60 * S)
    assert taken[0].kind == "audio" and taken[0].timestamp_us <= 58 * S < taken[0].timestamp_us + AUDIO_FRAME_US
    assert video_of(taken) == back


def test_audio_only_after_a_microphone_gap_starts_after_the_gap():
    # With no audio frame holding the cutoff, the first after it (never one from before a gap).
    buffer = PreEventBuffer(2, BIG, keep_audio=True, activation_slack_us=0)
    early = [audio_packet(i) for i in range(S // AUDIO_FRAME_US)]
    late = [audio_packet(i) for i in range(20 * S // AUDIO_FRAME_US, 21 * S // AUDIO_FRAME_US)]
    feed(buffer, early + late)
    assert buffer.take(21 * S) == late


def test_keyframe_interval_must_be_positive():
    with pytest.raises(ValueError):
        PreEventBuffer(1, BIG, keyframe_interval_s=0)
