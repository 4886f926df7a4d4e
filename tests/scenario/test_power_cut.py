"""SEG-4, AUD-2: power cut mid-segment (`bwc run` in a subprocess, a scenario `power.cut`:
the simulated storage loses everything not made durable, the firmware is abandoned where
it stands) leaves evidence that verifies as "cut short by power loss" (exit 3, not
tampering), exports up to the last flush, and the next boot logs a recovery and continues
the chain."""
from __future__ import annotations

import json
import os
import shutil

import pytest

from device.evidence.segment_reader import read_header_unverified
from scenario_support import (
    DOUBLE_PRESS_TO_ACTIVATION_US, START_US, Device, Recording, assert_continuous, bwc, decode_frames,
    make_device, read_sidecar, scenario_toml, us,
)

pytestmark = pytest.mark.scenario

PRE_EVENT_S, SEGMENT_S = 2, 4
PRESS_T_S, CUT_T_S = 3.0, 8.5    # origin at 2.0 s monotonic; segments 2-6 s, 6-10 s: cut mid-segment 2
FLUSH_S = 1.0                    # policy default: at most this much media lost


def _write(path: str, text: str) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


@pytest.fixture(scope="module")
def cut_device(tmp_path_factory, custodian):
    root = tmp_path_factory.mktemp("power-cut")
    device = make_device(str(root / "device"), custodian, device_id="cut-cam")
    scenario = _write(str(root / "cut.toml"), scenario_toml(
        12.0, [{"t_s": PRESS_T_S, "do": "button.double_press"}, {"t_s": CUT_T_S, "do": "power.cut"}],
        keyframe_interval_s=1, pre_event_s=PRE_EVENT_S, segment_s=SEGMENT_S))
    result = bwc("run", "--device", device.directory, "--hal", "sim", "--scenario", scenario)
    return root, device, result


def test_run_reports_the_cut(cut_device):
    _, device, result = cut_device
    # The scenario ran as scripted: a cut is part of the script, not a failure.
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    assert f"power was cut at {CUT_T_S:g} s and not restored" in result.stdout, result.stdout
    assert "1 event(s) recorded" in result.stdout and result.stderr == "", result
    names = sorted(os.listdir(device.storage))
    assert names[0] == "audit-0000000001.log" and len(names) >= 3, names  # two segments: the cut is in the second


def test_verify_reports_power_loss_not_tampering(cut_device):
    _, device, _ = cut_device
    result = bwc("verify", device.storage, "--device-pub", device.pub_path, "--json")
    assert result.returncode == 3, (result.stdout, result.stderr)
    report = json.loads(result.stdout)
    assert report["outcome"] == "truncated" and report["problems"] == [], report
    last_segment = sorted(n for n in os.listdir(device.storage) if n.startswith("seg-"))[-1]
    assert report["files"][last_segment] == "truncated", report["files"]
    assert {c["file"] for c in report["cut_short"]} >= {last_segment}


def test_export_holds_media_up_to_last_flush(cut_device, custodian):
    root, device, _ = cut_device
    out = str(root / "export")
    result = bwc("export", device.storage, "--key", custodian.secret_path, "--out", out,
                 "--device-pub", device.pub_path)
    assert result.returncode == 3, (result.stdout, result.stderr)
    mp4, sidecar = read_sidecar(out)
    assert sidecar["verification"]["outcome"] == "truncated"
    assert [s["outcome"] for s in sidecar["segments"]][-1] == "truncated"
    boot = next(e for e in sidecar["audit"] if e["type"] == "boot")
    assert boot["monotonic_us"] == START_US  # scenario time 0 on the device clock
    assert sidecar["activation"]["activation_monotonic_us"] == START_US + us(PRESS_T_S) + DOUBLE_PRESS_TO_ACTIVATION_US

    frames = decode_frames(mp4)
    assert_continuous(frames)
    cut_ms = (START_US + us(CUT_T_S)) // 1000
    lost_ms = cut_ms - frames[-1].time_ms
    assert 0 <= lost_ms <= 1500, (
        f"last exported frame at {frames[-1].time_ms} ms, cut at {cut_ms} ms: "
        f"{lost_ms} ms lost (flush interval {FLUSH_S} s)")
    # The export starts with the pre-event and runs without a gap to the last flush.
    assert frames[0].time_ms <= sidecar["activation"]["activation_monotonic_us"] // 1000 - PRE_EVENT_S * 1000


def test_reboot_logs_recovery_and_chain_continues(cut_device, custodian):
    root, cut, _ = cut_device
    # Boot a copy (keys, chain state and storage as the cut left them) so the other
    # tests of this module see the storage exactly as the power cut left it.
    device = Device(shutil.copytree(cut.directory, str(root / "rebooted")), cut.pub_path)
    before = sorted(n for n in os.listdir(device.storage) if n.startswith("seg-"))
    cut_seq = int(before[-1][4:14])
    scenario = _write(str(root / "after.toml"), scenario_toml(
        4.0, [{"t_s": 0.5, "do": "button.double_press"}], keyframe_interval_s=1, pre_event_s=PRE_EVENT_S,
        segment_s=SEGMENT_S))
    result = bwc("run", "--device", device.directory, "--hal", "sim", "--scenario", scenario)
    assert result.returncode == 0, (result.stdout, result.stderr)

    rec = Recording(device, custodian, "", START_US, 0)
    entries = rec.audit_entries()
    types = [e["type"] for e in entries]
    second_boot = max(i for i, t in enumerate(types) if t == "boot")
    assert types.count("boot") == 2
    recovery = entries[second_boot - 1]
    assert recovery["type"] == "recovery", types
    assert recovery["seq"] == cut_seq and recovery["chunks"] >= 1, recovery

    after = sorted(n for n in os.listdir(device.storage) if n.startswith("seg-"))
    assert len(after) > len(before) and int(after[len(before)][4:14]) == cut_seq + 1, after
    with open(os.path.join(device.storage, after[len(before)]), "rb") as f:
        header = read_header_unverified(f.read())
    # The next segment chains to the cut one's last valid checkpoint.
    assert header["prev"]["seq"] == cut_seq and header["prev"]["chunks"] == recovery["chunks"], header["prev"]
    verify = bwc("verify", device.storage, "--device-pub", device.pub_path, "--json")
    assert verify.returncode == 3, (verify.stdout, verify.stderr)
    report = json.loads(verify.stdout)
    assert report["problems"] == [] and len(report["events"]) == 2, report
