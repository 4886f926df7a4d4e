"""`bwc demo`: the whole chain on one machine, from keys to an exported MP4."""
from __future__ import annotations

import json
import os
import sys

from device.config import load_identity, load_policy
from device.evidence.keys import read_custodian_secret, read_device_public
from device.evidence.storage_verify import verify_storage
from simulator.runner import run_scenario
from tools.export import export_storage
from tools.provision import ProvisionError, keygen, provision
from tools.report import format_report
from tools.run import builtin_scenario


def run_demo(out_dir: str) -> int:
    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        print(f"bwc demo: {out_dir} already exists and is not empty; choose a new directory", file=sys.stderr)
        return 2
    try:
        secret_path, public_path = keygen(os.path.join(out_dir, "custodian"))
        device_dir = os.path.join(out_dir, "device")
        device_pub = provision("demo-cam-01", [public_path], device_dir)
    except ProvisionError as exc:
        print(f"bwc demo: {exc}", file=sys.stderr)
        return 2
    print(f"1. custodian keys in {os.path.dirname(secret_path)}; device provisioned in {device_dir}")

    scenario = builtin_scenario()
    policy = scenario.apply_policy(load_policy(os.path.join(device_dir, "policy.toml")))
    storage = os.path.join(device_dir, "storage")
    result = run_scenario(scenario, load_identity(device_dir), policy, device_dir, storage)
    if result.firmware.failure is not None:
        print(f"bwc demo: recording failed: {result.firmware.failure}", file=sys.stderr)
        return 1
    print(f"2. recorded {scenario.duration_s:g} s of simulated body-camera time to {storage} "
          f"(pre-event {policy.pre_event_s:g} s, double press at 20 s, marker at 27 s, hold to stop at 35 s)")

    report = verify_storage(storage, read_device_public(device_pub))
    print("3. verified with the device's public key only:")
    print(format_report(report))
    if report.outcome != "authentic":
        return 1
    export_dir = os.path.join(out_dir, "export")
    _, exported = export_storage(storage, read_custodian_secret(secret_path),
                                 read_device_public(device_pub), export_dir, device_key_pinned=True)
    print(f"4. decrypted with the custodian key and exported to {export_dir}")
    for ev in exported:
        print(f"5. {notice_line(ev.sidecar_path)}")
    for ev in exported:
        print(ev.mp4_path)
    return 0


def notice_line(sidecar_path: str) -> str:
    """One line: was the announced-recording notice found in the audio, and where (ANN-2)."""
    with open(sidecar_path, encoding="utf-8") as f:
        logged = json.load(f)["announcements"]
    if not logged:
        return "notice: none logged for this event"
    found = [a for a in logged if a["found"]]
    parts = [f"{a['language'] or '-'} {a['result']}" for a in logged]
    verdict = ("the notice is in the recorded audio" if found and len(found) == len(logged)
               else "some logged notice is NOT in the recorded audio" if any(a["found"] is False for a in logged)
               else "no notice to find")
    return f"notice: {verdict}: " + "; ".join(parts)
