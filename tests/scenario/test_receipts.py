"""Custody receipts (docs/format.md §9, OFF-2, VER-3): history an intake has receipted may
leave the card, and the card then still verifies as authentic (exit 0), the gap named as
accounted for by a receipt. A receipt the device does not trust is refused and not logged."""
from __future__ import annotations

import dataclasses
import os
import shutil

import pytest
from nacl.signing import SigningKey

from device.config import load_identity, load_policy
from device.evidence.audit_lines import audit_file_number, line_hash
from device.evidence.keys import INTAKE_PUBLIC, read_device_public, write_public
from device.evidence.receipt import ReceiptError, make_receipt
from device.evidence.storage_verify import verify_storage
from device.firmware import Firmware
from scenario_support import Device, audit_entries, audit_files, make_custodian, record, scenario_toml
from tools.provision import provision
from simulator.board import build_sim_board
from simulator.clock import VirtualClock
from simulator.scenario import DEFAULT_VIDEO

pytestmark = pytest.mark.scenario

ONE_EVENT = scenario_toml(5, [{"t_s": 1.0, "do": "button.double_press"},
                              {"t_s": 2.5, "do": "button.hold", "hold_s": 3.0}], pre_event_s=1, segment_s=2)
INTAKE = SigningKey(bytes([7]) * 32)


def _newest(storage: str, device_key) -> tuple[dict, dict]:
    """What an intake that took the whole card would receipt: newest segment and entry."""
    report = verify_storage(storage, device_key)
    last = report.segments[-1]
    name = audit_files(storage)[-1]
    with open(os.path.join(storage, name), "rb") as f:
        line = f.read().rstrip(b"\n").split(b"\n")[-1]
    newest = audit_entries(storage)[-1]
    return ({"seq": last.seq, "hash": last.report.last.hash.hex(), "chunks": last.report.last.chunk_count},
            {"n": newest["n"], "hash": line_hash(line)})


def _boot_and_accept(dev, receipt: dict, trusted: tuple[bytes, ...] | None = None) -> None:
    identity = load_identity(dev.directory)   # trusts what `bwc provision --intake-pub` named
    if trusted is not None:
        identity = dataclasses.replace(identity, intake_public_keys=trusted)
    clock = VirtualClock()
    world = build_sim_board(clock, dev.directory, dev.storage, DEFAULT_VIDEO)
    firmware = Firmware(world.board, identity, load_policy(os.path.join(dev.directory, "policy.toml")))
    firmware.boot()
    try:
        firmware.accept_receipt(receipt)
        firmware.writer.wait_idle()
    finally:
        firmware.shutdown()


@pytest.fixture
def dev(tmp_path):
    custodian = make_custodian(str(tmp_path / "custodian"))
    intake_pub = tmp_path / "intake.pub"
    write_public(str(intake_pub), INTAKE_PUBLIC, bytes(INTAKE.verify_key))
    pub = provision("receipt-cam", [custodian.public_path], str(tmp_path / "device"), [str(intake_pub)])
    return Device(str(tmp_path / "device"), pub), custodian


def test_receipted_history_leaves_the_card_and_the_card_still_verifies_as_authentic(dev, tmp_path):
    device, custodian = dev
    key = read_device_public(device.pub_path)
    record(device, custodian, ONE_EVENT, None)
    segments, audit = _newest(device.storage, key)
    receipt = make_receipt(INTAKE, bytes(key).hex(), segments, audit, 1_800_000_000_000_000)
    _boot_and_accept(device, receipt)
    assert [e["type"] for e in audit_entries(device.storage)][-3:] == ["boot", "receipt", "shutdown"]

    # The dock takes off what the receipt covers: the segments and the audit files it holds.
    taken = str(tmp_path / "taken")
    os.makedirs(taken)
    for name in os.listdir(device.storage):
        number = audit_file_number(name)
        if name.startswith("seg-") or (number is not None and number < len(audit_files(device.storage))):
            shutil.move(os.path.join(device.storage, name), taken)
    record(device, custodian, ONE_EVENT, None)

    report = verify_storage(device.storage, key)
    assert report.outcome == "authentic", report.to_json()
    assert sorted(g.kind for g in report.gaps) == ["receipt", "receipt"]   # the segments and the audit entries
    assert all("receipt in audit entry" in g.explained_by for g in report.gaps)


def test_without_a_receipt_the_same_card_reads_as_before_this_set(dev, tmp_path):
    device, custodian = dev
    record(device, custodian, ONE_EVENT, None)
    shutil.move(device.storage, str(tmp_path / "taken"))
    record(device, custodian, ONE_EVENT, None)
    assert verify_storage(device.storage, read_device_public(device.pub_path)).outcome == "before_set"


def test_a_receipt_from_an_untrusted_intake_is_refused_and_not_logged(dev):
    device, custodian = dev
    key = read_device_public(device.pub_path)
    record(device, custodian, ONE_EVENT, None)
    segments, audit = _newest(device.storage, key)
    stranger = SigningKey(bytes([8]) * 32)
    receipt = make_receipt(stranger, bytes(key).hex(), segments, audit, 1_800_000_000_000_000)
    with pytest.raises(ReceiptError, match="does not trust"):
        _boot_and_accept(device, receipt, (bytes(INTAKE.verify_key),))
    forged = dict(make_receipt(INTAKE, bytes(key).hex(), segments, audit, 1), received_utc_us=2)
    with pytest.raises(ReceiptError, match="bad intake signature"):
        _boot_and_accept(device, forged, (bytes(INTAKE.verify_key),))
    assert "receipt" not in [e["type"] for e in audit_entries(device.storage)]
