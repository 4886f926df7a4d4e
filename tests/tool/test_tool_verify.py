"""`bwc verify`: the custodian's check with the device public key only."""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.tool


def evidence_files(storage) -> list[str]:
    return sorted(p.name for p in storage.iterdir() if not p.name.startswith("."))


def test_verify_a_clean_recording(bwc, recording):
    assert recording.result.returncode == 0, str(recording.result)
    r = bwc("verify", recording.storage, "--device-pub", recording.device.pub)
    assert r.returncode == 0, str(r)
    lines = r.stdout.splitlines()
    names = evidence_files(recording.storage)
    assert "audit-0000000001.log" in names and len(names) >= 3
    for name in names:  # every file on its own line with its outcome
        assert any(line.split() == ["authentic", name] for line in lines), (name, r.stdout)
    assert lines[-1].startswith("Result: AUTHENTIC and complete")
    assert "2 event(s)" in lines[-1]
    assert "FAILED" not in r.stdout
    assert r.stderr == ""


def test_verify_json(bwc, recording):
    r = bwc("verify", recording.storage, "--device-pub", recording.device.pub, "--json")
    assert r.returncode == 0, str(r)
    report = json.loads(r.stdout)
    assert report["outcome"] == "authentic"
    assert report["problems"] == [] and report["cut_short"] == []
    assert set(report["files"]) == set(evidence_files(recording.storage))
    assert set(report["files"].values()) == {"authentic"}
    assert len(report["events"]) == 2
    assert report["audit_entries"] > 0


def test_verify_does_not_change_the_storage(bwc, recording, snapshot):
    before = snapshot(recording.storage)
    bwc("verify", recording.storage, "--device-pub", recording.device.pub)
    assert snapshot(recording.storage) == before


@pytest.mark.parametrize("as_json", [False, True], ids=["human", "json"])
def test_verify_with_another_devices_key_is_an_integrity_failure(bwc, recording, blank_device, as_json):
    r = bwc("verify", recording.storage, "--device-pub", blank_device.pub, *(["--json"] if as_json else []))
    assert r.returncode == 1, str(r)
    segments = [n for n in evidence_files(recording.storage) if n.startswith("seg-")]
    if as_json:
        report = json.loads(r.stdout)
        assert report["outcome"] == "integrity_failure"
        failed = {p["file"]: p["reason"] for p in report["problems"]}
    else:
        assert r.stdout.splitlines()[-1].startswith("Result: INTEGRITY FAILURE")
        failed = {}
        for line in r.stdout.splitlines():
            if line.strip().startswith("FAILED"):
                name, _, reason = line.strip().removeprefix("FAILED").strip().partition(": ")
                failed[name] = reason
    for name in segments:  # which file, and why: signed by another device
        assert name in failed, (name, r.stdout)
        assert "not the expected device" in failed[name]
        assert "cam-rec-01" in failed[name]  # the device that did sign it
    assert "audit-0000000001.log" in failed


def test_verify_a_storage_dir_that_does_not_exist(bwc, tmp_path, recording):
    missing = tmp_path / "no-such-card"
    r = bwc("verify", missing, "--device-pub", recording.device.pub)
    assert r.returncode == 2, str(r)
    assert str(missing) in r.stderr and "not a directory" in r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("which", ["custodian.pub", "custodian.key"])
def test_verify_with_a_custodian_key_as_device_pub(bwc, recording, which):
    key = recording.custodian.dir / which
    r = bwc("verify", recording.storage, "--device-pub", key)
    assert r.returncode == 2, str(r)
    assert r.stderr.startswith(f"bwc verify: {key}: ")
    kind = "openbwc-custodian-secret-v1" if which.endswith(".key") else "openbwc-custodian-public-v1"
    assert kind in r.stderr and "openbwc-device-public-v1" in r.stderr
    assert r.stdout == ""
    if which.endswith(".key"):  # the refused secret is not echoed back
        assert key.read_text().strip().partition(":")[2] not in r.stderr


def test_verify_with_a_missing_device_pub(bwc, recording, tmp_path):
    r = bwc("verify", recording.storage, "--device-pub", tmp_path / "gone.pub")
    assert r.returncode == 2, str(r)
    assert f"{tmp_path / 'gone.pub'}: no such file" in r.stderr


def test_verify_an_empty_storage_dir(bwc, tmp_path, recording):
    """An empty directory (a wiped card, or the wrong path) is not "authentic and
    complete": there is nothing to vouch for, so it is a usage error that says so."""
    empty = tmp_path / "card"
    empty.mkdir()
    for extra in ((), ("--json",)):
        r = bwc("verify", empty, "--device-pub", recording.device.pub, *extra)
        assert r.returncode == 2, str(r)
        assert "is empty" in r.stderr and "AUTHENTIC" not in r.stdout


def test_verify_a_device_dir_instead_of_its_storage(bwc, recording):
    """A custodian's slip: DEVICE_DIR instead of DEVICE_DIR/storage. Files that are not
    evidence are reported by name, never silently passed."""
    r = bwc("verify", recording.device.dir, "--device-pub", recording.device.pub)
    assert r.returncode == 1, str(r)
    assert "device.json: unexpected file in evidence storage" in r.stdout


def test_verify_starts_without_loading_media_or_hardware_libraries(recording):
    """A custodian's `bwc verify` is mostly start-up on a small set: it must not load
    PyAV, numpy or the other commands' modules (hardware backends, the simulator)."""
    import subprocess
    import sys
    from pathlib import Path

    probe = ("import sys, openbwc\nfrom tools import cli\n"
             f"code = cli.main(['verify', {str(recording.storage)!r}, '--device-pub', {str(recording.device.pub)!r}])\n"
             "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('av', 'numpy', 'simulator', 'hal'))\n"
             "print('HEAVY', heavy)\nsys.exit(code)\n")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                       cwd=Path(__file__).resolve().parents[2])
    assert r.returncode == 0, r.stderr
    assert "HEAVY []" in r.stdout, r.stdout.splitlines()[-1]
