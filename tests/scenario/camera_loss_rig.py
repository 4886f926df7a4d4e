"""A whole firmware on the virtual clock, built directly so a test can reach its parts
while it runs: pull the camera's cord, cut the power, read the writer's health.

The same parts `simulator.runner.run_scenario` builds (board, firmware, SimFS, a power
domain per instance); the test schedules the wearer's presses and the faults itself.
"""
from __future__ import annotations

import dataclasses
import os

import av
import numpy as np

from device.config import Policy, load_identity
from device.evidence.keys import read_custodian_secret, read_device_public
from device.evidence.storage_verify import verify_storage
from device.firmware import Firmware
from hal.camera import Camera
from hal.inputs import RECORD_BUTTON
from hal.media import PacketSink, VideoFormat
from scenario_support import Custodian, make_device, read_sidecar
from simulator.board import build_sim_board
from simulator.clock import VirtualClock
from simulator.power import PowerDomain
from simulator.runner import DOUBLE_PRESS_GAP_US, PRESS_US
from simulator.simfs import SimFS
from tools.export import export_storage

VIDEO = VideoFormat(width=320, height=180, fps=30, keyframe_interval_s=1.0, bitrate_bps=600_000)
FRAME_US = round(1e6 / VIDEO.fps)


def us(t_s: float) -> int:
    return round(t_s * 1_000_000)


class GappedCamera(Camera):
    """A camera whose frames in [start_us, end_us) never reach the firmware, while its
    encoder keeps running: after the gap come P-frames until the next keyframe, as
    with a link that drops packets rather than a sensor that restarts."""

    def __init__(self, camera: Camera, start_us: int, end_us: int) -> None:
        self._camera, self._start_us, self._end_us = camera, start_us, end_us

    @property
    def video_format(self) -> VideoFormat:
        return self._camera.video_format

    def start(self, sink: PacketSink) -> None:
        self._camera.start(lambda p: None if self._start_us <= p.timestamp_us < self._end_us else sink(p))

    def stop(self) -> None:
        self._camera.stop()


class Rig:
    def __init__(self, root: str, custodian: Custodian, policy: Policy, camera_gap_s: tuple | None = None) -> None:
        self.custodian = custodian
        self.device = make_device(os.path.join(root, "device"), custodian)
        self.export_dir = os.path.join(root, "export")
        self.clock = VirtualClock()
        self.fs = SimFS()
        self.power = PowerDomain(self.clock)
        self.t0 = self.clock.monotonic_us()
        self.world = build_sim_board(self.power, self.device.directory, self.device.storage, VIDEO, fs=self.fs)
        board = self.world.board
        if camera_gap_s is not None:
            board = dataclasses.replace(board, camera=GappedCamera(
                board.camera, self.t0 + us(camera_gap_s[0]), self.t0 + us(camera_gap_s[1])))
        self.firmware = Firmware(board, load_identity(self.device.directory), policy)
        self.firmware.boot()
        self.writer = self.firmware.writer

    def at(self, t_s: float, callback) -> None:
        self.clock.call_at(self.t0 + us(t_s), callback)

    def _button(self, t_s: float, length_us: int) -> None:
        self.clock.call_at(self.t0 + us(t_s), lambda: self.world.inputs.set(RECORD_BUTTON, True))
        self.clock.call_at(self.t0 + us(t_s) + length_us, lambda: self.world.inputs.set(RECORD_BUTTON, False))

    def double_press(self, t_s: float) -> None:
        self._button(t_s, PRESS_US)
        self._button(t_s + (PRESS_US + DOUBLE_PRESS_GAP_US) / 1e6, PRESS_US)

    def hold(self, t_s: float, hold_s: float) -> None:
        self._button(t_s, us(hold_s))

    def camera_loss(self, from_s: float, to_s: float) -> None:
        self.at(from_s, self.world.camera.disconnect)
        self.at(to_s, self.world.camera.reconnect)

    def run_until(self, t_s: float) -> None:
        self.clock.wait_until(self.t0 + us(t_s))

    def catch_up(self) -> None:
        assert self.writer.wait_idle(timeout_s=60), "the writer did not catch up with the clock"

    def power_cut(self) -> None:
        self.catch_up()
        self.fs.power_cut("tear")
        self.power.cut()
        self.writer.close()   # its thread ends at its next storage operation, or at the stop marker

    def shutdown(self) -> None:
        self.firmware.shutdown()

    def verify(self):
        return verify_storage(self.device.storage, read_device_public(self.device.pub_path))

    def export(self) -> tuple[str, dict]:
        export_storage(self.device.storage, read_custodian_secret(self.custodian.secret_path),
                       read_device_public(self.device.pub_path), self.export_dir, True)
        return read_sidecar(self.export_dir)


def media_packets(mp4: str, kind: str) -> list[tuple[int, int, bool]]:
    """(pts_us, duration_us, keyframe) of every `kind` packet in an MP4."""
    with av.open(mp4) as container:
        stream = getattr(container.streams, kind)[0]
        tb = stream.time_base
        return [(round(p.pts * tb * 1_000_000), round(p.duration * tb * 1_000_000), bool(p.is_keyframe))
                for p in container.demux(stream) if p.size]


def decoded_audio(mp4: str) -> tuple[int, np.ndarray]:
    """(first sample's pts in µs, mono float samples) of an MP4's decoded audio track."""
    chunks, first_us = [], None
    with av.open(mp4) as container:
        stream = container.streams.audio[0]
        for frame in container.decode(stream):
            if first_us is None:
                first_us = round(frame.pts * stream.time_base * 1_000_000)
            chunks.append(frame.to_ndarray()[0])
    return first_us, np.concatenate(chunks)
