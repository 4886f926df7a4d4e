"""`bwc doctor`: the shared checks on a fake root, the runner, and the command as a custodian runs it.

The Pi's own checks (camera, encoder, GPIO, audio, battery) are in test_doctor_pi.py.
"""
from __future__ import annotations

import dataclasses
import json
import os
import threading

import pytest

from device.config import FIRMWARE_BUILD_UTC_US, Policy
from doctor_fakes import Commands, args, healthy_pi, make_camera_api, mountinfo, write
from hal.devicelock import DeviceLock
from hal.media import AudioFormat, VideoFormat
from tools import doctor
from tools import doctor_checks as checks
from tools.doctor_checks import FAIL, OK, WARN, Ran, fail, ok

VIDEO = VideoFormat(width=1920, height=1080, fps=30, keyframe_interval_s=1.0, bitrate_bps=10_000_000)
AUDIO = AudioFormat()
MIB = 1 << 20


def lines_of(stdout: str) -> dict[str, tuple[str, str]]:
    """check -> (status, detail) from the text output (the last line is the summary)."""
    found = {}
    for line in stdout.splitlines()[:-1]:
        status, check, detail = line[:6].strip(), line[6:20].strip(), line[20:]
        found[check] = (status, detail)
    return found


# -- the runner -------------------------------------------------------------------------------------------
def test_a_check_that_crashes_is_one_fail_line_and_the_others_still_run():
    def boom():
        raise RuntimeError("sensor went away\nsecond line")

    results = checks.run_checks([("camera", boom), ("clock", lambda: ok("clock", "fine"))])
    assert [(r.check, r.status, r.detail) for r in results] == [
        ("camera", FAIL, "the check crashed: RuntimeError: sensor went away"), ("clock", OK, "fine")]
    assert results[0].blocking


def test_a_check_that_hangs_is_a_fail_after_its_timeout():
    release = threading.Event()
    try:
        results = checks.run_checks([("camera", lambda: release.wait(10) or fail("camera", "late"))],
                                    timeout_s=0.05)
    finally:
        release.set()
    assert [(r.status, r.detail) for r in results] == [(FAIL, "the check did not finish within 0.05 s")]


# -- python -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bits, version, status, words", [
    (64, (3, 11, 2), OK, "Python 3.11.2, 64-bit (aarch64)"),
    (32, (3, 11, 2), FAIL, "no 32-bit ARM wheels for pynacl or numpy; flash the 64-bit Raspberry Pi OS "
                           "(docs/pi.md#zero-2-w)"),
    (64, (3, 10, 0), FAIL, "needs 3.11 or newer"),
])
def test_python_must_be_a_64_bit_311(tmp_path, bits, version, status, words):
    probe = healthy_pi(tmp_path, pointer_bits=bits, python_version=version)
    result = checks.check_python(probe)
    assert result.status == status and words in result.detail


# -- storage ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fstype, status, words", [
    ("ext4", OK, "is on ext4 (mounted at {card})"),
    ("f2fs", OK, "is on f2fs"),
    ("vfat", FAIL, "is on vfat (mounted at {card}): a power cut can leave a zero-filled tail that reads as "
                   "tampering; use ext4 (docs/pi.md#storage)"),
    ("exfat", FAIL, "use ext4"),
    ("fuseblk", FAIL, "use ext4"),
    ("tmpfs", WARN, "not a filesystem OpenBWC is tested on"),
])
def test_storage_filesystem_is_found_by_longest_mount_prefix(tmp_path, fstype, status, words):
    card = tmp_path / "media" / "card one"          # a space: mountinfo escapes it as \040
    storage = card / "cam" / "storage"               # not made yet: bwc run makes it
    card.mkdir(parents=True)
    probe = healthy_pi(tmp_path)
    write(tmp_path, "/proc/self/mountinfo", mountinfo((str(tmp_path / "media"), "ext4"), (str(card), fstype),
                                                      (str(tmp_path / "media" / "card"), "vfat")))
    result = checks.check_storage_fs(probe, str(storage))
    assert result.status == status and words.format(card=card) in result.detail
    assert result.blocking == (status == FAIL)


def test_storage_filesystem_unknown_without_mountinfo(tmp_path):
    probe = dataclasses.replace(healthy_pi(tmp_path), root=str(tmp_path / "empty"))
    assert checks.check_storage_fs(probe, str(tmp_path)).status == WARN


