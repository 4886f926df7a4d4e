"""The store contract (docs/offload.md §5) on both stores — a file tree and a real S3 API
server: create-only writes that two writers cannot both win, sorted listing under a
prefix, streaming of large objects, and clear errors for bad URLs."""
from __future__ import annotations

import io
import os
import threading

import pytest

from tools.intake.store import FileStore, StoreError, StoreURLError, open_store


@pytest.fixture(params=["file", "s3"])
def store(request, tmp_path, monkeypatch):
    if request.param == "file":
        return FileStore(str(tmp_path / "store"))
    moto = request.getfixturevalue("moto_server")
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        if name not in os.environ:
            monkeypatch.setenv(name, value)
    return open_store(f"s3://{moto.new_bucket()}/pre/fix", moto.endpoint)


def test_create_only_writes_never_overwrite(store):
    assert store.put_if_absent("devices/d/a.json", b"first")
    assert not store.put_if_absent("devices/d/a.json", b"second")
    assert store.get("devices/d/a.json") == b"first"
    assert store.get("devices/d/missing") is None


def test_listing_is_sorted_and_bounded_by_the_prefix(store):
    for key in ("devices/b/2", "devices/a/10", "devices/a/02", "devices/ab/1", "nonces/a/1"):
        assert store.put_if_absent(key, key.encode())
    assert store.list("devices/a/") == ["devices/a/02", "devices/a/10"]
    assert store.list("devices/a") == ["devices/a/02", "devices/a/10", "devices/ab/1"]
    assert store.list("devices/zz/") == []
    store.delete("devices/a/02")
    store.delete("devices/a/02")          # deleting what is gone is not an error
    assert store.list("devices/a/") == ["devices/a/10"]


def test_large_objects_stream_both_ways(store, tmp_path):
    data = bytes(range(256)) * 12_289     # ~3 MiB, not a multiple of any buffer
    assert store.put_if_absent("big/object", io.BytesIO(data))
    out = io.BytesIO()
    assert store.get_to_file("big/object", out)
    assert out.getvalue() == data
    assert not store.get_to_file("big/none", io.BytesIO())


def test_racing_writers_exactly_one_wins(store):
    results, barrier = [], threading.Barrier(8)

    def write(i: int) -> None:
        barrier.wait()
        results.append((store.put_if_absent("devices/d/segments/0000000001.json", f"writer {i}".encode()), i))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for won, i in results if won]
    assert len(winners) == 1
    assert store.get("devices/d/segments/0000000001.json") == f"writer {winners[0]}".encode()


@pytest.mark.parametrize("key", ["", "/abs", "a//b", "a/../b", "a/./b", "a b", "a/b/", "ä"])
def test_keys_outside_the_alphabet_are_refused(key, tmp_path):
    with pytest.raises(ValueError):
        FileStore(str(tmp_path)).put_if_absent(key, b"x")


@pytest.mark.parametrize("url", ["ftp://x", "file://host/path", "file:relative", "s3://", "s3://b/bad prefix",
                                 "/plain/path"])
def test_store_urls_that_cannot_work_are_refused(url):
    with pytest.raises(StoreURLError):
        open_store(url)


def test_an_unreachable_s3_endpoint_is_a_store_error(monkeypatch):
    from intake_client import free_port
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    store = open_store("s3://evidence", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(StoreError):
        store.ping()
