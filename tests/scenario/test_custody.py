"""Custody across a camera's life (issue 5, VER-3): card wipes, other cards, power cuts and
their recovery entries. Honest histories never read as tampered; cut or deleted evidence
always does; every gap is named for what it is.
"""
from __future__ import annotations

import os
import shutil

import pytest

from device.config import load_identity, load_policy
from device.evidence.keys import read_device_public
from device.evidence.storage_verify import verify_storage
from scenario_support import audit_entries, audit_files, bwc, make_custodian, make_device, record, scenario_toml
from simulator.runner import run_scenario
from simulator.scenario import parse_scenario

pytestmark = pytest.mark.scenario

ONE_EVENT = scenario_toml(6, [{"t_s": 1.0, "do": "button.double_press"},
                              {"t_s": 3.0, "do": "button.hold", "hold_s": 3.0}],
                          pre_event_s=1, segment_s=2)


@pytest.fixture
def device(tmp_path):
    custodian = make_custodian(str(tmp_path / "custodian"))
    dev = make_device(str(tmp_path / "device"), custodian)
    return dev, custodian


def _verify(storage: str, dev):
    return verify_storage(storage, read_device_public(dev.pub_path))


def _record_to(dev, storage: str, text: str = ONE_EVENT) -> None:
    scenario = parse_scenario(text, "<custody test>")
    policy = scenario.apply_policy(load_policy(os.path.join(dev.directory, "policy.toml")))
    result = run_scenario(scenario, load_identity(dev.directory), policy, dev.directory, storage)
    assert result.firmware.failure is None, result.firmware.failure


def _move_all(src: str, dst: str) -> None:
    os.makedirs(dst, exist_ok=True)
    for name in os.listdir(src):
        shutil.move(os.path.join(src, name), os.path.join(dst, name))


def _gap_kinds(report) -> list[str]:
    return [g.kind for g in report.gaps]


def test_card_wiped_after_offload_reads_as_before_this_set(device, tmp_path):
    """Reproduction 1: record, move every file off the card (a dock's offload), record again."""
    dev, custodian = device
    record(dev, custodian, ONE_EVENT, None)
    offloaded = str(tmp_path / "offloaded")
    _move_all(dev.storage, offloaded)
    record(dev, custodian, ONE_EVENT, None)

    card = _verify(dev.storage, dev)
    assert card.outcome == "before_set", card.to_json()
    assert card.problems == []
    before = [g for g in card.gaps if g.kind == "before_set"]
    assert {g.what.split()[0] for g in before} == {"segments", "audit"}   # both chains start later
    first_seq = card.segments[0].seq
    assert any(g.what == (f"segments 1–{first_seq - 1}" if first_seq > 2 else "segments 1") for g in before)
    assert len(card.events()) == 1

    # The offloaded part verifies on its own, and so does the whole history gathered.
    assert _verify(offloaded, dev).outcome == "authentic"
    gathered = str(tmp_path / "gathered")
    shutil.copytree(offloaded, gathered)
    for name in os.listdir(dev.storage):
        shutil.copy(os.path.join(dev.storage, name), gathered)
    whole = _verify(gathered, dev)
    assert whole.outcome == "authentic", whole.to_json()
    assert len(whole.events()) == 2

    # The command line says 4 and names the range.
    r = bwc("verify", dev.storage, "--device-pub", dev.pub_path)
    assert r.returncode == 4, r.stdout + r.stderr
    assert "before this set" in r.stdout


def test_one_run_on_another_storage_leaves_both_cards_verifiable(device, tmp_path):
    """Reproduction 1, second half: `bwc run --storage OTHER_DIR` once, then the usual card."""
    dev, custodian = device
    record(dev, custodian, ONE_EVENT, None)
    other = str(tmp_path / "other-card")
    _record_to(dev, other)
    record(dev, custodian, ONE_EVENT, None)

    assert _verify(other, dev).outcome == "before_set"
    usual = _verify(dev.storage, dev)
    # The usual card lacks the middle of the history, which lives on the other card:
    # the boot that came back to it said so, so the hole is named, not called tampering.
    assert usual.outcome == "before_set", usual.to_json()
    elsewhere = [g for g in usual.gaps if "on another card" in g.explained_by]
    assert {g.what.split()[0] for g in elsewhere} == {"segments", "audit"}, usual.to_json()
    gathered = str(tmp_path / "gathered")
    shutil.copytree(dev.storage, gathered)
    for name in os.listdir(other):
        shutil.copy(os.path.join(other, name), gathered)
    assert _verify(gathered, dev).outcome == "authentic"