@pytest.mark.parametrize("free_mib, status, words", [
    (60_000, OK, "13 h 53 min of recording free at 10.06 Mbit/s (58.6 GiB)"),
    (1_500, WARN, "21 min of recording free at 10.06 Mbit/s (1.5 GiB): under storage_warn_min (30 min)"),
    (5, FAIL, "0 min of recording free at 10.06 Mbit/s (0.0 GiB): the card is full"),
])
def test_free_space_is_said_in_minutes_of_recording(tmp_path, free_mib, status, words):
    probe = healthy_pi(tmp_path, free_bytes=lambda path: free_mib * MIB)
    result = checks.check_storage_space(probe, str(tmp_path), VIDEO, AUDIO, Policy())
    assert result.status == status and words in result.detail


# -- clock ----------------------------------------------------------------------------------------------------
def test_a_clock_before_the_firmware_build_fails(tmp_path):
    result = checks.check_clock(healthy_pi(tmp_path, wall_time_us=lambda: 0))
    assert result.status == FAIL and "1970-01-01 00:00:00 UTC, before the firmware was built (2025-12-01)" in result.detail
    assert checks.check_clock(healthy_pi(tmp_path, wall_time_us=lambda: FIRMWARE_BUILD_UTC_US)).status == OK


@pytest.mark.parametrize("answer, which, status, words", [
    (Ran(0, "yes\n"), True, OK, "NTP synchronised"),
    (Ran(0, "no\n"), True, WARN, "NTP is not synchronised"),
    (Ran(1, "", "System has not been booted with systemd as init system (PID 1). Can't operate.\n"), True, WARN,
     "(System has not been booted with systemd"),
    (Ran(0, "yes\n"), False, WARN, "timedatectl not found"),
])
def test_ntp_synchronisation_per_timedatectl(tmp_path, answer, which, status, words):
    probe = healthy_pi(tmp_path, run=Commands(timedatectl=answer),
                       which=lambda tool: f"/usr/bin/{tool}" if which else None)
    result = checks.check_ntp(probe)
    assert result.status == status and words in result.detail and not result.blocking


# -- keys and the systemd unit ----------------------------------------------------------------------------------
def test_keys_must_be_private_and_owned_by_the_running_user(tmp_path, fresh_device):
    probe = healthy_pi(tmp_path, uid=os.geteuid)
    key = fresh_device.dir / "device.key"
    assert checks.check_keys(probe, str(fresh_device.dir)).status == OK
    wrong_owner = checks.check_keys(healthy_pi(tmp_path, uid=lambda: 4242), str(fresh_device.dir))
    assert wrong_owner.status == FAIL and "not by the user running this check (uid 4242)" in wrong_owner.detail
    stray = fresh_device.dir / "custodian.key"
    stray.write_text("x", encoding="ascii")
    stray.chmod(0o600)
    result = checks.check_keys(probe, str(fresh_device.dir))
    assert result.status == FAIL and result.detail == f"{stray} is a secret key that does not belong on the camera; move it offline"
    stray.unlink()
    os.chmod(key, 0o640)
    result = checks.check_keys(probe, str(fresh_device.dir))
    assert result.status == FAIL and result.detail == f"{key} is mode 640 (readable by group/others; chmod 600)"
    key.unlink()
    assert "provision the device" in checks.check_keys(probe, str(fresh_device.dir)).detail


def test_a_missing_systemd_unit_is_only_a_warning(tmp_path):
    probe = healthy_pi(tmp_path)
    assert checks.check_systemd(probe).detail == "/etc/systemd/system/openbwc.service installed"
    (tmp_path / "etc/systemd/system/openbwc.service").unlink()
    result = checks.check_systemd(probe)
    assert (result.status, result.blocking) == (WARN, False) and "docs/pi.md#systemd" in result.detail


# -- a whole Pi on a fake root ---------------------------------------------------------------------------------------
def test_a_healthy_pi_passes_every_check(tmp_path, fresh_device, capsys):
    probe = healthy_pi(tmp_path, uid=os.geteuid)
    code = doctor.run(args("pi", fresh_device.dir), probe)
    out = capsys.readouterr().out
    found = lines_of(out)
    assert code == 0, out
    assert {status for status, _ in found.values()} == {OK}, out
    assert list(found) == ["python", "device", "policy", "pi-config", "device-lock", "picamera2", "camera",
                           "camera-mode", "encoder", "gpio-workdir", "gpio-factory", "gpio-pins", "gpio-i2s",
                           "gpio-i2c", "audio-tools", "audio-capture", "audio-speaker", "storage-fs",
                           "storage-space", "clock", "ntp", "keys", "announce", "battery", "systemd"]
    assert found["camera-mode"][1] == "1920x1080@30: scaled down by the ISP from sensor mode 2304x1296@56.03"
    assert out.splitlines()[-1] == "25 ok, 0 warn, 0 FAIL: nothing blocks"


