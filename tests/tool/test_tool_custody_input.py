"""Bad custody input through the real command line (issue 5 item 8): a corrupt key-store
chain state, headers that name a malformed device key, and the card a custodian verifies
after a wipe — one clear line and a documented exit code, never a traceback."""
from __future__ import annotations

import json
import shutil
import struct

import pytest

from device.evidence.format import PREAMBLE_BYTES, RECORD_HEAD

pytestmark = pytest.mark.tool


@pytest.mark.parametrize("content", [b"{not json", b"[]", b'{"next_seq": "1"}', b'{"next_seq": 0}',
                                     b'{"next_seq": 3, "head": {"seq": 1}}', b"\xff\xfe", b"[" * 100_000])
def test_a_corrupt_chain_state_refuses_to_record_with_one_line(bwc, fresh_device, tiny_scenario, content):
    state = fresh_device.dir / "state"
    state.mkdir(mode=0o700, exist_ok=True)
    (state / "chain.json").write_bytes(content)
    r = bwc("run", "--device", fresh_device.dir, "--hal", "sim", "--scenario", tiny_scenario)
    assert r.returncode == 2, str(r)
    assert "chain.json is corrupt" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not fresh_device.storage.exists() or not any(fresh_device.storage.iterdir())
    assert (state / "chain.json").read_bytes() == content      # nothing overwritten


def _with_device_key(data: bytes, device_key: str) -> bytes:
    """The same segment with its header's device_key replaced (the signature no longer
    matters: the header is refused before any signature is checked)."""
    _, length = RECORD_HEAD.unpack_from(data, PREAMBLE_BYTES)
    start = PREAMBLE_BYTES + RECORD_HEAD.size
    header = json.loads(data[start:start + length])
    header["device_key"] = device_key
    body = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    return data[:PREAMBLE_BYTES] + struct.pack(">BI", ord("H"), len(body)) + body + data[start + length:]


@pytest.mark.parametrize("device_key", ["zz" * 32, "AB" * 32, "ab" * 31, ""])
def test_unpinned_export_of_a_malformed_device_key_is_a_clear_error(bwc, recording, tmp_path, device_key):
    storage = tmp_path / "storage"
    shutil.copytree(recording.storage, storage)
    for seg in sorted(storage.glob("seg-*.bwc")):
        seg.write_bytes(_with_device_key(seg.read_bytes(), device_key))
    r = bwc("export", storage, "--key", recording.custodian.key, "--out", tmp_path / "out")
    assert r.returncode in (1, 2), str(r)
    assert r.stderr.strip() and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("*.mp4"))
    r = bwc("verify", storage, "--device-pub", recording.device.pub)
    assert r.returncode == 1 and "device_key must be 64 lowercase hex digits" in r.stdout, str(r)
