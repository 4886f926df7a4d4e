"""`bwc group` and `bwc vehicle` as a provisioning station runs them, in subprocesses; and
`bwc vehicle start` over real UDP into a camera's GroupLink on 127.0.0.1."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from device.group import GroupLink, RecordCounterStore, read_member_record
from hal.filekeystore import FileKeyStore
from hal.realclock import RealClock
from hal.udp_radio import UdpRadio

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.tool


def bwc(*args, ok=True):
    result = subprocess.run([sys.executable, "-m", "tools.cli", *map(str, args)], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    if ok:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode == 2, result
        assert result.stdout == "" and result.stderr.count("\n") == 1, result.stderr
    return result


@pytest.fixture(scope="module")
def station(tmp_path_factory):
    root = tmp_path_factory.mktemp("station")
    bwc("keygen", "--out", root / "custodian")
    bwc("provision", "--device-id", "cam-1", "--custodian", root / "custodian" / "custodian.pub",
        "--out", root / "cam-1")
    bwc("group", "init", "--name", "unit-12", "--out", root / "group")
    bwc("group", "admit", root / "group", "--device", root / "cam-1")
    bwc("vehicle", "init", "--group", root / "group", "--id", "car-7", "--out", root / "car-7")
    return root


def test_init_admit_and_vehicle_init_write_the_records(station):
    g = station / "group"
    assert (g / "group.key").stat().st_mode & 0o777 == 0o600
    assert (g / "group.pub").read_text().startswith("openbwc-group-public-v1:")
    cam = json.loads((station / "cam-1" / "group.json").read_text())
    assert set(cam) == {"group", "group_pub", "member_id", "role", "cert"}
    assert cam["member_id"] == "cam-1" and cam["role"] == "camera" and cam["group"] == "unit-12"
    assert (station / "cam-1" / "group.json").stat().st_mode & 0o777 == 0o600
    car = read_member_record(str(station / "car-7" / "group.json"))
    assert car.role == "vehicle" and car.member_id == "car-7" and car.group_pub.hex() == cam["group_pub"]
    assert (station / "car-7" / "device.key").stat().st_mode & 0o777 == 0o600
    members = [json.loads(line) for line in (g / "members.jsonl").read_text().splitlines()]
    assert [(m["member_id"], m["role"]) for m in members] == [("cam-1", "camera"), ("car-7", "vehicle")]


def test_vehicle_start_over_real_udp_starts_the_camera(station):
    cam_dir = str(station / "cam-1")
    store = FileKeyStore(cam_dir)
    radio = UdpRadio("127.0.0.1:0")
    started = threading.Event()
    starts, logs = [], []
    try:
        GroupLink(read_member_record(os.path.join(cam_dir, "group.json")), SigningKey(store.signing_seed()),
                  RecordCounterStore(store), radio, RealClock(), [],
                  lambda source, fields: (starts.append((source, fields)), started.set()),
                  lambda status, fields: logs.append((status, fields)))
        out = bwc("vehicle", "start", station / "car-7", "--peers", radio.address)
        assert started.wait(5)
    finally:
        radio.close()
    assert "sent to 1 peer" in out.stdout
    assert starts[0][0] == "vehicle:car-7" and starts[0][1]["cause"] == "lightbar"
    assert [s for s, _ in logs] == ["accepted"]        # the two retransmissions: silent duplicates
    assert radio.errors == []


@pytest.mark.parametrize("args, message", [
    (["group", "init", "--name", "bad name", "--out", "{tmp}/g"], "group name"),
    (["group", "init", "--name", "g", "--out", "{station}/group"], "not empty"),
    (["group", "admit", "{tmp}/nowhere", "--device", "{station}/cam-1"], "not a group directory"),
    (["group", "admit", "{station}/cam-1", "--device", "{station}/cam-1"], "not a group directory"),
    (["group", "admit", "{station}/group", "--device", "{tmp}"], "provision the device first"),
    (["group", "admit", "{station}/group", "--device", "{station}/cam-1"], "already in a group"),
    (["vehicle", "init", "--group", "{tmp}", "--id", "car-8", "--out", "{tmp}/v"], "not a group directory"),
    (["vehicle", "init", "--group", "{station}/group", "--id", "car 8", "--out", "{tmp}/v"], "member id"),
    (["vehicle", "start", "{tmp}", "--peers", "127.0.0.1:9"], "no group membership"),
    (["vehicle", "start", "{station}/cam-1", "--peers", "127.0.0.1:9"], "not a vehicle"),
    (["vehicle", "start", "{station}/car-7", "--peers", "nowhere"], "HOST:PORT"),
    (["vehicle", "start", "{station}/car-7", "--peers", "127.0.0.1:9", "--cause", "Bad Cause"], "--cause"),
    (["vehicle", "start", "{tmp}/nowhere", "--peers", "127.0.0.1:9"], "not a vehicle directory"),
])
def test_user_mistakes_end_in_one_line(station, tmp_path, args, message):
    args = [a.format(tmp=tmp_path, station=station) for a in args]
    assert message in bwc(*args, ok=False).stderr


def test_a_group_key_readable_by_others_is_refused(station, tmp_path):
    import shutil
    g = tmp_path / "group"
    shutil.copytree(station / "group", g)
    os.chmod(g / "group.key", 0o644)
    assert "readable by others" in bwc("vehicle", "init", "--group", g, "--id", "car-9", "--out",
                                       tmp_path / "v", ok=False).stderr
    assert not (tmp_path / "v").exists()
