"""The v2 audit log (docs/format.md §5): one chain across boots and cards, numbered files,
write-ahead in the key store, and what a verifier makes of torn, forked or missing lines."""
from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from device.chainstate import ChainState
from device.evidence.audit import AuditLog
from device.evidence.audit_lines import GENESIS, audit_file_name, line_hash, sign_line
from device.evidence.audit_verify import merge_audit, read_audit_file
from device.evidence.segment_reader import AUTHENTIC, STRUCTURE_FAILURE, TRUNCATED
from hal.dirstorage import DirectoryStorage
from hal.storage import StorageError

DEVICE = SigningKey(bytes([1]) * 32)
OTHER = SigningKey(bytes([5]) * 32)


class Device:
    """One device's key-store state and its card (a directory), as the firmware holds them."""

    def __init__(self, root) -> None:
        self.root = str(root)
        self.chain = ChainState()
        self.saved: list[dict] = []
        self.card(self.root)

    def card(self, path: str) -> None:
        self.storage = DirectoryStorage(path)

    def boot(self) -> AuditLog:
        return AuditLog(self.storage, DEVICE, "cam-7", self.chain, lambda: self.saved.append(dict(self.chain.audit)))

    def day(self, log: AuditLog, t: int = 0) -> None:
        log.append("boot", 1_000 + t, 1_700_000_000_000_000 + t, firmware="0.2.0")
        log.append("marker", 2_000 + t, 1_700_000_000_001_000 + t, source="button", event_id="e1")
        log.append("shutdown", 3_000 + t, 1_700_000_000_002_000 + t, source="shutdown")
        log.close()

    def files(self, root: str | None = None) -> list[str]:
        root = root or self.root
        return sorted(n for n in os.listdir(root) if n.startswith("audit-"))

    def verify(self, root: str | None = None):
        root = root or self.root
        runs = []
        for name in self.files(root):
            with open(os.path.join(root, name), "rb") as f:
                runs.append(read_audit_file(name, f.read(), DEVICE.verify_key))
        return merge_audit(runs)


@pytest.fixture
def dev(tmp_path):
    return Device(tmp_path / "card")


def test_each_boot_writes_a_new_numbered_file_and_the_chain_goes_on(dev):
    dev.day(dev.boot())
    dev.day(dev.boot(), t=10_000)
    assert dev.files() == [audit_file_name(1), audit_file_name(2)]
    report = dev.verify()
    assert report.outcome == AUTHENTIC, report.problems
    assert [e["n"] for e in report.entries] == list(range(6))
    assert report.entries[0]["prev"] == GENESIS
    assert report.first_n == 0 and report.last_n == 5


def test_the_head_is_in_the_key_store_before_the_line_is_on_the_card(dev):
    log = dev.boot()
    real_write = log._write
    seen = []

    def write(line: bytes) -> None:
        seen.append(dev.saved[-1])   # what the key store held when the card write started
        real_write(line)

    log._write = write
    entry = log.append("boot", 1, 2)
    assert seen[0]["next_n"] == entry["n"] + 1
    assert seen[0]["last_line"].startswith(json.dumps(entry, sort_keys=True, separators=(",", ":")))


def test_a_wiped_card_continues_the_chain_and_names_the_change(dev, tmp_path):
    dev.day(dev.boot())
    dev.card(str(tmp_path / "new-card"))
    log = dev.boot()
    assert log.card_change == {"resumes_after": {"seq": 0, "audit_n": 2}, "found": {"seq": None, "audit_n": None}}
    dev.day(log, t=10_000)
    report = dev.verify(str(tmp_path / "new-card"))
    assert report.outcome == AUTHENTIC and report.first_n == 3
    assert report.entries[0]["card_change"]["resumes_after"]["audit_n"] == 2
    assert "card_change" not in report.entries[1]
    # Both cards together are one unbroken history.
    for name in dev.files():
        os.link(os.path.join(dev.root, name), os.path.join(str(tmp_path / "new-card"), name))
    whole = dev.verify(str(tmp_path / "new-card"))
    assert whole.outcome == AUTHENTIC and whole.first_n == 0 and whole.last_n == 5


def test_a_card_that_comes_back_says_what_it_still_held(dev, tmp_path):
    dev.day(dev.boot())                        # entries 0-2 on the usual card
    usual = dev.root
    dev.card(str(tmp_path / "other"))
    dev.day(dev.boot(), t=10_000)              # entries 3-5 on the other card
    dev.card(usual)
    log = dev.boot()
    assert log.card_change["found"] == {"seq": None, "audit_n": 2}
    assert log.card_change["resumes_after"]["audit_n"] == 5
    dev.day(log, t=20_000)
    report = dev.verify(usual)
    assert report.outcome == AUTHENTIC, report.problems
    assert report.elsewhere == [("audit entries 3–5", "on another card (audit entry 6)")]


class FailingStorage(DirectoryStorage):
    """A card whose writes fail a given number of times, after writing `partial` bytes."""

    def __init__(self, root: str, fail_writes: int, partial: int = 0) -> None:
        super().__init__(root)
        self.fail_writes, self.partial = fail_writes, partial

    def create(self, name):
        file = super().create(name)
        outer = self

        class Faulty:
            def write(self, data):
                if outer.fail_writes:
                    outer.fail_writes -= 1
                    file.write(data[:outer.partial])
                    raise StorageError(28, "No space left on device (simulated)")
                file.write(data)

            def sync(self):
                file.sync()

            def close(self):
                file.close()

        return Faulty()


