"""Crash consistency, not just process death (SEG-4, AUD-2, SIM-3).

A SIGKILL keeps the page cache, so it cannot tell whether anything was made durable. Here
the storage and key store sit on SimFS: a power cut keeps only what was fsynced (file data)
and directory-synced (entries), so these tests fail if any fsync the format depends on is
missing: the segment's, the directory's after a create, the key store's file and
directory syncs, or the parent's after a new directory.
"""
from __future__ import annotations

import json
import os

import pytest

from device.config import load_identity, load_policy
from device.evidence.keys import read_device_public
from device.evidence.storage_verify import verify_storage
from device.firmware import Firmware
from simulator.runner import run_scenario
from simulator.scenario import parse_scenario
from simulator.simfs import SimFS
from scenario_support import make_device, scenario_toml

pytestmark = pytest.mark.scenario

PRESS_T_S, CUT_T_S = 1.0, 3.6    # 1 s pre-event, 2 s segments: the cut falls in the second segment


def _run(device, text: str, simfs: SimFS | None = None):
    scenario = parse_scenario(text, "<durability test>")
    policy = scenario.apply_policy(load_policy(os.path.join(device.directory, "policy.toml")))
    return run_scenario(scenario, load_identity(device.directory), policy, device.directory, device.storage,
                        simfs=simfs)


@pytest.fixture
def committed(monkeypatch) -> list[int]:
    """Media times (device monotonic µs) the writer reported durable, in order."""
    times: list[int] = []
    real = Firmware._on_committed

    def on_committed(self, media_monotonic_us: int) -> None:
        times.append(media_monotonic_us)
        real(self, media_monotonic_us)

    monkeypatch.setattr(Firmware, "_on_committed", on_committed)
    return times


@pytest.mark.parametrize("mode", ["drop", "tear"])
def test_everything_committed_before_a_power_cut_survives_it(tmp_path, custodian, committed, mode):
    # A fresh device: storage/ and state/ do not exist yet, so their creation must be durable too.
    device = make_device(str(tmp_path / "device"), custodian)
    result = _run(device, scenario_toml(5, [{"t_s": PRESS_T_S, "do": "button.double_press"},
                                            {"t_s": CUT_T_S, "do": "power.cut", "mode": mode}],
                                        pre_event_s=1, segment_s=2))
    assert result.instances[0].power_lost_us is not None and not result.powered_at_end
    assert committed, "the writer reported nothing committed before the cut"
    cut_committed_us = committed[-1]

    device_key = read_device_public(device.pub_path)
    report = verify_storage(device.storage, device_key)
    assert report.outcome == "truncated" and report.problems == [], report.to_json()
    segments = report.segments
    assert [s.seq for s in segments] == list(range(1, len(segments) + 1)) and len(segments) >= 2
    last = segments[-1]
    # Every flush reported committed is on the card after the cut, up to the last one.
    assert last.header["event_origin_monotonic_us"] + last.report.last.media_end_us == cut_committed_us
    # (the announcement entries of the notice playing meanwhile are left out)
    assert [e["type"] for e in report.audit.entries if e["type"] != "announcement"] == ["boot", "activation"]

    # The key store's chain state is the one last saved: the open segment, the next number.
    with open(os.path.join(device.directory, "state", "chain.json"), "rb") as f:
        chain = json.load(f)
    assert (chain["running"], chain["open_seq"], chain["next_seq"]) == (True, last.seq, last.seq + 1), chain

    # The battery goes back in: the next boot explains the cut and records on the same chain.
    _run(device, scenario_toml(4, [{"t_s": 0.5, "do": "button.double_press"}], pre_event_s=1, segment_s=2))
    report = verify_storage(device.storage, device_key)
    assert report.outcome == "truncated" and report.problems == [], report.to_json()
    assert len(report.events()) == 2
    recovery = [e for e in report.audit.entries if e["type"] == "recovery"]
    assert len(recovery) == 1 and recovery[0]["seq"] == last.seq
    assert recovery[0]["chunks"] == last.report.last.chunk_count


# -- a cut inside every write to the card, and inside every key-store rename ------------------

# A short event (0.5 s pre-event, 1 s segments, stopped by a 1 s hold): three segments,
# every kind of write (audit lines, headers, flushes, closes) in a dozen operations.
# The smallest picture the pattern allows at 10 fps keeps each case cheap.
SMALL = {"width": 160, "height": 90, "fps": 10, "bitrate_bps": 100_000}
EVENT = scenario_toml(3.5, [{"t_s": 0.5, "do": "button.double_press"},
                            {"t_s": 1.8, "do": "button.hold", "hold_s": 1.0}],
                      pre_event_s=0.5, segment_s=1, hold_stop_s=1, **SMALL)
REBOOT = scenario_toml(1.5, [{"t_s": 0.2, "do": "button.double_press"}], pre_event_s=0.5, segment_s=1, **SMALL)


def _operations(tmp_path, custodian, kind: str, where: str) -> list[str]:
    """The paths the firmware's `kind` operations inside `where` touch, in order (a dry run)."""
    device = make_device(str(tmp_path / "probe"), custodian)
    simfs = SimFS()
    _run(device, EVENT, simfs)
    root = os.path.abspath(device.storage if where == "storage" else device.directory)
    return [os.path.basename(p) for k, p in simfs.ops if k == kind and p.startswith(root + os.sep)]


@pytest.mark.parametrize("kind, where", [("write", "storage"), ("rename", "key store")])
def test_a_cut_inside_any_operation_reads_as_power_loss_after_the_next_boot(tmp_path, custodian, kind, where):
    names = _operations(tmp_path, custodian, kind, where)
    assert len(names) >= 8, names
    bad = []
    for n, name in enumerate(names, start=1):
        device = make_device(str(tmp_path / f"cut-{n}"), custodian)
        simfs = SimFS(seed=n)
        root = device.storage if where == "storage" else device.directory
        simfs.arm_power_cut(kind, nth=n, mode="tear", under=root)
        cut = _run(device, EVENT, simfs)
        after = _run(device, REBOOT)
        report = verify_storage(device.storage, read_device_public(device.pub_path))
        # (A cut before the first boot entry or before the chain state says "running" leaves
        # nothing to recover: the next boot then writes no recovery entry, rightly.)
        if (cut.instances[0].power_lost_us is None or after.firmware.failure is not None
                or after.firmware.recorder.events_started != 1 or report.outcome not in ("authentic", "truncated")
                or report.problems):
            bad.append((n, name, report.outcome, report.problems[:2], repr(after.firmware.failure)))
    assert not bad, f"cut inside {kind} #n of {len(names)} ({names}):\n" + "\n".join(map(str, bad))
