"""PiCamera against a spec-checked picamera2 fake (tests/pi/fake_picamera2.py)."""
from __future__ import annotations

import inspect
import re
from fractions import Fraction

import av
import numpy as np
import pytest

import fake_picamera2 as fake
from hal.media import MediaPacket
from hal.pi import BackendUnavailable
from hal.pi.camera import (FrameConverter, PiCamera, PiCameraError, Picamera2Api, check_annexb_access_unit,
                           load_picamera2_api)
from simulator.clock import VirtualClock

CLOCK_START_US = 7_000_000
SENSOR_NOW_US = 123_000_000  # CLOCK_MONOTONIC when start() maps the clocks
OFFSET_US = CLOCK_START_US - SENSOR_NOW_US
# Methods of the fake that drive it from tests; they are not picamera2 API.
TEST_DRIVERS = {"Encoder.deliver", "Encoder._emit", "H264Encoder._emit", "LibavH264Encoder._emit"}
FAKE_CLASSES = {"Picamera2": fake.Picamera2, "Encoder": fake.Encoder, "H264Encoder": fake.H264Encoder,
                "LibavH264Encoder": fake.LibavH264Encoder, "Output": fake.Output}


def params_only(signature: inspect.Signature) -> str:
    """A signature as text without annotations, so fake and real compare on parameters."""
    params = [p.replace(annotation=inspect.Parameter.empty) for p in signature.parameters.values()]
    return str(signature.replace(parameters=params, return_annotation=inspect.Signature.empty))


@pytest.fixture(autouse=True)
def clean_fake(monkeypatch):
    fake.CALLS.clear()
    fake.Picamera2.instances.clear()
    monkeypatch.setattr(fake, "CAMERAS_PRESENT", 1)


@pytest.fixture(params=["H264Encoder", "LibavH264Encoder"])
def api(request) -> Picamera2Api:
    # picamera2.encoders.H264Encoder is the V4L2 encoder on a Pi 4 and the libav one on a Pi 5.
    return Picamera2Api(Picamera2=fake.Picamera2, H264Encoder=getattr(fake, request.param),
                        Output=fake.Output)


def make_camera(api: Picamera2Api, *, fps: int = 30, keyframe_interval_s: float = 1.0) -> PiCamera:
    return PiCamera(width=640, height=360, fps=fps, keyframe_interval_s=keyframe_interval_s,
                    bitrate_bps=2_000_000, clock=VirtualClock(start_monotonic_us=CLOCK_START_US),
                    picamera2_api=api, sensor_clock_us=lambda: SENSOR_NOW_US)


