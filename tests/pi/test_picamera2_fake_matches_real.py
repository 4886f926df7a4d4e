"""tests/pi/fake_picamera2.py (still used by test_pi_board) against the real picamera2 0.3.38.

The camera tests run the real picamera2; the fake survives only for board
tests that need no frames. Its signature table must keep matching the real
library, so a board test can never pass on a call picamera2 would refuse.
"""
from __future__ import annotations

import inspect
import re

import fake_picamera2 as fake

FAKE_CLASSES = {"Picamera2": fake.Picamera2, "Encoder": fake.Encoder, "H264Encoder": fake.H264Encoder,
                "LibavH264Encoder": fake.LibavH264Encoder, "Output": fake.Output}
TEST_DRIVERS = {"Encoder.deliver", "Encoder._emit", "H264Encoder._emit", "LibavH264Encoder._emit"}


def params_only(signature: inspect.Signature) -> str:
    params = [p.replace(annotation=inspect.Parameter.empty) for p in signature.parameters.values()]
    return str(signature.replace(parameters=params, return_annotation=inspect.Signature.empty))


def same_but_transform(signature_text: str) -> str:
    # libcamera.Transform's repr is not its constructor call; compare the rest.
    return re.sub(r"transform=[^,]+", "transform=<libcamera.Transform>", signature_text)


def test_the_fakes_signatures_are_the_real_picamera2s():
    import picamera2
    from picamera2.encoders import encoder, h264_encoder, libav_h264_encoder
    from picamera2.outputs import Output

    real = {"Picamera2": picamera2.Picamera2, "Encoder": encoder.Encoder, "H264Encoder": h264_encoder.H264Encoder,
            "LibavH264Encoder": libav_h264_encoder.LibavH264Encoder, "Output": Output}
    for name, expected in fake.REAL_SIGNATURES.items():
        class_name, method = name.split(".")
        actual = params_only(inspect.signature(getattr(real[class_name], method)))
        assert same_but_transform(actual) == same_but_transform(expected), name
        faked = params_only(inspect.signature(getattr(FAKE_CLASSES[class_name], method)))
        assert same_but_transform(faked) == same_but_transform(expected), name


def test_the_fake_has_no_methods_picamera2_lacks():
    for class_name, cls in FAKE_CLASSES.items():
        for attr, value in vars(cls).items():
            if callable(value) and (not attr.startswith("_") or attr == "__init__"):
                qualified = f"{class_name}.{attr}"
                assert qualified in fake.REAL_SIGNATURES or qualified in TEST_DRIVERS, qualified