POWER_CUT_EVENT = scenario_toml(6, [{"t_s": 1.0, "do": "button.double_press"}], pre_event_s=1, segment_s=30)
REBOOT = scenario_toml(1, [])


def _cut_mid_event(dev, custodian, monkeypatch) -> None:
    """A power cut while the event records (the writer just stops, nothing shuts down)."""
    from device.evidence import segment_file
    from device.firmware import Firmware

    class PowerCut(BaseException):
        pass

    real = segment_file.SegmentFile.checkpoint

    def checkpoint(self, media_end_us):
        if self.chunk_count >= 4:
            raise PowerCut()
        return real(self, media_end_us)

    with monkeypatch.context() as patch:
        patch.setattr(segment_file.SegmentFile, "checkpoint", checkpoint)
        patch.setattr(Firmware, "shutdown", lambda self, source="shutdown": None)
        patch.setattr("threading.excepthook", lambda args: None)
        from device.monitor import Monitor
        # A dead CPU runs no watchdog either: nothing restarts the writer thread.
        patch.setattr(Monitor, "_check_writer_thread", lambda self, now_us: None)
        record(dev, custodian, POWER_CUT_EVENT, None)
    record(dev, custodian, REBOOT, None)


def _segments(storage: str) -> list[str]:
    return sorted(n for n in os.listdir(storage) if n.startswith("seg-"))


def test_power_cut_then_reboot_is_power_loss_explained_by_the_recovery_entry(device, monkeypatch):
    dev, custodian = device
    _cut_mid_event(dev, custodian, monkeypatch)
    report = _verify(dev.storage, dev)
    assert report.outcome == "truncated", report.to_json()
    recovery = [e for e in audit_entries(dev.storage) if e["type"] == "recovery"]
    # The first checkpoint after the header holds the activation record and the first
    # fragment (2 chunks); later ones cover as many chunks as the writer had pending.
    assert len(recovery) == 1 and recovery[0]["found"] == "cut" and recovery[0]["chunks"] >= 2
    assert any(g.kind == "power_loss" and "recovery" in g.explained_by for g in report.gaps)


def test_deleting_the_cut_segment_is_tampering(device, monkeypatch):
    """Reproduction 4: the recovery entry names the cut segment; it cannot just vanish."""
    dev, custodian = device
    _cut_mid_event(dev, custodian, monkeypatch)
    os.remove(os.path.join(dev.storage, _segments(dev.storage)[-1]))
    report = _verify(dev.storage, dev)
    assert report.outcome == "integrity_failure", report.to_json()


def test_truncating_the_cut_segment_further_is_tampering(device, monkeypatch):
    dev, custodian = device
    _cut_mid_event(dev, custodian, monkeypatch)
    path = os.path.join(dev.storage, _segments(dev.storage)[-1])
    os.truncate(path, os.path.getsize(path) - 300)
    report = _verify(dev.storage, dev)
    assert report.outcome == "integrity_failure", report.to_json()
    assert any("shorter than" in reason for _, reason in report.problems)


def test_an_emptied_audit_log_while_segments_remain_is_tampering(device):
    dev, custodian = device
    record(dev, custodian, ONE_EVENT, None)
    for name in audit_files(dev.storage):
        os.truncate(os.path.join(dev.storage, name), 0)
    assert _verify(dev.storage, dev).outcome == "integrity_failure"


