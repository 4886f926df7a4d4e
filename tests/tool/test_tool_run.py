"""`bwc run`: recording on the simulator, the Pi backend's refusal here, and bad inputs."""
from __future__ import annotations

import importlib.util
import re
import wave
from fractions import Fraction

import av
import numpy as np
import pytest

pytestmark = pytest.mark.tool

SEGMENT = re.compile(r"seg-\d{10}\.bwc")


def segments(storage) -> list[str]:
    return sorted(p.name for p in storage.iterdir() if SEGMENT.fullmatch(p.name)) if storage.exists() else []


def test_run_sim_records_the_scenario(recording):
    r = recording.result
    assert r.returncode == 0, str(r)
    assert "2 event(s) recorded" in r.stdout and str(recording.storage) in r.stdout
    assert str(recording.scenario) in r.stdout
    assert r.stderr == ""
    assert len(segments(recording.storage)) >= 2
    assert (recording.storage / "audit-0000000001.log").is_file()


def test_run_sim_honours_storage(bwc, fresh_device, tmp_path, tiny_scenario):
    storage = tmp_path / "card"
    r = bwc("run", "--device", fresh_device.dir, "--hal", "sim", "--scenario", tiny_scenario, "--storage", storage)
    assert r.returncode == 0, str(r)
    assert "1 event(s) recorded" in r.stdout
    assert segments(storage)
    assert not fresh_device.storage.exists()


def test_run_pi_where_picamera2_cannot_reach_libcamera_says_so_in_one_line(bwc, fresh_device, tmp_path):
    # The test extra installs the real picamera2 from PyPI; libcamera's bindings exist only on
    # Raspberry Pi OS (the stubs in tests/pi are not on this path).
    r = bwc("run", "--device", fresh_device.dir, "--hal", "pi", "--storage", tmp_path / "card")
    assert r.returncode == 2, str(r)
    assert r.stderr.startswith("bwc run --hal pi: picamera2 is installed but cannot load libcamera")
    assert "apt install python3-picamera2" in r.stderr and r.stderr.count("\n") == 1
    assert not segments(tmp_path / "card")


def test_run_with_a_device_dir_that_is_not_provisioned(bwc, tmp_path):
    r = bwc("run", "--device", tmp_path / "nothing", "--hal", "sim")
    assert r.returncode == 2, str(r)
    assert "device.json" in r.stderr and "bwc provision" in r.stderr


def test_run_with_a_missing_scenario_file(bwc, fresh_device, tmp_path):
    r = bwc("run", "--device", fresh_device.dir, "--hal", "sim", "--scenario", tmp_path / "nope.toml")
    assert r.returncode == 2, str(r)
    assert f"{tmp_path / 'nope.toml'}: no such scenario file" in r.stderr
    assert not fresh_device.storage.exists()


# --- malformed scenarios: exit 2, the file, the line and the key, never a traceback -----------

HEAD = 'duration_s = 4\n[camera]\nwidth = 320\nheight = 180\nfps = 10\n'

# name: (scenario text, the line the message must name (given by its text; None: no line),
#        words the message must contain)
BAD_SCENARIOS = {
    "unknown top-level key": (HEAD.replace("[camera]", "bogus = 1\n[camera]"), "bogus = 1", ["'bogus'"]),
    "bad do in 2nd [[at]]": (
        HEAD + '\n[[at]]\nt_s = 1\ndo = "button.press"\n\n[[at]]\nt_s = 2\ndo = "button.jump"\n',
        'do = "button.jump"', ["do must be one of", "'button.jump'", "[[at]] #2"]),
    "t_s beyond duration_s": (HEAD + '[[at]]\nt_s = 9\ndo = "button.press"\n', "t_s = 9",
                              ["t_s", "duration_s", "9"]),
    "TOML syntax error": ('duration_s = 4\n[camera\nwidth = 320\n', "[camera", []),
    "unknown policy key": (HEAD + '[policy]\npre_event = 3\n', "pre_event = 3", ["pre_event"]),
    "wrong type for policy.pre_event_s": (HEAD + '[policy]\npre_event_s = "ten"\n', "pre_event_s =",
                                          ["policy.pre_event_s", "'ten'"]),
    "trigger.on without name": (HEAD + '[[at]]\nt_s = 1\ndo = "trigger.on"\n', "[[at]]",
                                ["name", "trigger.on", "[[at]] #1"]),
    "unknown key in [[at]]": (HEAD + '[[at]]\nt_s = 1\ndo = "button.press"\nwhen = 2\n', "when = 2",
                              ["'when'"]),
    "unknown camera key": (HEAD + 'colour = true\n', "colour", ["camera.colour"]),
    "odd camera width": (HEAD.replace("width = 320", "width = 321"), "width = 321", ["width"]),
    "duration_s missing": ('[camera]\nwidth = 320\n', None, ["duration_s"]),
    "[[at]] hold_s not a number": (HEAD + '[[at]]\nt_s = 1\ndo = "button.hold"\nhold_s = "long"\n',
                                   "hold_s =", ["hold_s", "'long'"]),
    "pre_event_s out of range": (HEAD + '[policy]\npre_event_s = 500\n', "pre_event_s = 500", ["pre_event_s", "500"]),
}


def line_of(text: str, anchor: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), start=1) if anchor in line)


