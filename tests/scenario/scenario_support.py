"""Helpers for the scenario tier: provision, record, export and read back the burned-in frames.

Everything here drives the real firmware on the simulator (virtual clock), through the
same entry points the `bwc` command uses; nothing is faked. Time conventions:

* The simulator's camera stamps frame k at monotonic t0 + round(k * 1e6 / fps) and burns
  that monotonic time (in ms) and the frame number into the picture (simulator/pattern.py),
  so a decoded frame tells us *which* capture it is on the device's monotonic clock, the
  same clock as `activation_monotonic_us` in the sidecar.
* With an integer fps and an integer keyframe interval, every keyframe lands on a whole
  millisecond, so the burned-in time of a keyframe is exact.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

import av
import numpy as np

from device.config import load_identity, load_policy
from device.evidence.keys import read_custodian_secret, read_device_public
from simulator.clock import DEFAULT_START_MONOTONIC_US
from simulator.pattern import read_frame
from simulator.runner import DOUBLE_PRESS_GAP_US, PRESS_US, run_scenario
from simulator.scenario import parse_scenario
from tools.export import export_storage
from tools.provision import keygen, provision

# Small pictures keep the tier fast; 320 px still gives read_frame 8 px cells.
WIDTH, HEIGHT, FPS = 320, 180, 30
BITRATE_BPS = 600_000

# Activations, markers and stops are stamped at the wearer's press (the debounced edge,
# dated at the raw edge), not when the gesture is recognised: a double press at t_s
# is stamped at its second press, PRESS_US + DOUBLE_PRESS_GAP_US later (simulator/runner.py).
DOUBLE_PRESS_TO_ACTIVATION_US = PRESS_US + DOUBLE_PRESS_GAP_US

# The virtual clock starts here and boot does not advance it, so scenario time t_s
# is monotonic DEFAULT_START_MONOTONIC_US + t_s * 1e6. Tests that rely on this also
# check it against the boot entry of the audit log.
START_US = DEFAULT_START_MONOTONIC_US


# The main recording: 1 s keyframes, 3 s pre-event, 2 s segments; a double press at
# 5 s starts the event, a short press at 7 s places a marker, a 3 s hold from 9 s
# stops it at 12 s. About 10 s of event media in five or six segments.
MAIN = {
    "keyframe_interval_s": 1,
    "pre_event_s": 3,
    "segment_s": 2,
    "double_press_t_s": 5.0,
    "marker_t_s": 7.0,
    "hold_t_s": 9.0,
    "hold_s": 3.0,
    "duration_s": 14.0,
}


def us(t_s: float) -> int:
    return round(t_s * 1_000_000)


# -- scenario files ------------------------------------------------------------------

def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def scenario_toml(duration_s: float, steps: list[dict], keyframe_interval_s: float = 1,
                  width: int = WIDTH, height: int = HEIGHT, fps: int = FPS,
                  bitrate_bps: int = BITRATE_BPS, **policy) -> str:
    """A scenario file. `policy` keys go to [policy]; a `triggers` dict to [policy.triggers]."""
    triggers = policy.pop("triggers", None)
    lines = [f"duration_s = {duration_s!r}", "", "[camera]",
             f"fps = {fps}", f"keyframe_interval_s = {keyframe_interval_s!r}",
             f"width = {width}", f"height = {height}", f"bitrate_bps = {bitrate_bps}", "", "[policy]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in policy.items()]
    if triggers:
        lines += ["", "[policy.triggers]"] + [f"{k} = {_toml_value(v)}" for k, v in triggers.items()]
    for step in steps:
        lines += ["", "[[at]]"] + [f"{k} = {_toml_value(v)}" for k, v in step.items()]
    return "\n".join(lines) + "\n"


# -- devices and recordings ----------------------------------------------------------

@dataclass(frozen=True)
class Custodian:
    secret_path: str
    public_path: str


@dataclass(frozen=True)
class Device:
    directory: str
    pub_path: str

    @property
    def storage(self) -> str:
        return os.path.join(self.directory, "storage")


def make_custodian(directory: str) -> Custodian:
    secret, public = keygen(directory)
    return Custodian(secret, public)


def make_device(directory: str, custodian: Custodian, device_id: str = "scenario-cam") -> Device:
    pub = provision(device_id, [custodian.public_path], directory)
    return Device(directory, pub)


@dataclass
class Recording:
    device: Device
    custodian: Custodian
    scenario_text: str
    start_us: int
    camera_frames: int
    export_dir: str | None = None
    mp4_path: str | None = None
    sidecar: dict | None = None
    _frames: list | None = field(default=None, repr=False)

    @property
    def storage(self) -> str:
        return self.device.storage

    def storage_files(self) -> list[str]:
        return sorted(os.listdir(self.storage))

    def segment_files(self) -> list[str]:
        return [n for n in self.storage_files() if n.startswith("seg-")]

    def audit_entries(self) -> list[dict]:
        return audit_entries(self.storage)

    @property
    def activation(self) -> dict:
        return self.sidecar["activation"]

    @property
    def frames(self) -> list["Frame"]:
        if self._frames is None:
            self._frames = decode_frames(self.mp4_path)
        return self._frames


def audit_files(storage: str) -> list[str]:
    """The audit files of a storage directory, oldest first (docs/format.md §5)."""
    return sorted(n for n in os.listdir(storage) if n == "audit.log" or (n.startswith("audit-") and n.endswith(".log")))


def audit_entries(storage: str) -> list[dict]:
    """Every whole audit entry in the storage, by entry number, each once."""
    entries: dict[int, dict] = {}
    for name in audit_files(storage):
        with open(os.path.join(storage, name), "rb") as f:
            for line in f.read().split(b"\n"):
                try:
                    entry = json.loads(line.rpartition(b" ")[0])
                except ValueError:
                    continue   # a torn last line
                entries[entry["n"]] = entry
    return [entries[n] for n in sorted(entries)]


def record(device: Device, custodian: Custodian, text: str, export_dir: str | None,
           source: str = "<scenario test>") -> Recording:
    """Run a scenario in-process on the virtual clock, then (optionally) export its single event."""
    scenario = parse_scenario(text, source)
    policy = scenario.apply_policy(load_policy(os.path.join(device.directory, "policy.toml")))
    result = run_scenario(scenario, load_identity(device.directory), policy, device.directory, device.storage)
    assert result.firmware.failure is None, f"firmware failed: {result.firmware.failure!r}"
    rec = Recording(device, custodian, text, result.start_us, result.world.camera.frame_count)
    if export_dir is not None:
        report, exported = export_storage(device.storage, read_custodian_secret(custodian.secret_path),
                                          read_device_public(device.pub_path), export_dir, True)
        assert report.outcome == "authentic", report.to_json()
        assert len(exported) == 1, f"expected one event, exported {len(exported)}"
        rec.export_dir = export_dir
        rec.mp4_path = exported[0].mp4_path
        with open(exported[0].sidecar_path, encoding="utf-8") as f:
            rec.sidecar = json.load(f)
    return rec


def read_sidecar(export_dir: str) -> tuple[str, dict]:
    """(mp4 path, sidecar) of the one event exported into export_dir."""
    mp4s = sorted(n for n in os.listdir(export_dir) if n.endswith(".mp4"))
    assert len(mp4s) == 1, os.listdir(export_dir)
    mp4 = os.path.join(export_dir, mp4s[0])
    with open(mp4[:-4] + ".json", encoding="utf-8") as f:
        return mp4, json.load(f)


# -- reading the exported media back -------------------------------------------------

@dataclass(frozen=True)
class Frame:
    pts_us: int          # presentation time in the exported MP4, µs after the event origin
    key_frame: bool
    number: int | None   # burned-in frame number (None: the code strip did not read)
    time_ms: int | None  # burned-in capture time, device monotonic ms


def _luma(frame: av.VideoFrame) -> np.ndarray:
    picture = frame if frame.format.name == "yuv420p" else frame.reformat(format="yuv420p")
    return picture.to_ndarray()[: frame.height]


def decode_frames(mp4_path: str, limit: int | None = None) -> list[Frame]:
    frames = []
    with av.open(mp4_path) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            code = read_frame(_luma(frame))
            pts_us = round(frame.pts * stream.time_base * 1_000_000)
            frames.append(Frame(pts_us, bool(frame.key_frame), *(code if code else (None, None))))
            if limit is not None and len(frames) >= limit:
                break
    return frames


def assert_continuous(frames: list[Frame]) -> None:
    """Every frame carries a readable code, and frame numbers go up by exactly one."""
    unreadable = [f.pts_us for f in frames if f.number is None]
    assert not unreadable, f"{len(unreadable)} frames have no readable burned-in code, first at pts {unreadable[:5]}"
    numbers = [f.number for f in frames]
    breaks = [(i, a, b) for i, (a, b) in enumerate(zip(numbers, numbers[1:])) if b != a + 1]
    assert not breaks, ("frame numbers not continuous (index, frame, next frame): "
                        f"{breaks[:10]} (a jump > 1 is a gap, <= 0 a duplicate or reordering)")


def packets(mp4_path: str, kind: str) -> list[av.Packet]:
    with av.open(mp4_path) as container:
        stream = getattr(container.streams, kind)[0]
        return [p for p in container.demux(stream) if p.size]


# -- the bwc command line ------------------------------------------------------------

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def bwc_command() -> list[str]:
    return [sys.executable, "-m", "tools.cli"]


def _bwc_env() -> dict:
    # The working tree under test, whichever way openbwc is installed in this venv.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO, env.get("PYTHONPATH")]))
    return env


def bwc(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*bwc_command(), *args], capture_output=True, text=True, timeout=timeout, env=_bwc_env())


def bwc_many(arg_lists: list[list[str]], timeout: float = 120) -> list[subprocess.CompletedProcess]:
    """Run several `bwc` invocations concurrently (they are independent); results in order."""
    procs = [subprocess.Popen([*bwc_command(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_bwc_env())
             for args in arg_lists]
    results = []
    for args, proc in zip(arg_lists, procs):
        out, err = proc.communicate(timeout=timeout)
        results.append(subprocess.CompletedProcess([*bwc_command(), *args], proc.returncode, out, err))
    return results


def copy_storage(src: str, dst: str) -> str:
    shutil.copytree(src, dst)
    return dst


def trace_pulses(lines: list[dict]) -> list[tuple[int, str, int, int]]:
    """The vibrations and tones of a trace (simulator/trace.py) as device/patterns.recognise
    reads them: (monotonic_us, "vibrate" | "tone", duration_ms, frequency_hz)."""
    return [(line["monotonic_us"], "vibrate", line["duration_ms"], 0) if line["kind"] == "vibrate"
            else (line["monotonic_us"], "tone", line["duration_ms"], line["frequency_hz"])
            for line in lines if line["kind"] in ("vibrate", "tone")]
