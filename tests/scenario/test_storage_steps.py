"""SIM-3 scenario steps storage.fail / storage.heal / storage.fill / power.cut + power.restore:
that each reaches the firmware the way real storage and a real battery would.

These tests check the plumbing (the error the firmware sees, a fresh instance that records
again), not how the segment writer reacts to a fault: that is the writer's own business.
"""
from __future__ import annotations

import errno
import os

import pytest

from device.config import load_identity, load_policy
from device.evidence.format import CHECKPOINT_RECORD_BYTES
from device.evidence.keys import read_device_public
from device.evidence.storage_verify import verify_storage
from hal.storage import StorageError
from simulator.runner import run_scenario
from simulator.scenario import parse_scenario
from scenario_support import START_US, bwc, make_device, scenario_toml, us

pytestmark = pytest.mark.scenario

FPS = 30


def _run(device, steps: list[dict], duration_s: float = 7.0):
    scenario = parse_scenario(scenario_toml(duration_s, steps, pre_event_s=1, segment_s=30), "<storage steps>")
    policy = scenario.apply_policy(load_policy(os.path.join(device.directory, "policy.toml")))
    return run_scenario(scenario, load_identity(device.directory), policy, device.directory, device.storage)


def _segments(device) -> list[str]:
    return sorted(n for n in os.listdir(device.storage) if n.startswith("seg-"))


@pytest.fixture
def device(tmp_path, custodian):
    return make_device(str(tmp_path / "device"), custodian)


@pytest.mark.parametrize("name, code, op, words", [
    ("EIO", errno.EIO, "write", "write to"),
    ("ENOSPC", errno.ENOSPC, "fsync", "fsync of"),
])
def test_a_storage_fault_reaches_the_firmware_as_a_storage_error(device, name, code, op, words):
    result = _run(device, [{"t_s": 1.0, "do": "button.double_press"},
                           {"t_s": 2.5, "do": "storage.fail", "errno": name, "op": op, "count": 1}], 4.0)
    failure = result.firmware.failure
    assert isinstance(failure, StorageError) and failure.errno == code, repr(failure)
    assert words in str(failure) and "seg-" in str(failure)


def test_after_bytes_lands_that_many_bytes_of_the_failing_write(device):
    result = _run(device, [{"t_s": 1.0, "do": "button.double_press"},
                           {"t_s": 2.5, "do": "storage.fail", "errno": "ENOSPC", "op": "write", "after_bytes": 100}],
                  4.0)
    assert isinstance(result.firmware.failure, StorageError) and result.firmware.failure.errno == errno.ENOSPC
    report = verify_storage(device.storage, read_device_public(device.pub_path))
    (segment,) = report.segments
    on_disk = os.path.getsize(os.path.join(device.storage, segment.name))
    assert on_disk - (segment.report.last.offset + CHECKPOINT_RECORD_BYTES) == 100


def test_heal_lets_the_next_activation_write_again(device):
    result = _run(device, [{"t_s": 1.0, "do": "button.double_press"},
                           {"t_s": 2.5, "do": "storage.fail", "errno": "EIO", "op": "any"},
                           {"t_s": 3.0, "do": "button.hold", "hold_s": 3.0},
                           {"t_s": 6.5, "do": "storage.heal"},
                           {"t_s": 7.0, "do": "button.double_press"}], 9.0)
    assert result.firmware.failure is not None and result.firmware.recorder.events_started == 2
    audit_types = [e["type"] for e in verify_storage(device.storage, read_device_public(device.pub_path)).audit.entries]
    assert len(_segments(device)) == 2, _segments(device)     # the second event got a segment of its own
    assert audit_types.count("activation") == 2, audit_types


def test_fill_reports_the_space_and_fails_writes_beyond_it(device):
    result = _run(device, [{"t_s": 1.0, "do": "button.double_press"},
                           {"t_s": 2.5, "do": "storage.fill", "free_bytes": 20_000}], 5.0)
    failure = result.firmware.failure
    assert isinstance(failure, StorageError) and failure.errno == errno.ENOSPC, repr(failure)
    storage = result.world.board.storage
    assert storage.free_bytes() == 0
    result.simfs.heal()
    assert storage.free_bytes() > 20_000


def test_a_cut_abandons_the_instance_and_a_restore_boots_one_that_records(device):
    cut_t_s, restore_t_s = 3.5, 4.0
    result = _run(device, [{"t_s": 1.0, "do": "button.double_press"},
                           {"t_s": cut_t_s, "do": "power.cut"},
                           {"t_s": 3.7, "do": "button.press"},          # the camera is dead: nothing happens
                           {"t_s": restore_t_s, "do": "power.restore"},
                           {"t_s": 5.0, "do": "button.double_press"}], 7.0)
    first, second = result.instances
    assert first.power_lost_us == START_US + us(cut_t_s) and second.power_lost_us is None
    assert second.boot_us == START_US + us(restore_t_s) and result.powered_at_end
    assert first.firmware is not second.firmware and first.world.camera is not second.world.camera
    assert result.world is second.world and result.firmwares == [first.firmware, second.firmware]
    # Nothing of the abandoned instance ran after the cut: no frame, no input, no indicator.
    assert first.world.camera.frame_count == round(cut_t_s * FPS)   # the frame due at the cut is not taken
    assert all(t <= first.power_lost_us for t, *_ in first.world.inputs.history + first.world.indicators.history)
    assert second.firmware.recorder.events_started == 1 and second.failure is None
    assert second.world.inputs.history and second.world.inputs.history[0][0] >= second.boot_us

    report = verify_storage(device.storage, read_device_public(device.pub_path))
    assert report.outcome == "truncated" and report.problems == [], report.to_json()
    types = [e["type"] for e in report.audit.entries if e["type"] != "announcement"]
    assert types == ["boot", "activation", "recovery", "boot", "activation", "deactivation", "shutdown"], types
    assert len(report.events()) == 2


def test_bwc_run_reports_a_shift_with_a_cut_and_a_restore(tmp_path, device):
    scenario = tmp_path / "shift.toml"
    scenario.write_text(scenario_toml(5.0, [{"t_s": 1.0, "do": "button.double_press"},
                                            {"t_s": 2.5, "do": "power.cut", "mode": "drop"},
                                            {"t_s": 3.0, "do": "power.restore"},
                                            {"t_s": 3.5, "do": "button.double_press"}],
                                      pre_event_s=1, segment_s=30))
    result = bwc("run", "--device", device.directory, "--hal", "sim", "--scenario", str(scenario))
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "2 event(s) recorded" in result.stdout and "2 boots, 1 power cut" in result.stdout, result.stdout
    assert "not restored" not in result.stdout and result.stderr == ""
    report = verify_storage(device.storage, read_device_public(device.pub_path))
    assert report.outcome == "truncated" and len(report.events()) == 2, report.to_json()