@pytest.fixture(scope="module")
def h264_frames() -> list[tuple[bytes, bool]]:
    """Six real H.264 access units (keyframe every third), Annex B with repeated headers."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = 64, 64, "yuv420p"
    codec.time_base = Fraction(1, 30)
    codec.gop_size = 3
    codec.options = {"preset": "ultrafast", "tune": "zerolatency"}
    frames = []
    for i in range(6):
        picture = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 30, np.uint8), format="rgb24")
        picture = picture.reformat(format="yuv420p")
        picture.pts = i
        frames += [(bytes(p), p.is_keyframe) for p in codec.encode(picture)]
    return frames


# ---- the fake is the real API --------------------------------------------------

def test_fake_mirrors_real_picamera2_signatures():
    for name, expected in fake.REAL_SIGNATURES.items():
        class_name, method = name.split(".")
        assert params_only(inspect.signature(getattr(FAKE_CLASSES[class_name], method))) == expected, name


def test_fake_has_no_methods_picamera2_lacks():
    for class_name, cls in FAKE_CLASSES.items():
        for attr, value in vars(cls).items():
            if callable(value) and (not attr.startswith("_") or attr == "__init__"):
                qualified = f"{class_name}.{attr}"
                assert qualified in fake.REAL_SIGNATURES or qualified in TEST_DRIVERS, qualified


def test_real_picamera2_matches_the_fake_where_installed():
    picamera2 = pytest.importorskip("picamera2", reason="real picamera2 only exists on Raspberry Pi OS")
    from picamera2.encoders import encoder, h264_encoder, libav_h264_encoder
    from picamera2.outputs import Output

    real = {"Picamera2": picamera2.Picamera2, "Encoder": encoder.Encoder,
            "H264Encoder": h264_encoder.H264Encoder,
            "LibavH264Encoder": libav_h264_encoder.LibavH264Encoder, "Output": Output}
    for name, expected in fake.REAL_SIGNATURES.items():
        class_name, method = name.split(".")
        actual = params_only(inspect.signature(getattr(real[class_name], method)))
        # libcamera.Transform's repr is not its constructor call; compare the rest.
        assert same_but_transform(actual) == same_but_transform(expected), name


def same_but_transform(signature_text: str) -> str:
    return re.sub(r"transform=[^,]+", "transform=<libcamera.Transform>", signature_text)


def test_every_call_pi_camera_makes_binds_to_the_real_signature(api, h264_frames):
    camera = make_camera(api)
    camera.start(lambda packet: None)
    next(iter(fake.Picamera2.instances[-1].encoders)).deliver(1_000, *h264_frames[0])
    camera.stop()
    assert fake.CALLS, "PiCamera made no picamera2 calls"
    for qualname, args, kwargs in fake.CALLS:
        class_name, method = qualname.split(".")
        assert qualname in fake.REAL_SIGNATURES, f"PiCamera called {qualname}, which picamera2 lacks"
        inspect.signature(getattr(FAKE_CLASSES[class_name], method)).bind(None, *args, **kwargs)


def test_our_output_subclasses_picamera2_output_with_the_same_outputframe(api):
    camera = make_camera(api)
    camera.start(lambda packet: None)
    output = next(iter(fake.Picamera2.instances[-1].encoders)).output
    camera.stop()
    assert isinstance(output, fake.Output)
    assert inspect.signature(type(output).outputframe) == inspect.signature(fake.Output.outputframe)


# ---- behaviour -----------------------------------------------------------------

def test_encoder_and_stream_are_configured_from_the_settings(api):
    camera = make_camera(api, fps=25, keyframe_interval_s=2.0)
    camera.start(lambda packet: None)
    picam2 = fake.Picamera2.instances[-1]
    encoder = next(iter(picam2.encoders))
    assert (encoder.bitrate, encoder.repeat, encoder.iperiod, encoder.framerate) == (2_000_000, True, 50, 25)
    assert picam2.camera_config["main"] == {"format": "YUV420", "size": (640, 360)}
    assert picam2.camera_config["controls"] == {"FrameRate": 25}
    assert picam2.started
    camera.stop()
    assert not picam2.is_open


def test_video_format_reports_the_keyframe_interval_the_encoder_really_uses(api):
    # 25 fps x 1.02 s rounds to 26 frames = 1.04 s: BUF-2's bound must use 1.04.
    fmt = make_camera(api, fps=25, keyframe_interval_s=1.02).video_format
    assert (fmt.width, fmt.height, fmt.fps, fmt.keyframe_interval_s) == (640, 360, 25, 1.04)
    assert fmt.codec == "h264"


def test_frames_become_packets_with_capture_time_on_the_monotonic_clock(api, h264_frames):
    packets: list[MediaPacket] = []
    camera = make_camera(api)
    camera.start(packets.append)
    encoder = next(iter(fake.Picamera2.instances[-1].encoders))
    sensor_times_us = [SENSOR_NOW_US + 40_000 + i * 33_333 for i in range(len(h264_frames))]
    for sensor_us, (data, keyframe) in zip(sensor_times_us, h264_frames):
        encoder.deliver(sensor_us, data, keyframe)
    camera.stop()

    assert [p.data for p in packets] == [data for data, _ in h264_frames]
    assert [p.keyframe for p in packets] == [True, False, False, True, False, False]
    assert [p.timestamp_us for p in packets] == [t + OFFSET_US for t in sensor_times_us]
    assert all(p.kind == "video" and p.duration_us == 33_333 for p in packets)


def test_stop_is_idempotent_and_restart_opens_a_fresh_camera(api, h264_frames):
    first_run, second_run = [], []
    camera = make_camera(api)
    camera.start(first_run.append)
    old_encoder = next(iter(fake.Picamera2.instances[-1].encoders))
    camera.stop()
    camera.stop()
    with pytest.raises(AssertionError, match="stopped encoder"):
        old_encoder.deliver(1, *h264_frames[0])
    camera.start(second_run.append)
    assert len(fake.Picamera2.instances) == 2
    next(iter(fake.Picamera2.instances[-1].encoders)).deliver(5, *h264_frames[0])
    camera.stop()
    assert (len(first_run), len(second_run)) == (0, 1)


def test_starting_twice_is_an_error(api):
    camera = make_camera(api)
    camera.start(lambda packet: None)
    with pytest.raises(PiCameraError, match="already started"):
        camera.start(lambda packet: None)
    camera.stop()


def test_missing_camera_gives_a_clear_error(api, monkeypatch):
    monkeypatch.setattr(fake, "CAMERAS_PRESENT", 0)
    with pytest.raises(PiCameraError, match=r"camera 0 could not be opened.*rpicam-hello"):
        make_camera(api).start(lambda packet: None)


def test_keyframe_without_sps_or_non_annexb_data_is_refused(h264_frames):
    keyframe, _ = h264_frames[0]
    check_annexb_access_unit(keyframe, True)
    check_annexb_access_unit(h264_frames[1][0], False)
    idr_only = keyframe[keyframe.index(b"\x00\x00\x01\x65"):]  # from the IDR slice's start code on
    with pytest.raises(PiCameraError, match="without SPS"):
        check_annexb_access_unit(idr_only, True)
    with pytest.raises(PiCameraError, match="not Annex B"):
        check_annexb_access_unit(b"\x00\x00\x00\x20" + keyframe[4:], False)


def test_frames_breaking_the_contract_are_refused_not_guessed(h264_frames):
    encoder = fake.H264Encoder()
    converter = FrameConverter(lambda packet: None, encoder, offset_us=0, frame_duration_us=33_333)
    with pytest.raises(PiCameraError, match="without a sensor timestamp"):
        converter(h264_frames[0][0], True, 0, False)       # firsttimestamp never set
    encoder.firsttimestamp = 1
    with pytest.raises(PiCameraError, match="delivered audio"):
        converter(b"", True, 0, True)


def test_without_picamera2_loading_the_api_says_what_to_install():
    try:
        import picamera2  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("picamera2 is installed here")
    with pytest.raises(BackendUnavailable, match=r"apt install python3-picamera2"):
        load_picamera2_api()