def test_a_pi_with_an_i2s_clash_exits_1_and_says_so_in_json(tmp_path, fresh_device, capsys):
    write(fresh_device.dir, "pi.toml", "buzzer_pin = 18\n")
    probe = healthy_pi(tmp_path, uid=os.geteuid)
    write(tmp_path, "/boot/firmware/config.txt", "dtparam=i2s=on\n")
    code = doctor.run(args("pi", fresh_device.dir, json=True), probe)
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert all(set(entry) == {"check", "status", "blocking", "detail"} for entry in report)
    blocking = [entry for entry in report if entry["blocking"]]
    assert [(e["check"], e["status"]) for e in blocking] == [("gpio-i2s", "FAIL")]


def test_while_bwc_run_holds_the_device_its_hardware_is_not_probed(tmp_path, fresh_device, capsys):
    api, camera = make_camera_api(libav=True)
    probe = healthy_pi(tmp_path, uid=os.geteuid, load_picamera2_api=lambda: api)
    with DeviceLock(str(fresh_device.dir)):
        code = doctor.run(args("pi", fresh_device.dir), probe)
    found = lines_of(capsys.readouterr().out)
    assert code == 0 and camera.opened == 0
    assert found["device-lock"][0] == WARN and "is already running" in found["device-lock"][1]
    assert found["camera"] == (WARN, "not checked: bwc run holds the device (the camera is in use by it)")
    assert found["gpio-pins"][0] == found["audio-capture"][0] == WARN
    assert "arecord" not in [call[0] for call in probe.run.calls]


def test_the_doctor_holds_the_device_while_it_probes(tmp_path, fresh_device, capsys):
    from hal.devicelock import DeviceBusyError
    with DeviceLock(str(fresh_device.dir)):          # a run that ended: run.lock stays behind, unheld
        pass
    api, _ = make_camera_api(libav=True)
    seen = []

    def load():
        try:
            with DeviceLock(str(fresh_device.dir)):
                seen.append("free")
        except DeviceBusyError:
            seen.append("held")
        return api

    code = doctor.run(args("pi", fresh_device.dir), healthy_pi(tmp_path, uid=os.geteuid, load_picamera2_api=load))
    found = lines_of(capsys.readouterr().out)
    assert code == 0 and seen == ["held"]
    assert found["device-lock"] == (OK, f"{fresh_device.dir} is not running; the doctor holds it while probing")
    with DeviceLock(str(fresh_device.dir)):          # and lets go at the end
        pass


def test_a_bad_pi_toml_is_one_fail_line_and_the_checks_that_need_it_wait(tmp_path, fresh_device, capsys):
    write(fresh_device.dir, "pi.toml", "buzzer_pin = true\n")
    code = doctor.run(args("pi", fresh_device.dir), healthy_pi(tmp_path, uid=os.geteuid))
    found = lines_of(capsys.readouterr().out)
    assert code == 1
    assert found["pi-config"] == (FAIL, f"{fresh_device.dir / 'pi.toml'}, line 1: buzzer_pin must be an integer, "
                                         "got True")
    assert found["gpio-pins"] == (WARN, "not checked: pi.toml did not load")
    assert [c for c, (s, _) in found.items() if s == FAIL] == ["pi-config"]


# -- the command ------------------------------------------------------------------------------------------------------
def test_doctor_sim_on_a_provisioned_device_is_all_ok(bwc, blank_device):
    r = bwc("doctor", "--hal", "sim", "--device", blank_device.dir)
    found = lines_of(r.stdout)
    assert r.returncode == 0, str(r)
    assert list(found) == ["device", "policy", "storage-fs", "storage-space", "clock", "keys", "announce"]
    assert found["device"] == (OK, f"{blank_device.dir}: device 'cam-blank-02', device.key matches device.json")
    assert found["announce"][1].startswith("notice audio for en ")
    assert r.stderr == ""


def test_doctor_sim_json(bwc, blank_device):
    r = bwc("doctor", "--hal", "sim", "--device", blank_device.dir, "--json")
    report = json.loads(r.stdout)
    assert r.returncode == 0
    assert [e["check"] for e in report][:2] == ["device", "policy"]
    # storage-fs may warn where the test's tmp directory is on overlayfs or tmpfs (a CI container).
    assert {(e["status"], e["blocking"]) for e in report if e["check"] != "storage-fs"} == {(OK, False)}
    assert not any(e["blocking"] for e in report)


