"""`bwc install-service`: the systemd unit a Pi runs the camera under (docs/pi.md#systemd)."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.tool


def _unit(text: str) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            keys.setdefault(key, []).append(value)
    return keys


@pytest.fixture
def rendered(bwc, fresh_device, tmp_path) -> tuple[str, str]:
    fake_bwc = tmp_path / "bin" / "bwc"
    fake_bwc.parent.mkdir()
    fake_bwc.write_text("#!/bin/sh\n")
    fake_bwc.chmod(0o755)
    result = bwc("install-service", "--device", fresh_device.dir, "--bwc", fake_bwc, "--dry-run")
    assert result.returncode == 0, str(result)
    return result.stdout, os.path.realpath(fresh_device.dir)


def test_the_unit_passes_systemd_analyze_verify_without_a_warning(rendered, tmp_path):
    text, _ = rendered
    path = tmp_path / "openbwc.service"
    path.write_text(text)
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: apt-get install systemd (.ci/run does)"
    result = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


def test_the_unit_notifies_is_watched_runs_as_its_own_user_and_can_write_only_its_device(rendered, tmp_path):
    text, device_dir = rendered
    unit = _unit(text)
    assert unit["Type"] == ["notify"] and unit["NotifyAccess"] == ["main"]
    assert unit["WatchdogSec"] == ["15"] and unit["Restart"] == ["always"]
    assert unit["RestartPreventExitStatus"] == ["3"]   # a critical battery is not restarted into
    assert unit["ExecStart"] == [f"{tmp_path}/bin/bwc run --device {device_dir} --hal pi"]
    assert unit["WorkingDirectory"] == [device_dir]          # lgpio's notification pipes
    assert unit["Environment"] == ["LG_WD=%t/openbwc"]
    assert unit["User"] == ["openbwc"] and unit["Group"] == ["openbwc"]
    assert unit["RequiresMountsFor"] == [f"{device_dir}/storage"]
    assert unit["ProtectSystem"] == ["strict"] and unit["ReadWritePaths"] == [device_dir]
    for key in ("PrivateTmp", "NoNewPrivileges", "ProtectHome"):
        assert unit[key] == ["yes"], key
    # A device allow-list would shut out the camera, GPIO and sound nodes.
    assert "DeviceAllow" not in unit and "PrivateDevices" not in unit and "ProtectClock" not in unit
    assert set(unit["SupplementaryGroups"][0].split()) <= {"video", "gpio", "audio", "i2c"}


def test_installing_writes_the_unit_and_makes_the_device_private(bwc, fresh_device, tmp_path):
    if os.geteuid() != 0:
        result = bwc("install-service", "--device", fresh_device.dir, "--unit-dir", tmp_path)
        assert result.returncode == 2
        assert result.stderr.strip() == ("bwc install-service: installing a system service needs root: run it with "
                                         "sudo (or use --dry-run)")
        return
    os.chmod(fresh_device.dir, 0o755)
    result = bwc("install-service", "--device", fresh_device.dir, "--unit-dir", tmp_path, "--user", "root")
    assert result.returncode == 0, str(result)
    assert (tmp_path / "openbwc.service").read_text().count("--hal pi") == 1
    assert os.stat(fresh_device.dir).st_mode & 0o777 == 0o700
    assert "systemctl enable --now openbwc" in result.stdout


@pytest.mark.parametrize("problem, expected", [
    ("not-a-device", "is not a provisioned device directory (no device.json)"),
    ("space in path", "path must be absolute, without spaces"),
    ("storage link", "storage is a symbolic link: mount the evidence drive there instead"),
])
def test_a_wrong_device_directory_is_one_line(bwc, fresh_device, tmp_path, problem, expected):
    if problem == "not-a-device":
        target = tmp_path / "empty"
        target.mkdir()
    elif problem == "storage link":
        target = tmp_path / "cam"
        shutil.copytree(fresh_device.dir, target)
        (tmp_path / "usb").mkdir()
        (target / "storage").symlink_to(tmp_path / "usb")
    else:
        target = tmp_path / "my camera"
        shutil.copytree(fresh_device.dir, target)
    result = bwc("install-service", "--device", target, "--dry-run")
    assert result.returncode == 2 and expected in result.stderr and result.stderr.count("\n") == 1
