"""Generate the evidence-set test vectors (docs/format.md §6, §10): one directory per case.

Usage: python tests/vectors/sets/generate.py [OUT_DIR]     (default: this directory)

Each case is `<name>/storage/` (a set of one device's files, exactly as verified),
`<name>/device.pub` (the key to verify with) and `<name>/expect.json`:

    {"outcome": "authentic" | "truncated" | "before_set" | "integrity_failure",
     "exit": the `bwc verify` exit code (0, 3, 4, 1),
     "gaps": the sorted list of gap kinds the verifier names
             ("before_set", "receipt", "storage_fault", "power_loss"),
     "comment": what happened to the device and its files}

The sets are recorded by the real firmware on the simulator (virtual clock, crash-
consistent simulated storage, storage faults and power cuts from scenario steps), then
copied, gathered or damaged by file operations, the way a dock, a custodian or an
attacker would. The firmware draws keys, event ids and nonces at random, so
regenerating gives equivalent, not identical, files; the committed ones are pinned.
This module does not use the verifier: expectations are what the case is built to be.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[3]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from nacl.signing import SigningKey  # noqa: E402

from device.config import load_identity, load_policy  # noqa: E402
from device.evidence.audit_lines import audit_file_name, line_hash, sign_line  # noqa: E402
from device.evidence.keys import INTAKE_PUBLIC, write_public  # noqa: E402
from device.evidence.receipt import make_receipt  # noqa: E402
from device.evidence.segment_reader import read_header_unverified  # noqa: E402
from device.firmware import Firmware  # noqa: E402
from simulator.board import build_sim_board  # noqa: E402
from simulator.clock import VirtualClock  # noqa: E402
from simulator.runner import run_scenario  # noqa: E402
from simulator.scenario import parse_scenario  # noqa: E402
from tools.provision import keygen, provision  # noqa: E402

EXIT = {"authentic": 0, "integrity_failure": 1, "truncated": 3, "before_set": 4}
INTAKE = SigningKey(bytes([7]) * 32)
CAMERA = """
[camera]
width = 160
height = 96
fps = 5
keyframe_interval_s = 1
bitrate_bps = 60000

