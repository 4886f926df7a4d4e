"""Power cut at the firmware's riskiest write points: evidence must read as power loss
(truncated, exit 3), never as tampering, before and after the next boot (SEG-4, AUD-2).

A cut is emulated by making one storage or key-store write raise an exception the
firmware cannot catch: the writer thread stops there and nothing shuts down, exactly
as if the process had died, and everything already synced stays.
"""
from __future__ import annotations

import os

import pytest

from device.evidence.audit import AuditLog
from device.evidence.keys import read_device_public
from device.evidence.storage_verify import verify_storage
from scenario_support import make_custodian, make_device, record, scenario_toml

pytestmark = pytest.mark.scenario

SCENARIO = scenario_toml(6, [{"t_s": 3.0, "do": "button.double_press"}], pre_event_s=2, segment_s=2)
REBOOT = scenario_toml(1, [])


class PowerCut(BaseException):
    """Not an Exception: firmware error handling must not see it (a dead CPU runs nothing)."""


def _cut_before_activation_entry(monkeypatch):
    real = AuditLog.append

    def append(self, entry_type, *args, **kwargs):
        if entry_type == "activation":
            raise PowerCut("power lost after the first segment's K0, before the activation entry")
        return real(self, entry_type, *args, **kwargs)

    monkeypatch.setattr(AuditLog, "append", append)


def _cut_before_first_checkpoint(monkeypatch):
    from device.evidence import segment_file

    real = segment_file.SegmentFile.checkpoint

    def checkpoint(self, media_end_us):
        if self.chunk_count > 0:
            raise PowerCut("power lost before the first flush of the segment")
        return real(self, media_end_us)

    monkeypatch.setattr(segment_file.SegmentFile, "checkpoint", checkpoint)


def _cut_at_first_rollover(monkeypatch):
    from device import writer

    real = writer.SegmentWriter._close_segment

    def close(self, end_us):
        raise PowerCut("power lost while closing the first segment")

    monkeypatch.setattr(writer.SegmentWriter, "_close_segment", close)


@pytest.mark.parametrize("cut", [_cut_before_activation_entry, _cut_before_first_checkpoint,
                                 _cut_at_first_rollover])
def test_power_cut_reads_as_power_loss_before_and_after_reboot(tmp_path, monkeypatch, cut):
    custodian = make_custodian(str(tmp_path / "custodian"))
    device = make_device(str(tmp_path / "device"), custodian)
    device_key = read_device_public(device.pub_path)
    with monkeypatch.context() as patch:
        cut(patch)
        from device.firmware import Firmware
        patch.setattr(Firmware, "shutdown", lambda self, source="shutdown": None)  # no power, no shutdown
        from device.monitor import Monitor
        # A dead CPU runs no watchdog either: nothing restarts the writer thread.
        patch.setattr(Monitor, "_check_writer_thread", lambda self, now_us: None)
        patch.setattr("threading.excepthook", lambda args: None)   # the writer thread just stops
        record(device, custodian, SCENARIO, None)
    assert [n for n in os.listdir(device.storage) if n.startswith("seg-")], "the cut left no segment"
    report = verify_storage(device.storage, device_key)
    assert report.outcome == "truncated", report.to_json()

    record(device, custodian, REBOOT, None)   # the next boot, then a clean shutdown
    report = verify_storage(device.storage, device_key)
    assert report.outcome == "truncated", report.to_json()
    recovery = [e for e in report.audit.entries if e["type"] == "recovery"]
    assert len(recovery) == 1 and recovery[0]["seq"] == 1


def test_storage_fault_then_a_new_activation_still_verifies_as_power_loss(tmp_path, monkeypatch):
    """A write error ends the event (reported, never swallowed); the wearer's next double
    press tries storage again, and the new event chains on to what was signed before."""
    from device.evidence import segment_file
    from hal.storage import StorageError

    custodian = make_custodian(str(tmp_path / "custodian"))
    device = make_device(str(tmp_path / "device"), custodian)
    real = segment_file.SegmentFile.checkpoint
    failures = iter([True])

    def checkpoint(self, media_end_us):
        if self.chunk_count >= 3 and next(failures, False):
            raise StorageError(5, "EIO (simulated)")
        return real(self, media_end_us)

    monkeypatch.setattr(segment_file.SegmentFile, "checkpoint", checkpoint)
    text = scenario_toml(12, [{"t_s": 3.0, "do": "button.double_press"},
                              {"t_s": 8.0, "do": "button.double_press"}], pre_event_s=1, segment_s=30)
    with pytest.raises(AssertionError, match="EIO"):
        record(device, custodian, text, None)
    report = verify_storage(device.storage, read_device_public(device.pub_path))
    assert report.outcome == "truncated", report.to_json()
    assert len(report.events()) == 2