@pytest.mark.parametrize("text, anchor, words", BAD_SCENARIOS.values(), ids=BAD_SCENARIOS.keys())
def test_run_with_a_malformed_scenario(bwc, fresh_device, tmp_path, text, anchor, words):
    scenario = tmp_path / "bad.toml"
    scenario.write_text(text)
    r = bwc("run", "--device", fresh_device.dir, "--hal", "sim", "--scenario", scenario)
    assert r.returncode == 2, str(r)
    assert r.stdout == ""
    assert r.stderr.startswith(f"bwc run: {scenario}"), str(r)
    assert r.stderr.count("\n") == 1, "one line, not a dump"
    if anchor is not None:
        assert re.search(rf"\bline {line_of(text, anchor)}\b", r.stderr), str(r)
    for word in words:
        assert word in r.stderr, str(r)
    assert not fresh_device.storage.exists(), "nothing may be recorded from a bad scenario"


# --- malformed policy.toml in the device directory ------------------------------------------

BAD_POLICIES = {
    "unknown key": (b"pre_event_s = 10\nbogus_key = 1\n", 2, ["'bogus_key'"]),
    "wrong type for pre_event_s": (b"segment_s = 30\npre_event_s = \"ten\"\n", 2, ["pre_event_s", "'ten'"]),
    "TOML syntax error": (b"pre_event_s = 10\n[triggers\n", 2, []),
    "bad trigger mode": (b"[triggers]\nholster = \"sometimes\"\n", None, ["triggers.holster", "'sometimes'"]),
    "pre_event_s out of range": (b"pre_event_s = 500\n", None, ["pre_event_s", "500"]),
    "not UTF-8": (b"pre_event_s = 1\xff\n", None, ["policy.toml"]),
}


@pytest.mark.parametrize("content, line, words", BAD_POLICIES.values(), ids=BAD_POLICIES.keys())
def test_run_with_a_malformed_policy_toml(bwc, fresh_device, tiny_scenario, content, line, words):
    policy = fresh_device.dir / "policy.toml"
    policy.write_bytes(content)
    r = bwc("run", "--device", fresh_device.dir, "--hal", "sim", "--scenario", tiny_scenario)
    assert r.returncode == 2, str(r)
    assert r.stderr.startswith(f"bwc run: {policy}"), str(r)
    if line is not None:
        assert re.search(rf"\bline {line}\b", r.stderr), str(r)
    for word in words:
        assert word in r.stderr, str(r)
    assert not fresh_device.storage.exists()


def test_run_with_a_policy_toml_that_is_a_directory(bwc, fresh_device):
    policy = fresh_device.dir / "policy.toml"
    policy.unlink()
    policy.mkdir()
    r = bwc("run", "--device", fresh_device.dir, "--hal", "sim")
    assert r.returncode == 2, str(r)
    assert str(policy) in r.stderr


# --- --source -------------------------------------------------------------------------------

def _write_wav(path) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 8000)


@pytest.mark.parametrize("kind", ["text file", "audio only"])
def test_run_with_a_source_that_is_not_a_video(bwc, fresh_device, tmp_path, tiny_scenario, kind):
    source = tmp_path / ("notes.mp4" if kind == "text file" else "tone.wav")
    if kind == "text file":
        source.write_text("this is not a video\n")
    else:
        _write_wav(source)
    r = bwc("run", "--device", fresh_device.dir, "--hal", "sim", "--scenario", tiny_scenario, "--source", source)
    assert r.returncode == 2, str(r)
    assert r.stderr.startswith("bwc run: ")
    assert "source video" in r.stderr and str(source) in r.stderr
    assert not segments(fresh_device.storage)


def test_run_with_a_missing_source(bwc, fresh_device, tmp_path):
    r = bwc("run", "--device", fresh_device.dir, "--hal", "sim", "--source", tmp_path / "gone.mp4")
    assert r.returncode == 2, str(r)
    assert "--source" in r.stderr and "no such file" in r.stderr
    assert not segments(fresh_device.storage)


def _write_video(path, width=320, height=180, frames=15, fps=10) -> None:
    rng = np.random.default_rng(7)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, fps)
        for i in range(frames):
            rgb = np.zeros((height, width, 3), np.uint8)
            rgb[:, : (i + 1) * width // frames] = (200, 40, 40)
            rgb += rng.integers(0, 20, rgb.shape, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def test_run_with_a_real_source_video_records_and_verifies(bwc, fresh_device, tmp_path, tiny_scenario):
    source = tmp_path / "clip.mp4"
    _write_video(source)
    r = bwc("run", "--device", fresh_device.dir, "--hal", "sim", "--scenario", tiny_scenario, "--source", source)
    assert r.returncode == 0, str(r)
    assert "1 event(s) recorded" in r.stdout
    assert segments(fresh_device.storage)
    v = bwc("verify", fresh_device.storage, "--device-pub", fresh_device.pub)
    assert v.returncode == 0, str(v)


def test_run_refuses_a_device_key_readable_by_others(bwc, fresh_device, tiny_scenario):
    key = fresh_device.dir / "device.key"
    key.chmod(0o644)
    r = bwc("run", "--device", fresh_device.dir, "--hal", "sim", "--scenario", tiny_scenario)
    assert r.returncode == 2, str(r)
    assert "device.key" in r.stderr and "600" in r.stderr
    assert not fresh_device.storage.exists() or not any(fresh_device.storage.iterdir())
