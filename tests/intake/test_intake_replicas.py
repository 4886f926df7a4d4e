"""Stateless replicas (docs/offload.md §5): two `bwc intake serve` processes on one S3
bucket. Racing commits of the same upload accept it once; racing commits of two different
segments under one seq accept exactly one. Graceful shutdown and readiness."""
from __future__ import annotations

import hashlib
import threading

from device.offload.protocol import H_PART_BYTES, H_SEGMENT_SIZE
from intake_client import Client, card_files
from conftest import enroll, signing_key


def _parts(client: Client, seq: int, data: bytes) -> str:
    sha = hashlib.sha256(data).hexdigest()
    headers = {H_SEGMENT_SIZE: str(len(data)), H_PART_BYTES: "16384"}
    for index in range(-(-len(data) // 16384)):
        status, body = client.call("PUT", f"segments/{seq}/{sha}/parts/{index}",
                                   data[index * 16384:(index + 1) * 16384], headers)
        assert status == 200, body
    return sha


def _race(calls) -> list:
    barrier, results = threading.Barrier(len(calls)), [None] * len(calls)

    def run(i, call):
        barrier.wait()
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_two_replicas_on_one_bucket_never_accept_twice(intake_dir, intake_server, moto_server, forked):
    a, b = forked
    enroll(intake_dir, a.pub_path)
    store = f"s3://{moto_server.new_bucket()}"
    one, two = intake_server(store, moto_server.endpoint), intake_server(store, moto_server.endpoint)
    key = signing_key(a.directory)
    c1, c2 = Client(one.url, key), Client(two.url, key)
    seg_a = open(dict(card_files(a.storage)[1])[1], "rb").read()
    seg_b = open(dict(card_files(b.storage)[1])[1], "rb").read()
    # The same upload, committed at once through both replicas.
    sha = _parts(c1, 1, seg_a)
    results = _race([lambda: c1.call("POST", f"segments/1/{sha}/commit"),
                     lambda: c2.call("POST", f"segments/1/{sha}/commit")])
    assert sorted(body["status"] for _, body in results) == ["accepted", "already_held"], results
    # Two histories' segment 2 (same key, same seq), committed at once through the two replicas.
    seg2_a = open(dict(card_files(a.storage)[1])[2], "rb").read()
    seg2_b = open(dict(card_files(b.storage)[1])[2], "rb").read()
    sha_a, sha_b = _parts(c1, 2, seg2_a), _parts(c2, 2, seg2_b)
    results = _race([lambda: c1.call("POST", f"segments/2/{sha_a}/commit"),
                     lambda: c2.call("POST", f"segments/2/{sha_b}/commit")])
    outcomes = sorted(body.get("status") or body.get("error") for _, body in results)
    # b's segment 2 follows b's segment 1, which the intake does not hold: a chain break if
    # checked after a's segment 2 landed or against a's segment 1; a seq conflict if it lost the race.
    assert outcomes.count("accepted") == 1 and set(outcomes) - {"accepted"} <= {"seq_conflict", "chain_break"}
    held = c2.state()["segments"]
    assert [(s["seq"], s["sha256"]) for s in held] == [(1, sha), (2, sha_a)]
    assert c1.state()["segments"] == held
    # b's segment 1 under the accepted seq 1: refused through either replica.
    assert c2.upload(1, seg_b)[1]["error"] == "seq_conflict"


def test_readiness_follows_the_store(intake_dir, intake_server, tmp_path):
    import http.client
    import shutil
    store_dir = tmp_path / "vanishing-store"
    store_dir.mkdir()
    server = intake_server("file://" + str(store_dir))

    def ready() -> int:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/readyz")
        status = conn.getresponse().status
        conn.close()
        return status

    assert ready() == 200
    shutil.rmtree(store_dir)
    assert ready() == 503
    store_dir.mkdir()
    assert ready() == 200
