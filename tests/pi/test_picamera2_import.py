"""load_picamera2_api() in fresh interpreters: the real picamera2 on the stubs, and what breaks it.

Each case runs in a subprocess because an import, once done, cannot be undone
in this one; it is also how `bwc doctor --hal pi` and `bwc run --hal pi` use
the stubs (picamera2_env.subprocess_env).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

import picamera2_env

LOAD_AND_RECORD = textwrap.dedent("""
    import json, time
    from hal.pi import BackendUnavailable
    from hal.pi.camera import PiCamera, load_picamera2_api
    from simulator.clock import VirtualClock
    try:
        api = load_picamera2_api()
    except BackendUnavailable as exc:
        print(json.dumps({"error": str(exc)}))
        raise SystemExit(0)
    camera = PiCamera(width=320, height=240, fps=30, keyframe_interval_s=0.5, bitrate_bps=1_000_000,
                      clock=VirtualClock(), picamera2_api=api)
    packets = []
    camera.start(packets.append)
    deadline = time.monotonic() + 10
    while len(packets) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    camera.stop()
    print(json.dumps({"kind": camera.encoder_kind, "packets": len(packets),
                      "first_keyframe": packets[0].keyframe if packets else None}))
""")


def run(env: dict) -> dict:
    done = subprocess.run([sys.executable, "-c", LOAD_AND_RECORD], env=env, capture_output=True, text=True,
                          timeout=60, cwd=os.getcwd())
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("platform, kind", [("vc4", "v4l2"), ("pisp", "libav")])
def test_picamera2_picks_the_encoder_of_the_board_and_records(platform, kind):
    # picamera2.encoders.H264Encoder is the V4L2 encoder on a Pi 4 / Zero 2 W and libav on a Pi 5.
    result = run(picamera2_env.subprocess_env(cameras=1, platform=platform, speedup=4))
    assert (result["kind"], result["first_keyframe"]) == (kind, True) and result["packets"] >= 5


def test_without_libcamera_the_error_says_what_to_install():
    env = dict(os.environ)
    env.pop(picamera2_env.ENV_VAR, None)
    env["PYTHONPATH"] = ""  # picamera2 from PyPI is there, libcamera (an apt package on Pi OS) is not
    message = run(env)["error"]
    assert message.startswith("picamera2 is installed but cannot load libcamera (No module named 'libcamera'): "
                              "the Pi backend needs Raspberry Pi OS's python3-picamera2 and python3-libcamera "
                              "(apt install python3-picamera2)")
    assert "\n" not in message


def test_a_numpy_abi_mismatch_is_one_line_pointing_at_the_install_docs(tmp_path):
    # What Bookworm's apt simplejpeg (built on numpy 1.24) raises under a venv's numpy 2.x.
    fake = tmp_path / "simplejpeg"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        'raise ValueError("numpy.dtype size changed, may indicate binary incompatibility. '
        'Expected 96 from C header, got 88 from PyObject")\n')
    env = picamera2_env.subprocess_env(cameras=1)
    env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{env['PYTHONPATH']}"
    message = run(env)["error"]
    assert message.startswith("picamera2 failed to import (ValueError: numpy.dtype size changed")
    assert message.endswith("reinstall keeping the system numpy (docs/pi.md#install)")
    assert "\n" not in message


def test_without_picamera2_at_all_the_error_says_what_to_install(monkeypatch):
    import sys

    from hal.pi import BackendUnavailable
    from hal.pi.camera import load_picamera2_api
    monkeypatch.setitem(sys.modules, "picamera2", None)   # an import of it now fails, as where it is absent
    with pytest.raises(BackendUnavailable) as raised:
        load_picamera2_api()
    assert str(raised.value).startswith("picamera2 is not installed: the Pi backend needs Raspberry Pi OS with "
                                        "python3-picamera2 (apt install python3-picamera2)")
