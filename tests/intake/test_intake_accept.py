"""The accept path (docs/offload.md §4): a recorded card's audit log and segments, sent in
parts, are verified on arrival, answered with receipts that check against the intake key,
and read back by custodians from the store with no gap (VER-3): `bwc verify` exit 0 and
`bwc export` the same events as from the card."""
from __future__ import annotations

import os

import pytest
from nacl.signing import VerifyKey

from device.evidence.keys import INTAKE_PUBLIC, read_key
from device.evidence.receipt import check_receipt
from intake_client import Client, bwc, card_files, upload_card
from conftest import enroll


def _intake_key(intake_dir: str) -> bytes:
    return read_key(os.path.join(intake_dir, "intake.pub"), INTAKE_PUBLIC)


def _check_store(store_url: str, recorded, tmp_path, extra: tuple = ()) -> None:
    verify = bwc("verify", store_url, "--device-pub", recorded.pub_path, *extra)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    by_id = bwc("verify", store_url, "--device-pub", recorded.pub_path, "--device", "intake-cam", *extra)
    assert by_id.returncode == 0, by_id.stdout + by_id.stderr
    from_intake = bwc("export", store_url, "--key", recorded.custodian.secret_path, "--out",
                      str(tmp_path / "from-intake"), "--device", "intake-cam", *extra)
    from_card = bwc("export", recorded.storage, "--key", recorded.custodian.secret_path, "--out",
                    str(tmp_path / "from-card"))
    assert from_intake.returncode == from_card.returncode == 0, from_intake.stderr + from_card.stderr
    mp4s = lambda d: sorted(n for n in os.listdir(d) if n.endswith(".mp4"))  # noqa: E731
    assert mp4s(str(tmp_path / "from-intake")) == mp4s(str(tmp_path / "from-card"))
    assert len(mp4s(str(tmp_path / "from-card"))) == 2
    for name in mp4s(str(tmp_path / "from-card")):
        with open(tmp_path / "from-intake" / name, "rb") as a, open(tmp_path / "from-card" / name, "rb") as b:
            assert a.read() == b.read()


def test_a_card_offloaded_in_parts_is_receipted_and_verifies_from_the_store(
        intake_dir, intake_server, recorded, device_key, tmp_path):
    enroll(intake_dir, recorded.pub_path)
    server = intake_server()
    client = Client(server.url, device_key)
    last = upload_card(client, recorded.storage)
    segs, audit = check_receipt(last["receipt"], client.device, [_intake_key(intake_dir)])
    audits, segments = card_files(recorded.storage)
    assert segs[0] == segments[-1][0]          # the newest segment, so every one before it
    assert audit is not None and audit[0] >= 0
    state = client.state()
    assert [s["seq"] for s in state["segments"]] == [s for s, _ in segments]
    assert state["uploads"] == []              # parts are gone once a segment is accepted
    # The same again: idempotent, nothing new, a fresh receipt.
    seq, path = segments[0]
    with open(path, "rb") as f:
        status, body = client.upload(seq, f.read())
    assert (status, body["status"]) == (200, "already_held")
    check_receipt(body["receipt"], client.device, [_intake_key(intake_dir)])
    _check_store(server.store_url, recorded, tmp_path)
    lines = server.access_log()
    assert {line["status"] for line in lines} == {200}
    assert all(line["device"] == client.device[:16] for line in lines if line["path"].startswith("/v1/devices"))


def test_the_same_on_an_s3_store(intake_dir, intake_server, moto_server, recorded, device_key, tmp_path):
    enroll(intake_dir, recorded.pub_path)
    store = f"s3://{moto_server.new_bucket()}/agency/cams"
    server = intake_server(store, moto_server.endpoint)
    client = Client(server.url, device_key)
    last = upload_card(client, recorded.storage, part_bytes=64 * 1024)
    assert check_receipt(last["receipt"], client.device, [_intake_key(intake_dir)])[0] is not None
    _check_store(store, recorded, tmp_path, ("--s3-endpoint", moto_server.endpoint))


def test_rewritten_part_headers_cannot_block_an_upload(intake_dir, intake_server, recorded, device_key):
    """OBWC-Segment-Size and OBWC-Part-Bytes are not signed: a party on the path that rewrites
    them on the first part makes a second, useless upload, never a blocked or wrong one."""
    from device.offload.protocol import H_PART_BYTES, H_SEGMENT_SIZE
    import hashlib
    enroll(intake_dir, recorded.pub_path)
    server = intake_server()
    client = Client(server.url, device_key)
    seq, path = card_files(recorded.storage)[1][0]
    data = open(path, "rb").read()
    sha = hashlib.sha256(data).hexdigest()
    status, body = client.call("PUT", f"segments/{seq}/{sha}/parts/0", data[:16384],
                               {H_SEGMENT_SIZE: "16384", H_PART_BYTES: "16384"})   # as rewritten
    assert (status, body["status"]) == (200, "stored")
    last = upload_card(client, recorded.storage)
    assert check_receipt(last["receipt"], client.device, [_intake_key(intake_dir)])[0] is not None
    assert client.state()["uploads"] == []
