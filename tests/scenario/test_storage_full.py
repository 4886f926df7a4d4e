"""A card that fills up mid-event (FLT-2, issue 5 reproduction 5): the running segment
closes cleanly with stop reason storage_full — a verifiable clean end, not a power cut —
and the wearer feels the fault pattern, not the stop pattern."""
from __future__ import annotations

import os

import pytest

from device.config import load_identity, load_policy
from device.evidence.keys import read_custodian_secret, read_device_public
from device.evidence.storage_verify import verify_storage
from device.patterns import felt
from hal.dirstorage import DirectoryStorage
from scenario_support import audit_entries, make_custodian, make_device, scenario_toml
from simulator.runner import run_scenario
from simulator.scenario import parse_scenario
from tools.export import export_storage

pytestmark = pytest.mark.scenario

CAPACITY_BYTES = 3_000_000    # the 3 MB card


def _small_card(monkeypatch, capacity_bytes: int) -> None:
    """free_bytes() as a card of this size reports it: capacity minus what is on it."""
    def free_bytes(self) -> int:
        used = sum(os.path.getsize(os.path.join(self.root, n)) for n in os.listdir(self.root))
        return max(0, capacity_bytes - used)

    monkeypatch.setattr(DirectoryStorage, "free_bytes", free_bytes)


def _run(dev, text: str):
    scenario = parse_scenario(text, "<storage-full test>")
    policy = scenario.apply_policy(load_policy(os.path.join(dev.directory, "policy.toml")))
    return run_scenario(scenario, load_identity(dev.directory), policy, dev.directory, dev.storage)


@pytest.fixture
def dev(tmp_path):
    custodian = make_custodian(str(tmp_path / "custodian"))
    return make_device(str(tmp_path / "device"), custodian), custodian


def test_a_full_card_closes_the_event_cleanly_with_reason_storage_full(dev, monkeypatch, tmp_path):
    device, custodian = dev
    _small_card(monkeypatch, CAPACITY_BYTES)
    # 2 Mbit/s for 30 s would need 7.5 MB: the card fills after about 8 s.
    text = scenario_toml(30, [{"t_s": 1.0, "do": "button.double_press"}], bitrate_bps=2_000_000,
                         pre_event_s=1, segment_s=60)
    result = _run(device, text)
    fw = result.firmware
    assert fw.storage_full and fw.failure is None
    stops = [e for e in audit_entries(device.storage) if e["type"] == "deactivation"]
    assert len(stops) == 1 and stops[0]["reason"] == "storage_full" and stops[0]["source"] == "storage"
    used = sum(os.path.getsize(os.path.join(device.storage, n)) for n in os.listdir(device.storage))
    assert used <= CAPACITY_BYTES

    report = verify_storage(device.storage, read_device_public(device.pub_path))
    assert report.outcome == "authentic", report.to_json()       # a clean end, not a power cut
    assert all(s.report.outcome == "authentic" for s in report.segments)

    # The wearer is told: one long buzz with a low tone, not the 400 ms stop vibration.
    # The wearer feels "storage full", not the stop they did not ask for.
    names = [name for _, name in felt(result.world.indicators.history)]
    assert "storage_full" in names and "stop" not in names

    _, exported = export_storage(device.storage, read_custodian_secret(custodian.secret_path),
                                 read_device_public(device.pub_path), str(tmp_path / "out"), True)
    assert len(exported) == 1 and exported[0].media_s > 3


def test_an_activation_on_a_full_card_records_nothing_and_says_why(dev, monkeypatch):
    device, _ = dev
    _small_card(monkeypatch, 200_000)          # less than the reserve from the start
    text = scenario_toml(4, [{"t_s": 1.0, "do": "button.double_press"}], bitrate_bps=2_000_000,
                         pre_event_s=1)
    result = _run(device, text)
    assert result.firmware.storage_full
    assert not [n for n in os.listdir(device.storage) if n.startswith("seg-")]
    faults = [e for e in audit_entries(device.storage) if e["type"] == "fault"]
    assert len(faults) == 1 and faults[0]["kind"] == "storage_full"
    report = verify_storage(device.storage, read_device_public(device.pub_path))
    assert report.outcome == "authentic", report.to_json()
