"""`bwc offload` to a real intake (docs/offload.md §8, OFF-1/2, VER-3): a recorded device with
two events, the second marked, goes to `bwc intake serve` on loopback. The marked event
goes first; the device logs the receipt and keeps only its newest audit file; the card
and the intake's store both verify with exit 0; a second run changes nothing."""
from __future__ import annotations

import json
import os

import pytest

from offload_support import TWO_EVENTS, card_files, copy_device, make_trusting_device
from intake_support import Intake, enroll, init_intake, need_intake
from scenario_support import audit_entries, bwc, record, scenario_toml

pytestmark = pytest.mark.tool


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory, offload_custodian):
    """(intake dir, a recorded device that trusts it and that it has enrolled). Read-only."""
    need_intake()
    base = tmp_path_factory.mktemp("e2e")
    intake_dir = str(base / "intake")
    intake_pub = init_intake(intake_dir)
    device = make_trusting_device(str(base / "device"), offload_custodian, intake_pub)
    record(device, offload_custodian, TWO_EVENTS, None)
    enroll(intake_dir, device.pub_path)
    return intake_dir, device


@pytest.fixture
def served(enrolled, tmp_path):
    intake_dir, device = enrolled
    intake = Intake(intake_dir, str(tmp_path / "store"), str(tmp_path / "access.log"))
    yield intake, copy_device(device, str(tmp_path / "device"))
    intake.stop()


def _offload(device, url: str, *extra: str):
    result = bwc("offload", "--device", device.directory, "--to", url, "--json", *extra)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return result, lines


def test_offload_sends_marked_events_first_receipts_releases_and_everything_verifies(served):
    intake, device = served
    result, lines = _offload(device, intake.url)
    assert result.returncode == 0, result.stderr + result.stdout
    summary = lines[-1]
    assert summary["type"] == "summary" and summary["refused"] == [] and summary["network_error"] is None
    sent = [line["seq"] for line in lines if line["type"] == "segment"]
    assert sent == [4, 5, 6, 1, 2, 3]             # the marked event (segments 4–6) first
    # The intake saw them in that order too (its access log names each commit).
    commits = [int(e["path"].split("/")[5]) for e in intake.access_log()
               if e.get("method") == "POST" and e.get("path", "").endswith("/commit") and e.get("status") == 200]
    assert commits == sent
    receipt = [line for line in lines if line["type"] == "receipt"]
    assert len(receipt) == 1 and receipt[0]["receipt"]["segments"]["seq"] == 6
    # The receipt is logged; the card keeps only its newest audit file, which holds it.
    left = os.listdir(device.storage)
    assert len(left) == 1 and left[0].startswith("audit-") and summary["left_on_card"] == left
    assert [e["type"] for e in audit_entries(device.storage)] == ["receipt"]
    verify_card = bwc("verify", device.storage, "--device-pub", device.pub_path)
    assert verify_card.returncode == 0, verify_card.stdout + verify_card.stderr
    verify_store = bwc("verify", intake.store_url, "--device-pub", device.pub_path)
    assert verify_store.returncode == 0, verify_store.stdout + verify_store.stderr


def test_the_summary_names_what_happened_and_a_second_offload_changes_nothing_on_the_card(served):
    intake, device = served
    first = bwc("offload", "--device", device.directory, "--to", intake.url)     # output to a pipe
    assert first.returncode == 0, first.stderr
    assert "accepted: 6 segment(s)" in first.stdout and "left on the card: 1 file(s)" in first.stdout
    before = card_files(device.storage)
    again, lines = _offload(device, intake.url)
    assert again.returncode == 0, again.stderr
    summary = lines[-1]
    assert summary["accepted"] == [] and summary["deleted"] == [] and summary["receipt_entry"] is None
    assert card_files(device.storage) == before


ONE_EVENT = scenario_toml(5, [{"t_s": 1.0, "do": "button.double_press"},
                              {"t_s": 2.5, "do": "button.hold", "hold_s": 3.0}], pre_event_s=1, segment_s=2)


def test_a_card_whose_history_forked_from_what_the_intake_holds_is_refused_and_keeps_everything(
        served, tmp_path, offload_custodian):
    """Two copies of one device record different events after a common start (a restored
    backup, a cloned card): the intake takes the first; the second's segments are refused
    by name, and its receipt — for the other history — deletes nothing."""
    intake, device = served
    record(device, offload_custodian, ONE_EVENT, None)
    fork = copy_device(device, str(tmp_path / "fork"))
    record(device, offload_custodian, ONE_EVENT, None)
    record(fork, offload_custodian, ONE_EVENT, None)
    first, _ = _offload(device, intake.url)
    assert first.returncode == 0, first.stderr
    before = card_files(fork.storage)
    result, lines = _offload(fork, intake.url)
    assert result.returncode == 1, result.stderr
    summary = lines[-1]
    refused = {item["what"]: item["reason"] for item in summary["refused"]}
    segments = {what: why for what, why in refused.items() if what.startswith("seg-")}
    assert segments and set(segments.values()) <= {"seq_conflict", "chain_break"}, refused
    assert {why for what, why in refused.items() if what.startswith("audit-")} <= {"audit_conflict", "audit_invalid",
                                                                                 "audit_gap"}, refused
    assert summary["deleted"] == [] and summary["receipt_entry"] is None
    assert card_files(fork.storage) == before


CUT_MID_EVENT = scenario_toml(6, [{"t_s": 1.0, "do": "button.double_press"}, {"t_s": 4.0, "do": "power.cut"}],
                              pre_event_s=1, segment_s=2)
BOOT_ONLY = scenario_toml(1, [])


def test_a_segment_cut_by_power_loss_waits_on_the_card_until_a_boot_has_recovered_it(
        served, offload_custodian):
    intake, device = served
    record(device, offload_custodian, CUT_MID_EVENT, None)
    cut = sorted(n for n in os.listdir(device.storage) if n.startswith("seg-"))[-1]
    result, lines = _offload(device, intake.url)
    assert result.returncode == 0, result.stderr
    summary = lines[-1]
    assert [item["what"] for item in summary["not_sent"]] == [cut] and cut in summary["left_on_card"]
    assert cut in os.listdir(device.storage)
    # The next boot logs the recovery; then the cut segment is closed and goes too.
    record(device, offload_custodian, BOOT_ONLY, None)
    result, lines = _offload(device, intake.url)
    assert result.returncode == 0, result.stderr
    assert int(cut[4:14]) in lines[-1]["accepted"] and lines[-1]["not_sent"] == []
    assert len(os.listdir(device.storage)) == 1
    verify_card = bwc("verify", device.storage, "--device-pub", device.pub_path)
    assert verify_card.returncode == 0, verify_card.stdout
    # The intake holds the whole history; the cut is power loss, explained by the recovery entry.
    verify_store = bwc("verify", intake.store_url, "--device-pub", device.pub_path)
    assert verify_store.returncode == 3, verify_store.stdout
