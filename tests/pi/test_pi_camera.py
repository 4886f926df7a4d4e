"""PiCamera through the real picamera2 0.3.38 on stub libcamera (tests/pi/picamera2_env.py).

Both encoder paths run picamera2's own code: its V4L2 H264Encoder (poll thread,
buffer queueing) against a fake /dev/video11 that encodes with libx264, and its
LibavH264Encoder (PyAV encoding in the camera event loop). Every packet is
decoded back and the frame's bar code says which sensor frame it was, so the
timestamp mapping is checked frame by frame.
"""
from __future__ import annotations

import logging
import threading
import time

import av
import numpy as np
import pytest

import picamera2_env
from hal.media import MediaPacket
from libcamera import read_sequence  # the stub's: which sensor frame a decoded picture is
from hal.pi.camera import PiCamera, PiCameraError, check_annexb_access_unit
from simulator.clock import VirtualClock

CLOCK_START_US = 7_000_000
SENSOR_NOW_US = 123_000_000  # CLOCK_MONOTONIC as start() reads it (injected)
OFFSET_US = CLOCK_START_US - SENSOR_NOW_US
FPS = 30
IPERIOD_FRAMES = 15
MONITOR_TIMEOUT_S = 0.5      # policy.camera_timeout_s: the monitor calls a camera lost after this


@pytest.fixture(autouse=True)
def stub_camera():
    # 4x real time: a test second holds 4 s of sensor frames, timestamps keep 30 fps spacing.
    picamera2_env.configure(cameras=1, speedup=4)
    yield picamera2_env.sensor(0)


@pytest.fixture(params=["v4l2", "libav"])
def encoder(request) -> str:
    return request.param


def make_camera(encoder: str, **overrides) -> PiCamera:
    settings = dict(width=320, height=240, fps=FPS, keyframe_interval_s=IPERIOD_FRAMES / FPS,
                    bitrate_bps=1_000_000, clock=VirtualClock(start_monotonic_us=CLOCK_START_US),
                    picamera2_api=picamera2_env.api(encoder), sensor_clock_us=lambda: SENSOR_NOW_US)
    return PiCamera(**settings | overrides)


