"""A fake machine for `bwc doctor`: a fake root directory, scripted commands and a camera.

The root holds what the checks read (/proc/self/mountinfo, /boot/firmware/config.txt,
/sys/class/power_supply, /proc/device-tree/model, systemd units); commands not scripted
run for real (arecord/aplay from alsa-utils), so the ALSA probes are exercised for real
where a test wants that. The camera follows picamera2's own API: the class method
global_camera_info() and the instance property sensor_modes.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from types import SimpleNamespace

from gpiozero.pins.mock import MockFactory

from tools.doctor_checks import Probe, Ran, run_command

IMX708_MODES = [  # Camera Module 3, as picamera2 lists them on a Pi 5
    {"format": "SRGGB10_CSI2P", "size": (1536, 864), "fps": 120.13, "bit_depth": 10},
    {"format": "SRGGB10_CSI2P", "size": (2304, 1296), "fps": 56.03, "bit_depth": 10},
    {"format": "SRGGB10_CSI2P", "size": (4608, 2592), "fps": 14.35, "bit_depth": 10},
]


def make_camera_api(cameras=({"Model": "imx708", "Id": "/base/axi/pcie@120000/rp1/i2c@88000/imx708@1a", "Num": 0},),
                    modes=IMX708_MODES, libav=False, open_error: Exception | None = None):
    """A Picamera2Api-shaped namespace; `opened` counts opens, `closed` closes."""
    state = SimpleNamespace(opened=0, closed=0)

    class Picamera2:
        @staticmethod
        def global_camera_info():
            return [dict(c) for c in cameras]

        def __init__(self, camera_num=0, verbose_console=None, tuning=None, allocator=None):
            if open_error is not None:
                raise open_error
            state.opened += 1

        @property
        def sensor_modes(self):
            return [dict(m) for m in modes]

        def close(self):
            state.closed += 1

    class Encoder:
        pass

    class LibavH264Encoder(Encoder):
        pass

    class V4L2Encoder(Encoder):
        pass

    class H264Encoder(V4L2Encoder):   # picamera2.encoders.h264_encoder: the VC4 hardware encoder
        pass

    class Output:
        pass

    api = SimpleNamespace(Picamera2=Picamera2, H264Encoder=LibavH264Encoder if libav else H264Encoder,
                          Output=Output)
    return api, state


def write(root: Path, path: str, text: str) -> Path:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


def mountinfo(*mounts: tuple[str, str]) -> str:
    """/proc/self/mountinfo lines for (mount point, fstype); the root first."""
    lines = ["22 1 179:2 / / rw,noatime shared:1 - ext4 /dev/mmcblk0p2 rw"]
    for i, (point, fstype) in enumerate(mounts):
        escaped = point.replace("\\", "\\134").replace(" ", "\\040")
        lines.append(f"{30 + i} 22 179:{5 + i} / {escaped} rw,relatime shared:{2 + i} - {fstype} /dev/sda{i + 1} rw")
    return "\n".join(lines) + "\n"


def supply(root: Path, name: str = "battery", capacity: str = "87", voltage_uv: str = "3920000",
           status: str = "Discharging") -> Path:
    base = f"/sys/class/power_supply/{name}"
    for attribute, value in (("capacity", capacity), ("voltage_now", voltage_uv), ("status", status)):
        write(root, f"{base}/{attribute}", value + "\n")
    return root / base.lstrip("/")


class Commands:
    """probe.run: scripted answers by the command's first words; the rest run for real."""

    def __init__(self, **scripted: Ran) -> None:
        # aplay_L=... scripts `aplay -L`.
        self.scripted = {k.replace("_", " -"): v for k, v in scripted.items()}
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str], timeout_s: float) -> Ran:
        self.calls.append(argv)
        for words, answer in self.scripted.items():
            if argv[:len(words.split())] == words.split():
                return answer
        return run_command(argv, timeout_s)


def healthy_pi(root: Path, **changes) -> Probe:
    """A Pi 5 on Bookworm with every part present; `changes` replaces Probe fields."""
    write(root, "/proc/device-tree/model", "Raspberry Pi 5 Model B Rev 1.0\x00")
    write(root, "/proc/self/mountinfo", mountinfo())
    write(root, "/boot/firmware/config.txt", "dtparam=audio=on\ncamera_auto_detect=1\n")
    write(root, "/etc/systemd/system/openbwc.service", "[Service]\n")
    supply(root)
    api, _ = make_camera_api(libav=True)
    factory = MockFactory()
    fields = dict(
        root=str(root),
        run=Commands(timedatectl=Ran(0, "yes\n"),
                     aplay_L=Ran(0, "null\n    Discard all samples\ndefault\n    Default ALSA Output\n"),
                     arecord=Ran(0)),
        which=lambda tool: f"/usr/bin/{tool}",
        machine=lambda: "aarch64", pointer_bits=64, python_version=(3, 11, 2),
        environ={"LG_WD": str(root)}, cwd=lambda: str(root),
        load_picamera2_api=lambda: api, load_pin_factory=lambda name: factory)
    fields.update(changes)
    return dataclasses.replace(Probe(), **fields)


def args(hal: str, device=None, storage=None, json: bool = False) -> SimpleNamespace:
    return SimpleNamespace(hal=hal, device=None if device is None else os.fspath(device),
                           storage=None if storage is None else os.fspath(storage), json=json)
