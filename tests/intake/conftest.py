"""Fixtures for the intake tier (docs/offload.md), reusable by the offload tier:

- `intake_dir`: a fresh `bwc intake init` directory; `enroll(intake_dir, device_pub)` admits a device.
- `moto_server` (session): a real moto S3 server on 127.0.0.1 (or the S3-compatible server that
  OBWC_TEST_S3_ENDPOINT names, e.g. MinIO, with AWS_* credentials); `.new_bucket()`, `.endpoint`.
- `intake_server(store_url=None, s3_endpoint=None, intake_dir=None)`: a factory that starts a real
  `bwc intake serve` subprocess and returns an `intake_client.Server` (`.url`, `.access_log()`,
  `.stop()`); every server still running at teardown is stopped with SIGTERM and must exit 0.
- `recorded` (session): a device that recorded two events (one with a marker) in several
  segments; read-only — copy its storage to change it. `device_key` is its SigningKey.
"""
from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "scenario"))

from intake_client import Server, bwc, s3_server  # noqa: E402
from scenario_support import Custodian, make_custodian, make_device, record, scenario_toml  # noqa: E402

TWO_EVENTS = scenario_toml(14, [{"t_s": 1.0, "do": "button.double_press"},
                                {"t_s": 2.5, "do": "button.press"},
                                {"t_s": 4.0, "do": "button.hold", "hold_s": 3.0},
                                {"t_s": 9.0, "do": "button.double_press"},
                                {"t_s": 10.5, "do": "button.hold", "hold_s": 3.0}],
                           pre_event_s=1, segment_s=2)


def enroll(intake_dir: str, device_pub: str) -> None:
    result = bwc("intake", "enroll", intake_dir, "--device-pub", device_pub)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def intake_dir(tmp_path) -> str:
    directory = str(tmp_path / "intake")
    result = bwc("intake", "init", "--out", directory)
    assert result.returncode == 0, result.stderr
    return directory


@pytest.fixture(scope="session")
def moto_server():
    server = s3_server()
    yield server
    server.stop()


@pytest.fixture
def intake_server(tmp_path, intake_dir):
    started: list[Server] = []

    def start(store_url: str | None = None, s3_endpoint: str | None = None, directory: str | None = None) -> Server:
        store_url = store_url or "file://" + str(tmp_path / f"store-{len(started)}")
        log = str(tmp_path / f"intake-{len(started)}.log")
        server = Server(directory or intake_dir, store_url, log, s3_endpoint).start()
        started.append(server)
        return server

    yield start
    for server in started:
        running = server.proc.poll() is None
        code = server.stop()
        if running:
            assert code == 0, open(server.log_path).read()


@dataclass(frozen=True)
class Recorded:
    directory: str
    pub_path: str
    storage: str
    custodian: Custodian


@pytest.fixture(scope="session")
def recorded(tmp_path_factory) -> Recorded:
    root = tmp_path_factory.mktemp("intake-recorded")
    custodian = make_custodian(str(root / "keys"))
    device = make_device(str(root / "device"), custodian, device_id="intake-cam")
    record(device, custodian, TWO_EVENTS, None)
    return Recorded(device.directory, device.pub_path, device.storage, custodian)


@pytest.fixture(scope="session")
def device_key(recorded):
    return signing_key(recorded.directory)


@pytest.fixture
def card(recorded, tmp_path) -> str:
    """A copy of the recorded storage, to change."""
    return shutil.copytree(recorded.storage, str(tmp_path / "card"))


SHORT = scenario_toml(6, [{"t_s": 1.0, "do": "button.double_press"},
                          {"t_s": 2.0, "do": "button.hold", "hold_s": 3.0}], pre_event_s=1, segment_s=2)
OTHER_SHORT = scenario_toml(7, [{"t_s": 1.5, "do": "button.double_press"},
                                {"t_s": 3.0, "do": "button.hold", "hold_s": 3.0}], pre_event_s=1, segment_s=2)


@pytest.fixture(scope="session")
def forked(tmp_path_factory) -> tuple[Recorded, Recorded]:
    """One device key, two histories: the device directory copied after provisioning and
    each copy recorded differently (what a cloned or rolled-back camera would send)."""
    root = tmp_path_factory.mktemp("intake-forked")
    custodian = make_custodian(str(root / "keys"))
    a = make_device(str(root / "a"), custodian, device_id="forked-cam")
    shutil.copytree(a.directory, str(root / "b"))
    b = type(a)(str(root / "b"), str(root / "b" / "device.pub"))
    record(a, custodian, SHORT, None)
    record(b, custodian, OTHER_SHORT, None)
    return (Recorded(a.directory, a.pub_path, a.storage, custodian),
            Recorded(b.directory, b.pub_path, b.storage, custodian))


def signing_key(device_dir: str):
    from hal.filekeystore import FileKeyStore
    from nacl.signing import SigningKey
    return SigningKey(FileKeyStore(device_dir).signing_seed())