def wait_for(predicate, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def record(camera: PiCamera, packets: int) -> list[MediaPacket]:
    received: list[MediaPacket] = []
    camera.start(received.append)
    try:
        wait_for(lambda: len(received) >= packets)
    finally:
        camera.stop()
    return received


def decode(packets: list[MediaPacket]) -> list[np.ndarray]:
    """The luma plane of every frame, decoding from the first packet on."""
    codec = av.CodecContext.create("h264", "r")
    frames = []
    for packet in packets:
        frames += [f.to_ndarray(format="gray") for f in codec.decode(av.Packet(packet.data))]
    frames += [f.to_ndarray(format="gray") for f in codec.decode(None)]
    return frames


def nal_types_before_first_slice(data: bytes) -> list[int]:
    types, position = [], 0
    while (position := data.find(b"\x00\x00\x01", position)) != -1 and position + 3 < len(data):
        types.append(data[position + 3] & 0x1F)
        if types[-1] in (1, 5):
            break
        position += 3
    return types


# ---- what reaches the card ---------------------------------------------------------

def test_packets_decode_to_the_sensor_frames_with_capture_times_on_our_clock(encoder, stub_camera):
    packets = record(make_camera(encoder), 40)
    captured_us = {sequence: capture_ns // 1000 for sequence, capture_ns in stub_camera.frames}

    frames = decode(packets)
    assert len(frames) == len(packets)
    sequences = [read_sequence(frame) for frame in frames]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
    # The module doc's mapping: sensor time (CLOCK_MONOTONIC) + the offset read at start().
    assert [p.timestamp_us for p in packets] == [captured_us[s] + OFFSET_US for s in sequences]
    assert all(p.kind == "video" and p.duration_us == 33_333 for p in packets)


def test_every_keyframe_carries_sps_and_starts_a_decodable_stream(encoder):
    packets = record(make_camera(encoder), 2 * IPERIOD_FRAMES + 1)
    keyframes = [i for i, p in enumerate(packets) if p.keyframe]
    assert keyframes[:3] == [0, IPERIOD_FRAMES, 2 * IPERIOD_FRAMES]
    for index in keyframes:
        assert nal_types_before_first_slice(packets[index].data)[:2] == [7, 8]  # SPS, PPS
        check_annexb_access_unit(packets[index].data, True)
        # A segment starts at a keyframe: it must decode with no earlier packet.
        chunk = packets[index:index + 3]
        assert len(decode(chunk)) == len(chunk)


def test_the_encoder_is_set_up_from_the_settings():
    camera = make_camera("v4l2", fps=25, keyframe_interval_s=2.0, bitrate_bps=3_000_000)
    record(camera, 1)
    import videodev2 as v4l2
    controls = picamera2_env.encoder_devices()[-1].controls
    assert controls[v4l2.V4L2_CID_MPEG_VIDEO_BITRATE] == 3_000_000
    assert controls[v4l2.V4L2_CID_MPEG_VIDEO_H264_I_PERIOD] == 50
    assert controls[v4l2.V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER] == 1
    assert camera.video_format.keyframe_interval_s == 2.0


def test_encoder_kind_names_the_path(encoder):
    assert make_camera(encoder).encoder_kind == encoder


# ---- stop and start -------------------------------------------------------------------

def test_stop_start_cycles_give_each_sink_its_own_stream_from_a_keyframe(encoder):
    camera = make_camera(encoder)
    runs = []
    for _ in range(3):
        received: list[MediaPacket] = []
        camera.start(received.append)
        wait_for(lambda: len(received) >= 5)
        camera.stop()
        camera.stop()  # twice is fine
        count = len(received)
        time.sleep(0.1)
        assert len(received) == count, "a frame reached the sink after stop()"
        runs.append(received)
    for received in runs:
        assert received[0].keyframe and len(decode(received)) == len(received)
    assert not camera.stuck()


def test_starting_twice_is_an_error():
    camera = make_camera("libav")
    camera.start(lambda packet: None)
    try:
        with pytest.raises(PiCameraError, match="already started"):
            camera.start(lambda packet: None)
    finally:
        camera.stop()


# ---- failures ------------------------------------------------------------------------

def test_a_sink_that_raises_stops_frames_not_picamera2(encoder, caplog):
    calls = []

    def failing_sink(packet):
        calls.append(packet)
        if len(calls) == 3:
            raise ValueError("recorder refused the packet")

    camera = make_camera(encoder)
    camera.start(failing_sink)
    wait_for(lambda: len(calls) >= 3)
    time.sleep(MONITOR_TIMEOUT_S + 0.1)
    assert len(calls) == 3, "frames kept coming after the callback failed: the monitor would not notice"
    began = time.monotonic()
    camera.stop()  # picamera2's threads are alive, so it stops promptly
    assert time.monotonic() - began < 2.0 and not camera.stuck()
    failures = [r for r in caplog.records if "recorder refused the packet" in r.getMessage()]
    assert len(failures) == 1 and "\n" not in failures[0].getMessage()

    assert len(record(camera, 5)) >= 5  # the monitor's restart brings frames back


def test_a_camera_that_stops_delivering_is_seen_and_restarted(encoder, stub_camera):
    received: list[MediaPacket] = []
    camera = make_camera(encoder)
    camera.start(received.append)
    wait_for(lambda: len(received) >= 3)
    stub_camera.stall()
    time.sleep(0.3)  # frames in flight drain
    count = len(received)
    time.sleep(MONITOR_TIMEOUT_S + 0.1)
    assert len(received) == count
    began = time.monotonic()
    camera.stop()
    assert time.monotonic() - began < 2.0 and not camera.stuck()
    stub_camera.stall(False)
    assert record(camera, 5)[0].keyframe


def test_a_stop_that_never_returns_is_abandoned_and_reported_stuck(encoder, stub_camera, caplog):
    camera = make_camera(encoder, stop_timeout_s=0.5)
    camera.start(lambda packet: None)
    stub_camera.wedge_stop()
    try:
        began = time.monotonic()
        camera.stop()
        assert 0.5 <= time.monotonic() - began < 2.0
        assert camera.stuck()
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and "did not return within 0.5 s" in errors[0] and "\n" not in errors[0]
        with pytest.raises(PiCameraError, match="stuck inside picamera2.*restart"):
            camera.start(lambda packet: None)
    finally:
        stub_camera.wedge_stop(False)
        wait_for(lambda: not any(t.name.startswith("picamera2-stop") for t in threading.enumerate()))


def test_no_camera_present_is_one_line_naming_the_camera():
    picamera2_env.configure(cameras=0)
    with pytest.raises(PiCameraError) as raised:
        make_camera("v4l2").start(lambda packet: None)
    message = str(raised.value)
    assert message.startswith("camera 0 could not be opened (RuntimeError: No camera number 0 found")
    assert "rpicam-hello" in message and "\n" not in message


def test_a_camera_held_by_another_program_is_one_line_with_the_cause():
    from picamera2 import Picamera2
    other = Picamera2(0)  # e.g. rpicam-hello left running
    try:
        with pytest.raises(PiCameraError) as raised:
            make_camera("v4l2").start(lambda packet: None)
    finally:
        other.close()
    assert "Failed to acquire camera: Device or resource busy" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_an_encoder_that_cannot_open_names_the_step_and_the_next_start_is_fresh(monkeypatch):
    from pi_kernel import v4l2_m2m

    def missing_device(self):
        raise FileNotFoundError(2, "No such file or directory", "/dev/video11")

    camera = make_camera("v4l2")
    with monkeypatch.context() as patch:
        patch.setattr(v4l2_m2m.FakeH264M2MDevice, "__init__", missing_device)
        with pytest.raises(PiCameraError) as raised:
            camera.start(lambda packet: None)
    assert str(raised.value) == (
        "camera 0 did not start recording: starting the v4l2 H.264 encoder and the camera failed "
        "(FileNotFoundError: [Errno 2] No such file or directory: '/dev/video11')")
    assert record(camera, 3)[0].keyframe  # the failed session released the camera


# ---- the packet contract ----------------------------------------------------------------

@pytest.fixture(scope="module")
def h264_frames() -> list[tuple[bytes, bool]]:
    """Real access units from picamera2's V4L2 path: a keyframe, then a P frame."""
    picamera2_env.configure(cameras=1, speedup=4)
    packets = record(make_camera("v4l2"), 2)
    return [(p.data, p.keyframe) for p in packets[:2]]


def test_keyframe_without_sps_or_non_annexb_data_is_refused(h264_frames):
    (keyframe, _), (delta, _) = h264_frames
    check_annexb_access_unit(keyframe, True)
    check_annexb_access_unit(delta, False)
    idr_only = keyframe[keyframe.index(b"\x00\x00\x01\x65"):]  # from the IDR slice's start code on
    with pytest.raises(PiCameraError, match="without SPS"):
        check_annexb_access_unit(idr_only, True)
    with pytest.raises(PiCameraError, match="not Annex B"):
        check_annexb_access_unit(b"\x00\x00\x00\x20" + keyframe[4:], False)


@pytest.mark.parametrize("frame, keyframe, timestamp, audio, cause", [
    ("idr_only", True, 0, False, "keyframe without SPS/PPS"),
    ("keyframe", True, None, False, "without a sensor timestamp"),
    ("keyframe", True, 0, True, "delivered audio"),
])
def test_a_frame_breaking_the_contract_is_logged_once_and_the_session_drops_frames(
        h264_frames, caplog, frame, keyframe, timestamp, audio, cause):
    from types import SimpleNamespace

    from hal.pi.camera import FrameConverter
    data = h264_frames[0][0]
    frames = {"keyframe": data, "idr_only": data[data.index(b"\x00\x00\x01\x65"):]}
    received = []
    converter = FrameConverter(received.append, SimpleNamespace(firsttimestamp=5), offset_us=0,
                               frame_duration_us=33_333)
    converter(frames[frame], keyframe, timestamp, audio)   # never raises into picamera2's thread
    converter(data, True, 33_333, False)                   # a good frame after it is dropped too
    assert received == [] and cause in converter.failure
    assert [r.getMessage() for r in caplog.records if cause in r.getMessage()] != []
    assert len(caplog.records) == 1


def test_starts_that_fail_at_the_camera_leave_no_encoder_thread_or_fd_behind(encoder, monkeypatch):
    """picamera2 starts the encoder before the camera; its close() does not stop an encoder.
    The monitor retries a camera that will not start every few seconds for a whole shift."""
    import gc
    import os
    import threading

    from libcamera import camera as stub_camera_module

    def refuse(self, controls_=None):
        raise RuntimeError("Failed to start camera")

    camera = make_camera(encoder)
    with monkeypatch.context() as patch:
        patch.setattr(stub_camera_module.Camera, "start", refuse)
        with pytest.raises(PiCameraError):   # the first one may load codecs for good
            camera.start(lambda packet: None)
        gc.collect()
        threads, fds = threading.active_count(), len(os.listdir("/proc/self/fd"))
        for _ in range(5):
            with pytest.raises(PiCameraError, match="Failed to start camera"):
                camera.start(lambda packet: None)
        wait_for(lambda: threading.active_count() <= threads)
        gc.collect()   # a failed session's buffers are freed with its traceback's reference cycle
        assert len(os.listdir("/proc/self/fd")) <= fds
    assert record(camera, 3)[0].keyframe and not camera.stuck()
