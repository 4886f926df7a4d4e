"""boot() when a part cannot start (issue 9): the camera keeps its promises.

A camera or microphone that does not open at boot is a lost part the monitor retries
(FLT-1), not a dead camera in a systemd restart loop writing a recovery entry per loop.
A boot that cannot go on is undone: the chain state says "stopped cleanly".
"""
from __future__ import annotations

import dataclasses

import pytest

from camera_loss_rig import Rig
from device.chainstate import ChainState
from device.config import Policy, load_identity
from device.firmware import BootError, Firmware
from hal.camera import Camera

pytestmark = pytest.mark.scenario


class CameraThatOpensLater(Camera):
    """No camera at boot (a loose ribbon); it opens from the nth start on."""

    def __init__(self, camera: Camera, opens_at_attempt: int) -> None:
        self._camera, self._opens_at, self.attempts = camera, opens_at_attempt, 0

    @property
    def video_format(self):
        return self._camera.video_format

    def start(self, sink) -> None:
        self.attempts += 1
        if self.attempts < self._opens_at:
            raise OSError(19, "camera 0 could not be opened (no such device)")
        self._camera.start(sink)

    def stop(self) -> None:
        self._camera.stop()


def test_a_camera_missing_at_boot_records_audio_and_comes_back_with_back_off(tmp_path, custodian, monkeypatch):
    rig = Rig(str(tmp_path), custodian, Policy(pre_event_s=2, segment_s=30))
    rig.firmware.shutdown()   # rebuilt below with the flaky camera, on the same device
    camera = CameraThatOpensLater(rig.world.board.camera, opens_at_attempt=3)
    board = dataclasses.replace(rig.world.board, camera=camera)
    firmware = Firmware(board, load_identity(rig.device.directory), Policy(pre_event_s=2, segment_s=30))
    firmware.boot()
    assert firmware.boot_problems == ["camera: OSError: [Errno 19] camera 0 could not be opened (no such device)"]
    rig.firmware, rig.writer = firmware, firmware.writer
    rig.double_press(1.0)
    rig.hold(6.0, 3.5)
    rig.run_until(12.0)
    rig.catch_up()
    firmware.shutdown()
    assert camera.attempts == 3 and firmware.failure is None
    storage = rig.verify()
    entries = [e for e in storage.audit.entries if e["type"] == "watchdog"]
    assert entries[0]["action"] == "start_failed" and entries[0]["part"] == "camera"
    assert [e["action"] for e in entries[1:]] == ["restart", "restart"]
    assert storage.outcome == "authentic"
    sidecar = rig.export()[1]
    assert sidecar["media_gaps"] and sidecar["media_gaps"][0]["track"] == "video"


def test_a_boot_that_cannot_go_on_is_undone_and_said_in_one_line(tmp_path, custodian, monkeypatch):
    rig = Rig(str(tmp_path), custodian, Policy(pre_event_s=2, segment_s=30))
    rig.firmware.shutdown()
    board = rig.world.board

    def broken(*_):
        raise RuntimeError("the gesture decoder table is empty")

    firmware = Firmware(board, load_identity(rig.device.directory), Policy(pre_event_s=2, segment_s=30))
    monkeypatch.setattr(board.inputs, "subscribe", broken)
    with pytest.raises(BootError) as failed:
        firmware.boot()
    assert str(failed.value) == "the firmware could not boot: RuntimeError: the gesture decoder table is empty"
    assert "\n" not in str(failed.value)
    # Honest state: the next boot sees a clean stop, so it writes no `recovery` entry.
    assert ChainState.load(board.keystore).running is False
    again = Firmware(board, load_identity(rig.device.directory), Policy(pre_event_s=2, segment_s=30))
    monkeypatch.undo()
    again.boot()
    again.shutdown()
    types = [e["type"] for e in rig.verify().audit.entries]
    assert "recovery" not in types
    assert types.count("shutdown") == 3   # the first rig, the undone boot ("boot_failed"), the last