def test_doctor_sim_finds_a_readable_key_and_a_broken_notice(bwc, fresh_device):
    os.chmod(fresh_device.dir / "device.key", 0o644)
    write(fresh_device.dir, "announce/en.wav", "not audio")
    r = bwc("doctor", "--hal", "sim", "--device", fresh_device.dir)
    found = lines_of(r.stdout)
    assert r.returncode == 1, str(r)
    assert found["keys"][0] == FAIL and "mode 644" in found["keys"][1]
    assert found["announce"][0] == FAIL and "en.wav" in found["announce"][1]
    # bwc run would refuse this key too (KeyStoreError): the device check names it.
    assert found["device"][0] == FAIL and "readable by others" in found["device"][1]


def test_doctor_sim_with_a_bad_policy(bwc, fresh_device):
    (fresh_device.dir / "policy.toml").write_text("pre_event_s = 500\n", encoding="utf-8")
    r = bwc("doctor", "--hal", "sim", "--device", fresh_device.dir)
    found = lines_of(r.stdout)
    assert r.returncode == 1
    assert found["policy"][0] == FAIL and "pre_event_s must be 0..120 seconds" in found["policy"][1]
    assert found["announce"] == (WARN, "not checked: the policy did not load")


@pytest.mark.parametrize("argv, message", [
    (["--hal", "sim"], "bwc doctor: --hal sim checks a provisioned device: give --device DEVICE_DIR\n"),
    (["--hal", "pi", "--device", "/nonexistent/cam"], "bwc doctor: --device /nonexistent/cam: not a directory\n"),
])
def test_usage_errors_are_one_line_and_exit_2(bwc, argv, message):
    r = bwc("doctor", *argv)
    assert (r.returncode, r.stdout, r.stderr) == (2, "", message)


def test_doctor_pi_on_this_machine_says_what_is_missing_without_a_traceback(bwc, blank_device, snapshot):
    before = snapshot(blank_device.dir)
    # This machine is no Pi (no picamera2, no lgpio): the real probe must say so, line by line.
    r = bwc("doctor", "--hal", "pi", "--device", blank_device.dir, "--json")
    entries = json.loads(r.stdout)
    report = {e["check"]: e for e in entries}
    assert r.returncode == (1 if any(e["blocking"] for e in entries) else 0), str(r)
    assert all("\n" not in e["detail"] for e in entries)
    if report["picamera2"]["status"] == FAIL:   # no picamera2 here: the camera checks wait for it
        assert "python3-picamera2" in report["picamera2"]["detail"] and report["camera"]["status"] == WARN
    assert report["device-lock"] == {"check": "device-lock", "status": OK, "blocking": False,
                                     "detail": f"{blank_device.dir} has never run (no run.lock)"}
    assert report["keys"]["status"] == OK and report["announce"]["status"] == OK
    assert snapshot(blank_device.dir) == before   # the doctor changes nothing in the device directory


def test_the_bookworm_numpy_abi_failure_end_to_end(bwc, blank_device, tmp_path, monkeypatch):
    # A picamera2 that fails to import the way Bookworm's does when a pip numpy 2.x shadows
    # the system numpy its simplejpeg was built for (issue 9, item 1).
    package = tmp_path / "shadow" / "picamera2"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        'raise ValueError("numpy.dtype size changed, may indicate binary incompatibility. '
        'Expected 96 from C header, got 88 from PyObject")\n', encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "shadow"))
    r = bwc("doctor", "--hal", "pi", "--device", blank_device.dir)
    found = lines_of(r.stdout)
    assert r.returncode == 1, str(r)
    assert found["picamera2"][0] == FAIL
    assert found["picamera2"][1].startswith("picamera2 cannot import: numpy ABI mismatch (`numpy.dtype size changed`)")
    assert found["camera"] == (WARN, "not checked: picamera2 does not import")


def test_a_run_lock_this_user_cannot_open_is_one_fail_and_no_hardware_is_probed(tmp_path, fresh_device, capsys,
                                                                                 monkeypatch):
    """The service's own run.lock (mode 600, user openbwc) and a doctor run as `pi`."""
    import hal.devicelock
    from hal.devicelock import LOCK_FILE

    (fresh_device.dir / LOCK_FILE).write_text("")
    real_open = os.open

    def refuse(path, *a, **kw):
        if str(path).endswith(LOCK_FILE):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **kw)

    monkeypatch.setattr(hal.devicelock.os, "open", refuse)
    api, camera = make_camera_api(libav=True)
    probe = healthy_pi(tmp_path, uid=os.geteuid, load_picamera2_api=lambda: api)
    code = doctor.run(args("pi", fresh_device.dir), probe)
    found = lines_of(capsys.readouterr().out)
    assert code == 1 and camera.opened == 0
    assert found["device-lock"][0] == FAIL and "run the doctor as the service's user" in found["device-lock"][1]
    assert "arecord" not in [call[0] for call in probe.run.calls]
