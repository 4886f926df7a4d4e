"""A fleet (issue 7): N devices offload at once to two intake replicas sharing one S3 bucket
(a real moto S3 server). Every device exits 0 with a valid receipt logged and its card
emptied of what was received; every device's whole history verifies from the bucket; no
segment is lost or held twice. Prints the aggregate rate and request latencies
(`bwc bench run offload` reports the same for a file store)."""
from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import threading
import time

import pytest
from nacl.signing import VerifyKey

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "intake"))

from intake_client import Server, s3_server  # noqa: E402

from device.evidence.keys import INTAKE_PUBLIC, read_device_public, read_key  # noqa: E402
from device.evidence.receipt import check_receipt  # noqa: E402
from device.evidence.storage_verify import verify_storage  # noqa: E402
from tools.bench.model import percentile  # noqa: E402
from tools.bench.offload import SMALL, card_bytes, record_card  # noqa: E402
from tools.intake.config import enroll_device, init_intake  # noqa: E402
from tools.intake.history import materialised  # noqa: E402
from tools.cli import main  # noqa: E402
from tools.intake.store import open_store  # noqa: E402

pytestmark = pytest.mark.tool


@pytest.fixture(scope="module")
def moto():
    server = s3_server()
    yield server
    server.stop()


def _fleet(tmp_path, moto, devices: int, monkeypatch) -> None:
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        if name not in os.environ:
            monkeypatch.setenv(name, value)
    intake_dir = str(tmp_path / "intake")
    init_intake(intake_dir)
    intake_pub = os.path.join(intake_dir, "intake.pub")
    cards = [record_card(str(tmp_path / "cams"), intake_pub, SMALL, 2, segment_s=1, device_id=f"cam-{i:04d}")
             for i in range(devices)]
    seqs = {}
    for card in cards:
        enroll_device(intake_dir, os.path.join(card, "device.pub"))
        seqs[card] = sorted(int(n[4:14]) for n in os.listdir(os.path.join(card, "storage")) if n.startswith("seg-"))
    payload = sum(card_bytes(c) for c in cards)
    store_url = f"s3://{moto.new_bucket()}/fleet"
    replicas = [Server(intake_dir, store_url, str(tmp_path / f"replica{i}.log"), moto.endpoint).start()
                for i in range(2)]
    codes: dict[str, int] = {}

    def offload(i: int, card: str) -> None:
        codes[card] = main(["offload", "--device", card, "--to", replicas[i % 2].url, "--json"])

    try:
        # One `bwc offload` per device, all at once, as threads of this process: the same
        # code as the command, without twenty interpreters starting on two cores.
        threads = [threading.Thread(target=offload, args=(i, card)) for i, card in enumerate(cards)]
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            for t in threads:
                t.start()
            for t in threads:
                t.join(600)
        elapsed = time.perf_counter() - started
    finally:
        for r in replicas:
            assert r.stop() == 0
    latencies = sorted(line["duration_ms"] for r in replicas for line in r.access_log()
                       if line["path"].startswith("/v1/devices/"))
    print(f"\nfleet: {devices} devices, 2 replicas, {payload / 1e6:.1f} MB in {elapsed:.1f} s = "
          f"{payload / 1e6 / elapsed:.2f} MB/s aggregate; {len(latencies)} requests, "
          f"p50 {percentile(latencies, 50):.1f} ms, p99 {percentile(latencies, 99):.1f} ms")
    intake_key = read_key(intake_pub, INTAKE_PUBLIC)
    for card in cards:
        assert codes.get(card) == 0, (card, codes.get(card))
        left = os.listdir(os.path.join(card, "storage"))
        assert not [n for n in left if n.startswith("seg-")] and len(left) == 1, left
        with open(os.path.join(card, "storage", left[0]), "rb") as f:
            entry = json.loads(f.read().rstrip(b"\n").split(b"\n")[-1].rpartition(b" ")[0])
        device_hex = bytes(read_device_public(os.path.join(card, "device.pub"))).hex()
        segs, audit = check_receipt(entry["receipt"], device_hex, [intake_key])
        assert entry["type"] == "receipt" and segs[0] == seqs[card][-1]
    store = open_store(store_url, moto.endpoint)
    for card in cards:
        device_key = read_device_public(os.path.join(card, "device.pub"))
        held = [k for k in store.list(f"devices/{bytes(device_key).hex()}/segments/")]
        assert sorted(k for k in held if k.endswith(".json")) == \
            [f"devices/{bytes(device_key).hex()}/segments/{s:010d}.json" for s in seqs[card]]
        assert len([k for k in held if k.endswith(".bwc")]) == len(seqs[card])     # nothing doubled
        with materialised(store, bytes(device_key).hex()) as directory:
            report = verify_storage(directory, device_key)
        assert report.outcome == "authentic" and not report.gaps, report.to_json()


def test_twenty_devices_offload_at_once_to_two_replicas_on_one_bucket(tmp_path, moto, monkeypatch):
    _fleet(tmp_path, moto, 20, monkeypatch)


@pytest.mark.slow
def test_two_hundred_devices(tmp_path, moto, monkeypatch):
    _fleet(tmp_path, moto, 200, monkeypatch)
