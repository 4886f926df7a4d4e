"""The offload measurements (DESIGN §4, issue 7) behind the `offload` bench suite
(suite_offload.py): what `bwc offload` into a real `bwc intake serve` achieves, against a
peer in the same run.

- loopback: MB/s of a whole card offloaded to an intake on the same disk, against `cp` of
  the same files to the same disk followed by `sync` (the intake fsyncs what it keeps);
- bad link: through a loopback proxy at 1 MB/s that drops the connection every 1.5 MB —
  efficiency = payload bytes / bytes that crossed the link towards the intake;
- fleet: N devices offloading at once to two intake replicas sharing one store —
  aggregate MB/s and the p50/p99 latency of the intake's requests (from its access logs).

Cards are recorded with pre-encoded 1080p packets replayed through the real firmware, so
the segments are real (encrypted, signed, chained) and recording them is quick.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time

from device.config import Policy, load_identity
from device.firmware import Firmware
from hal.media import VideoFormat
from simulator.board import build_sim_board
from simulator.clock import VirtualClock
from simulator.replay import ReplayCamera, ReplayMicrophone
from tools.netem import Proxy
from tools.provision import keygen, provision

HD_10M = VideoFormat(width=1920, height=1080, fps=30, keyframe_interval_s=1.0, bitrate_bps=10_000_000)
SMALL = VideoFormat(width=640, height=360, fps=15, keyframe_interval_s=1.0, bitrate_bps=2_000_000)


def _bwc(*args: str) -> list[str]:
    return [sys.executable, "-m", "openbwc", *args]


def record_card(root: str, intake_pub: str, video: VideoFormat, record_s: float, segment_s: float,
                device_id: str = "bench-cam") -> str:
    """A provisioned device whose card holds one event of `record_s` seconds."""
    custodian = os.path.join(root, "custodian")
    if not os.path.isdir(custodian):
        keygen(custodian)
    device_dir = os.path.join(root, device_id)
    provision(device_id, [os.path.join(custodian, "custodian.pub")], device_dir, [intake_pub])
    clock = VirtualClock()
    world = build_sim_board(clock, device_dir, os.path.join(device_dir, "storage"), video)
    board = dataclasses.replace(world.board, camera=ReplayCamera(clock, video), microphone=ReplayMicrophone(clock))
    firmware = Firmware(board, load_identity(device_dir), Policy(pre_event_s=0, segment_s=segment_s))
    firmware.boot()
    for at_us, level in ((500_000, True), (620_000, False), (770_000, True), (890_000, False)):
        clock.call_at(clock.monotonic_us() + at_us, lambda level=level: world.inputs.set("record", level))
    clock.wait_until(clock.monotonic_us() + round((record_s + 1) * 1e6))
    firmware.writer.wait_idle()
    firmware.shutdown()
    return device_dir


def card_bytes(device_dir: str) -> int:
    storage = os.path.join(device_dir, "storage")
    return sum(os.path.getsize(os.path.join(storage, n)) for n in os.listdir(storage))


class IntakeProcess:
    """`bwc intake serve` on 127.0.0.1 with a file store; its access log kept in a file."""

    def __init__(self, intake_dir: str, store_dir: str, log_path: str) -> None:
        self.log_path = log_path
        self._log = open(log_path, "w", encoding="utf-8")
        self.proc = subprocess.Popen(_bwc("intake", "serve", intake_dir, "--listen", "127.0.0.1:0", "--store",
                                          "file://" + store_dir), stdout=subprocess.PIPE, stderr=self._log, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on http://"):
            raise RuntimeError(f"bwc intake serve did not start: {line!r}")
        self.url = line.split()[2]
        self.port = int(self.url.rsplit(":", 1)[1])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)
        self._log.close()

    def latencies_ms(self) -> list[float]:
        with open(self.log_path, encoding="utf-8") as f:
            return [json.loads(line)["duration_ms"] for line in f
                    if line.startswith("{") and "/v1/devices/" in line]


def _intake(root: str, name: str) -> tuple[str, str]:
    intake_dir = os.path.join(root, name)
    subprocess.run(_bwc("intake", "init", "--out", intake_dir), check=True, capture_output=True)
    return intake_dir, os.path.join(intake_dir, "intake.pub")


def _enroll(intake_dir: str, device_dir: str) -> None:
    subprocess.run(_bwc("intake", "enroll", intake_dir, "--device-pub", os.path.join(device_dir, "device.pub")),
                   check=True, capture_output=True)


def _offload(device_dir: str, url: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(_bwc("offload", "--device", device_dir, "--to", url, "--json", *extra),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def bench_loopback(root: str, record_s: float = 60, repeats: int = 3) -> dict:
    """Interleaved runs: offload MB/s and `cp -r` + `sync` MB/s of the same card, per run."""
    intake_dir, intake_pub = _intake(root, "loopback-intake")
    original = record_card(os.path.join(root, "loopback"), intake_pub, HD_10M, record_s, segment_s=10)
    _enroll(intake_dir, original)
    payload = card_bytes(original)
    offload_mb_s, cp_mb_s = [], []
    for run in range(repeats):
        device = shutil.copytree(original, os.path.join(root, f"loopback-run{run}"))
        server = IntakeProcess(intake_dir, os.path.join(root, f"loopback-store{run}"),
                               os.path.join(root, f"loopback{run}.log"))
        try:
            started = time.perf_counter()
            proc = _offload(device, server.url)
            _, err = proc.communicate()
            elapsed = time.perf_counter() - started
            if proc.returncode != 0:
                raise RuntimeError(f"bwc offload exited {proc.returncode}: {err.decode()[-300:]}")
            offload_mb_s.append(payload / 1e6 / elapsed)
        finally:
            server.stop()
        started = time.perf_counter()
        subprocess.run(["cp", "-r", os.path.join(original, "storage"), os.path.join(root, f"cp-run{run}")], check=True)
        subprocess.run(["sync"], check=True)
        cp_mb_s.append(payload / 1e6 / (time.perf_counter() - started))
    return {"payload_mb": round(payload / 1e6, 1), "offload_mb_s": offload_mb_s, "cp_then_sync_mb_s": cp_mb_s}


def bench_bad_link(root: str, record_s: float = 20, rate_bps: int = 1_000_000,
                   drop_every_bytes: int = 1_500_000, part_kib: int | None = None) -> dict:
    intake_dir, intake_pub = _intake(root, "badlink-intake")
    device = record_card(os.path.join(root, "badlink"), intake_pub, dataclasses.replace(HD_10M, bitrate_bps=2_000_000),
                         record_s, segment_s=4)
    _enroll(intake_dir, device)
    payload = card_bytes(device)
    server = IntakeProcess(intake_dir, os.path.join(root, "badlink-store"), os.path.join(root, "badlink.log"))
    try:
        with Proxy(("127.0.0.1", server.port), rate_bps=rate_bps, drop_every_bytes=drop_every_bytes) as proxy:
            started = time.perf_counter()
            proc = _offload(device, proxy.url, *(("--part-kib", str(part_kib)) if part_kib else ()))
            _, err = proc.communicate()
            elapsed = time.perf_counter() - started
            sent, drops = proxy.client_to_server, proxy.drops
    finally:
        server.stop()
    return {"payload_mb": round(payload / 1e6, 2), "exit_code": proc.returncode, "link_bytes_per_s": rate_bps,
            "drops": drops, "part_kib": part_kib or "adaptive", "bytes_towards_intake": sent,
            "efficiency": payload / sent if sent else None, "wall_s": round(elapsed, 1)}


def bench_fleet(root: str, devices: int = 20, record_s: float = 6) -> dict:
    intake_dir, intake_pub = _intake(root, "fleet-intake")
    cards = [record_card(os.path.join(root, "fleet"), intake_pub, SMALL, record_s, segment_s=2, device_id=f"cam-{i:04d}")
             for i in range(devices)]
    for card in cards:
        _enroll(intake_dir, card)
    payload = sum(card_bytes(c) for c in cards)
    store = os.path.join(root, "fleet-store")
    replicas = [IntakeProcess(intake_dir, store, os.path.join(root, f"fleet-replica{i}.log")) for i in range(2)]
    try:
        started = time.perf_counter()
        procs = [_offload(card, replicas[i % 2].url) for i, card in enumerate(cards)]
        codes = [p.wait() for p in procs]
        elapsed = time.perf_counter() - started
    finally:
        for r in replicas:
            r.stop()
    latencies = sorted(ms for r in replicas for ms in r.latencies_ms())
    return {"devices": devices, "replicas": 2, "payload_mb": round(payload / 1e6, 2),
            "all_exit_0": all(c == 0 for c in codes), "wall_s": round(elapsed, 2),
            "aggregate_mb_s": payload / 1e6 / elapsed, "request_ms": latencies}