[policy]
pre_event_s = 1
segment_s = {segment_s}
hold_stop_s = 1
"""


def _scenario(duration_s: float, *steps: str, segment_s: int = 1) -> str:
    return (f"duration_s = {duration_s}\n{CAMERA.format(segment_s=segment_s)}\n"
            + "\n".join(f"[[at]]\n{s}\n" for s in steps))


EVENT = _scenario(4, 't_s = 0.5\ndo = "button.double_press"', 't_s = 2.0\ndo = "button.hold"\nhold_s = 1.2')
CUT_THEN_REBOOT = _scenario(
    7, 't_s = 0.5\ndo = "button.double_press"', 't_s = 2.6\ndo = "power.cut"', 't_s = 3.0\ndo = "power.restore"',
    't_s = 3.5\ndo = "button.double_press"', 't_s = 5.0\ndo = "button.hold"\nhold_s = 1.2')
CUT_NO_REBOOT = _scenario(4, 't_s = 0.5\ndo = "button.double_press"', 't_s = 2.6\ndo = "power.cut"')
FAULT_THEN_RETRY = _scenario(
    7, 't_s = 0.5\ndo = "button.double_press"', 't_s = 2.4\ndo = "storage.fail"\nerrno = "EIO"\nop = "write"\ncount = 1',
    't_s = 3.5\ndo = "button.double_press"', 't_s = 5.0\ndo = "button.hold"\nhold_s = 1.2')
FSYNC_FAULT_THEN_RETRY = _scenario(
    7, 't_s = 0.5\ndo = "button.double_press"', 't_s = 2.4\ndo = "storage.fail"\nerrno = "EIO"\nop = "fsync"\ncount = 1',
    't_s = 3.5\ndo = "button.double_press"', 't_s = 5.0\ndo = "button.hold"\nhold_s = 1.2', segment_s=10)
CARD_FILLS = _scenario(8, 't_s = 0.5\ndo = "button.double_press"', 't_s = 1.0\ndo = "storage.fill"\nfree_bytes = 300000')


class Device:
    def __init__(self, work: Path, name: str, intake: bool = False) -> None:
        self.dir = work / name
        custodian_dir = work / f"{name}-custodian"
        _, custodian_pub = keygen(str(custodian_dir))
        intakes = []
        if intake:
            intakes = [str(work / f"{name}-intake.pub")]
            write_public(intakes[0], INTAKE_PUBLIC, bytes(INTAKE.verify_key))
        self.pub = provision(name, [custodian_pub], str(self.dir), intakes)
        self.storage = self.dir / "storage"

    def run(self, text: str, storage: Path | None = None) -> None:
        scenario = parse_scenario(text, "<set vector>")
        policy = scenario.apply_policy(load_policy(str(self.dir / "policy.toml")))
        run_scenario(scenario, load_identity(str(self.dir)), policy, str(self.dir), str(storage or self.storage))

    def accept_receipt(self, receipt: dict) -> None:
        world = build_sim_board(VirtualClock(), str(self.dir), str(self.storage), parse_scenario(EVENT, "<>").video)
        firmware = Firmware(world.board, load_identity(str(self.dir)), load_policy(str(self.dir / "policy.toml")))
        firmware.boot()
        firmware.accept_receipt(receipt)
        firmware.writer.wait_idle()
        firmware.shutdown()

    def key_hex(self) -> str:
        return Path(self.pub).read_text().strip().partition(":")[2]


def _files(storage: Path, prefix: str) -> list[Path]:
    return sorted(p for p in storage.iterdir() if p.name.startswith(prefix))


def _move_all(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for p in src.iterdir():
        shutil.move(str(p), str(dst / p.name))


def _emit(out: Path, name: str, storage: Path, pub: str, outcome: str, gaps: list[str], comment: str) -> None:
    case = out / name
    if case.exists():
        shutil.rmtree(case)
    shutil.copytree(storage, case / "storage")
    shutil.copy(pub, case / "device.pub")
    (case / "expect.json").write_text(json.dumps(
        {"outcome": outcome, "exit": EXIT[outcome], "gaps": sorted(gaps), "comment": comment}, indent=2) + "\n")


def _newest_heads(storage: Path) -> tuple[dict, dict]:
    seg = _files(storage, "seg-")[-1]
    data = seg.read_bytes()
    header = read_header_unverified(data)
    from device.evidence.format import CHECKPOINT_RECORD_BYTES, parse_checkpoint
    last_cp = parse_checkpoint(data[-CHECKPOINT_RECORD_BYTES + 5:])       # the final checkpoint's copy
    line = _files(storage, "audit-")[-1].read_bytes().rstrip(b"\n").split(b"\n")[-1]
    entry = json.loads(line.rpartition(b" ")[0])
    return ({"seq": header["seq"], "hash": last_cp.hash.hex(), "chunks": last_cp.chunk_count},
            {"n": entry["n"], "hash": line_hash(line)})


def generate(out: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="bwc-set-vectors-"))
    try:
        _generate(out, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _generate(out: Path, work: Path) -> None:
    # A clean card; the card wiped after offload; the two gathered.
    d = Device(work, "cam-wipe")
    d.run(EVENT)
    _emit(out, "authentic_one_event", d.storage, d.pub, "authentic", [], "one event, cleanly stopped")
    _move_all(d.storage, work / "offloaded")
    d.run(EVENT)
    _emit(out, "before_set_after_wipe", d.storage, d.pub, "before_set", ["before_set", "before_set"],
          "the card was emptied after offload, then one more event: segments and audit entries before it")
    gathered = work / "gathered"
    shutil.copytree(work / "offloaded", gathered)
    for p in d.storage.iterdir():
        shutil.copy(p, gathered / p.name)
    _emit(out, "authentic_two_cards_gathered", gathered, d.pub, "authentic", [],
          "the offloaded files and the new card's files in one directory: the whole history")

    # A run on another card, then back to the usual card.
    d = Device(work, "cam-swap")
    d.run(EVENT)
    d.run(EVENT, work / "other-card")
    d.run(EVENT)
    _emit(out, "before_set_card_came_back", d.storage, d.pub, "before_set", ["before_set", "before_set"],
          "the usual card after one run on another card: the boot that came back names the hole")
    _emit(out, "before_set_other_card", work / "other-card", d.pub, "before_set", ["before_set", "before_set"],
          "the other card of the swap on its own")

    # Power cut mid-event, reboot, another event; and damage to it.
    d = Device(work, "cam-cut")
    d.run(CUT_THEN_REBOOT)
    _emit(out, "truncated_power_cut_then_reboot", d.storage, d.pub, "truncated", ["power_loss"],
          "power cut mid-event; the next boot's recovery entry names the cut segment and its checkpoint")
    cut_seq = next(json.loads(l.rpartition(b" ")[0])["seq"] for f in _files(d.storage, "audit-")
                   for l in f.read_bytes().split(b"\n") if b'"type":"recovery"' in l)
    cut = d.storage / f"seg-{cut_seq:010d}.bwc"
    damaged = work / "deleted-cut"
    shutil.copytree(d.storage, damaged)
    (damaged / cut.name).unlink()
    _emit(out, "integrity_failure_cut_segment_deleted", damaged, d.pub, "integrity_failure", [],
          "as truncated_power_cut_then_reboot, with the cut segment deleted: its recovery entry names it")
    damaged = work / "shortened-cut"
    shutil.copytree(d.storage, damaged)
    os.truncate(damaged / cut.name, cut.stat().st_size - 200)
    _emit(out, "integrity_failure_cut_segment_shortened", damaged, d.pub, "integrity_failure", [],
          "as truncated_power_cut_then_reboot, with the cut segment 200 bytes shorter than its recovery entry says")

    d = Device(work, "cam-cut-only")
    d.run(CUT_NO_REBOOT)
    _emit(out, "truncated_power_cut_set_ends", d.storage, d.pub, "truncated", ["power_loss"],
          "power cut mid-event and no boot since: the set ends in the cut")

    # Storage faults.
    d = Device(work, "cam-eio")
    d.run(FAULT_THEN_RETRY)
    _emit(out, "truncated_write_fault_then_retry", d.storage, d.pub, "truncated", ["storage_fault"],
          "EIO on a write mid-event; a fault entry names the last durable checkpoint; the retry records")
    d = Device(work, "cam-fsync")
    d.run(FSYNC_FAULT_THEN_RETRY)
    _emit(out, "truncated_fsync_fault_then_retry", d.storage, d.pub, "truncated", ["storage_fault"],
          "EIO on an fsync: the flush's bytes reached the card anyway; the next segment chains to the "
          "checkpoint before it, which the fault entry names")
    d = Device(work, "cam-full")
    d.run(CARD_FILLS)
    _emit(out, "authentic_storage_full", d.storage, d.pub, "authentic", [],
          "the card fills mid-event: the event closes cleanly with reason storage_full")

    # A receipt, then the receipted history leaves the card.
    d = Device(work, "cam-receipt", intake=True)
    d.run(EVENT)
    segments, audit = _newest_heads(d.storage)
    d.accept_receipt(make_receipt(INTAKE, d.key_hex(), segments, audit, 1_800_000_000_000_000))
    receipt_file = _files(d.storage, "audit-")[-1].name
    for p in list(d.storage.iterdir()):
        if p.name.startswith("seg-") or (p.name.startswith("audit-") and p.name != receipt_file):
            p.unlink()
    d.run(EVENT)
    _emit(out, "authentic_receipt_covers_offload", d.storage, d.pub, "authentic", ["receipt", "receipt"],
          "an intake receipted the first event (its intake key is provisioned); the dock removed what it "
          "covers; one more event")

    # Tampering with a clean two-boot card.
    d = Device(work, "cam-tamper")
    d.run(EVENT)
    d.run(EVENT)
    d.run(EVENT)
    base = d.storage

    def damaged_copy(name: str, comment: str, change) -> None:
        target = work / name
        shutil.copytree(base, target)
        change(target)
        _emit(out, name, target, d.pub, "integrity_failure", [], comment)

    damaged_copy("integrity_failure_audit_emptied", "every audit file truncated to 0 bytes while segments remain",
                 lambda t: [os.truncate(p, 0) for p in _files(t, "audit-")])
    damaged_copy("integrity_failure_audit_cut_before_activation",
                 "the last audit file cut after its boot entry, before the activation of a present event",
                 lambda t: _files(t, "audit-")[-1].write_bytes(_files(t, "audit-")[-1].read_bytes().split(b"\n")[0] + b"\n"))
    damaged_copy("integrity_failure_middle_audit_file_deleted", "the second of three audit files deleted",
                 lambda t: _files(t, "audit-")[1].unlink())
    damaged_copy("integrity_failure_middle_segment_deleted", "a segment in the middle deleted",
                 lambda t: _files(t, "seg-")[len(_files(t, "seg-")) // 2].unlink())

    def fork(t: Path) -> None:
        first = _files(t, "audit-")[0]
        line = first.read_bytes().split(b"\n")[1]
        entry = json.loads(line.rpartition(b" ")[0])
        entry["source"] = "trigger:forged"
        seed = bytes.fromhex((d.dir / "device.key").read_text().strip())
        (t / audit_file_name(99)).write_bytes(sign_line(SigningKey(seed), entry) + b"\n")

    damaged_copy("integrity_failure_forked_audit_entry",
                 "a second, different audit entry with an existing number, signed with the device key",
                 fork)


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent)