@pytest.mark.parametrize("partial", [0, 1, 40, 200])
def test_a_failed_write_is_written_again_in_a_new_file(dev, partial):
    dev.storage = FailingStorage(dev.root, fail_writes=1, partial=partial)
    log = dev.boot()
    with pytest.raises(StorageError):
        log.append("boot", 1_000, 1_700_000_000_000_000)
    log.append("marker", 2_000, 1_700_000_000_001_000, source="button", event_id="e1")
    log.close()
    assert dev.files() == [audit_file_name(1), audit_file_name(2)]
    report = dev.verify()
    assert report.outcome == AUTHENTIC, (report.problems, report.cut_short)
    assert [e["type"] for e in report.entries] == ["boot", "marker"]


def test_a_torn_tail_followed_by_a_recovery_entry_is_power_loss(dev):
    dev.day(dev.boot())
    path = os.path.join(dev.root, audit_file_name(1))
    os.truncate(path, os.path.getsize(path) - 30)     # the shutdown line was being written
    dev.chain.audit = dict(dev.chain.audit, next_n=2, prev=line_hash(open(path, "rb").read().split(b"\n")[1]),
                           last_line=None)            # as boot finds it after the cut
    log = dev.boot()
    log.append("recovery", 9_000, 1_700_000_000_009_000, seq=None, found=None, chunks=None, hash=None,
               event_id=None)
    log.close()
    report = dev.verify()
    assert report.outcome == TRUNCATED, report.problems
    assert "power loss (explained by audit entry 2)" in report.cut_short[0][1]


def test_a_torn_tail_followed_by_an_ordinary_entry_is_tampering(dev):
    dev.day(dev.boot())
    path = os.path.join(dev.root, audit_file_name(1))
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    with open(path, "wb") as f:
        f.write(lines[0] + b"\n" + lines[1][:60])   # entry 1 cut, entry 2 moved on below
    with open(os.path.join(dev.root, audit_file_name(2)), "wb") as f:
        f.write(lines[1] + b"\n" + lines[2] + b"\n")
    assert dev.verify().outcome == AUTHENTIC             # entry 1 is whole elsewhere: fine
    with open(os.path.join(dev.root, audit_file_name(2)), "wb") as f:
        f.write(lines[2] + b"\n")
    report = dev.verify()
    assert report.outcome == STRUCTURE_FAILURE, report.cut_short


def test_a_full_length_signature_that_does_not_verify_is_tampering(dev):
    dev.day(dev.boot())
    path = os.path.join(dev.root, audit_file_name(1))
    with open(path, "rb") as f:
        data = f.read()
    last = data.rstrip(b"\n").rsplit(b"\n", 1)[1]
    forged = data[:-len(last) - 1] + last[:-1] + (b"0" if last[-1:] != b"0" else b"1")  # no newline
    with open(path, "wb") as f:
        f.write(forged)
    assert dev.verify().outcome == STRUCTURE_FAILURE


def test_two_different_entries_with_one_number_are_a_fork(dev, tmp_path):
    dev.day(dev.boot())
    fork = dict(dev.verify().entries[1], source="somebody else")
    line = sign_line(OTHER, fork)                        # not even the device's key ...
    with open(os.path.join(dev.root, audit_file_name(9)), "wb") as f:
        f.write(line + b"\n")
    assert dev.verify().outcome == STRUCTURE_FAILURE
    forked = sign_line(DEVICE, fork)                     # ... nor with it (a device bug)
    with open(os.path.join(dev.root, audit_file_name(9)), "wb") as f:
        f.write(forked + b"\n")
    report = dev.verify()
    assert report.outcome == STRUCTURE_FAILURE and "forked" in report.reason


def test_a_missing_middle_file_is_a_hole(dev):
    for t in range(3):
        dev.day(dev.boot(), t=t * 10_000)
    os.remove(os.path.join(dev.root, audit_file_name(2)))
    report = dev.verify()
    assert report.outcome == STRUCTURE_FAILURE and "missing" in report.reason


def test_entries_with_nan_or_an_unknown_type_are_not_entries(dev):
    log = dev.boot()
    entry = {"n": 0, "prev": GENESIS, "type": "boot", "device_id": "cam-7", "monotonic_us": 1, "utc_us": 2}
    body = json.dumps(dict(entry, firmware=float("nan"))).encode()
    nan_line = body + b" " + DEVICE.sign(b"OBWC-v1-audit\x00" + body).signature.hex().encode()
    odd = sign_line(DEVICE, dict(entry, type="party"))
    log.close()
    for line in (nan_line, odd):
        with open(os.path.join(dev.root, audit_file_name(1)), "wb") as f:
            f.write(line + b"\n")
        assert dev.verify().outcome == STRUCTURE_FAILURE


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=600), cut=st.integers(min_value=0, max_value=2000))
def test_any_bytes_or_any_cut_are_judged_without_a_traceback(tmp_path_factory, data, cut):
    root = tmp_path_factory.mktemp("fuzz")
    device = Device(root)
    device.day(device.boot())
    path = os.path.join(str(root), audit_file_name(1))
    with open(path, "rb") as f:
        good = f.read()
    for blob in (data, good[:cut] + data, good[:cut]):
        run = read_audit_file("audit-0000000001.log", blob, DEVICE.verify_key)
        report = merge_audit([run])
        assert report.outcome in (AUTHENTIC, TRUNCATED, STRUCTURE_FAILURE, "signature_failure")
        if report.ok:
            # Nothing malformed accepted: every entry present is a whole, signed line of the day.
            assert all(e in device.verify().entries for e in report.entries)