def test_an_audit_log_cut_before_an_activation_is_tampering(device):
    dev, custodian = device
    record(dev, custodian, ONE_EVENT, None)
    (name,) = audit_files(dev.storage)
    path = os.path.join(dev.storage, name)
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    assert b'"type":"boot"' in lines[0] and b'"type":"activation"' in lines[1]
    with open(path, "wb") as f:
        f.write(lines[0] + b"\n")            # only the boot entry is left
    report = _verify(dev.storage, dev)
    assert report.outcome == "integrity_failure", report.to_json()


def test_cutting_the_earlier_part_of_a_card_that_came_back_is_tampering(device, tmp_path):
    """The boot after a card swap records what the card still held: deleting the card's
    own second event (its segments and its boot's audit file) cannot hide behind "on
    another card"."""
    dev, custodian = device
    record(dev, custodian, ONE_EVENT, None)
    record(dev, custodian, ONE_EVENT, None)       # a second event on the usual card
    _record_to(dev, str(tmp_path / "other-card"))
    record(dev, custodian, ONE_EVENT, None)
    assert _verify(dev.storage, dev).outcome == "before_set"
    entries = audit_entries(dev.storage)
    second = [e for e in entries if e["type"] == "activation"][1]
    stop = next(e for e in entries if e["type"] == "deactivation" and e["event_id"] == second["event_id"])
    for seq in range(second["first_seq"], stop["last_seq"] + 1):
        os.remove(os.path.join(dev.storage, f"seg-{seq:010d}.bwc"))
    os.remove(os.path.join(dev.storage, audit_files(dev.storage)[1]))
    assert _verify(dev.storage, dev).outcome == "integrity_failure"


def test_an_audit_file_deleted_between_two_others_is_tampering(device):
    dev, custodian = device
    for _ in range(3):
        record(dev, custodian, ONE_EVENT, None)
    files = audit_files(dev.storage)
    assert len(files) == 3                   # one per boot
    os.remove(os.path.join(dev.storage, files[1]))
    report = _verify(dev.storage, dev)
    assert report.outcome == "integrity_failure", report.to_json()


def test_sequence_and_audit_numbers_continue_across_boots_and_cards(device, tmp_path):
    dev, custodian = device
    record(dev, custodian, ONE_EVENT, None)
    first = audit_entries(dev.storage)
    _move_all(dev.storage, str(tmp_path / "away"))
    record(dev, custodian, ONE_EVENT, None)
    second = audit_entries(dev.storage)
    assert second[0]["n"] == first[-1]["n"] + 1
    assert _segments(dev.storage)[0] > _segments(str(tmp_path / "away"))[-1]


def test_a_power_cut_during_the_boot_after_a_power_cut_keeps_the_recovery(device):
    """Found by the N=200 power-cut harness: boot reconciled the chain state, persisted it,
    and was killed before its recovery entry reached the card; the next boot then knew
    nothing of the cut segment, and honest footage read as tampered."""
    from simulator.simfs import SimFS

    dev, custodian = device
    simfs = SimFS(seed=3)
    cut = scenario_toml(4, [{"t_s": 0.5, "do": "button.double_press"}, {"t_s": 2.6, "do": "power.cut"}],
                        pre_event_s=1, segment_s=30)

    def run(text: str) -> None:
        scenario = parse_scenario(text, "<boot cut>")
        policy = scenario.apply_policy(load_policy(os.path.join(dev.directory, "policy.toml")))
        run_scenario(scenario, load_identity(dev.directory), policy, dev.directory, dev.storage, simfs=simfs)

    run(cut)                                          # cut mid-event
    simfs.power_restore()
    # The next boot saves what it found (key-store rename 1), then dies inside the
    # write-ahead save of its recovery line (rename 2), before the card has anything.
    simfs.arm_power_cut(op="rename", nth=2, under=os.path.join(dev.directory, "state"))
    run(scenario_toml(1, []))
    simfs.power_restore()
    run(ONE_EVENT)                                    # and the one after it records
    recovery = [e for e in audit_entries(dev.storage) if e["type"] == "recovery"]
    assert recovery and recovery[0]["found"] == "cut", recovery
    report = _verify(dev.storage, dev)
    assert report.outcome == "truncated", report.to_json()
