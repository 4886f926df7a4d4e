"""Throughput and memory figures of the read path (verify, export), for the throughput suite.

Footage: one event of 1080p30 10 Mbit/s packets, pre-encoded and replayed through the real
firmware (tools/bench/offload.py record_card, 60 s segments): 14 min (reduced: 2 min), and a
quarter-length one for the memory growth figure. Everything is timed as a process (what a
custodian runs), on a warm page cache, ours and the peers' runs interleaved, ctx.repeats each.

- `verify_mb_s`: card bytes / wall time of `bwc verify` against `openssl dgst -sha256` over
  the same files (sha256sum and b2sum in the figure's context). The verifier hashes segment
  files on a thread per core: they are independent, and hashlib and PyNaCl release the GIL.
- `export_x_realtime`: media seconds per wall second of `bwc export` of the whole card
  (verify + decrypt + remux + sidecar) against `age -d -i KEY IN | ffmpeg -v error -f mp4 -i -
  -c copy -y OUT.mp4`, IN being the event's plaintext fragmented MP4 (the exported MP4
  re-fragmented with ffmpeg -c copy, so the same packets) encrypted with `age` to an X25519
  key, prepared once and not timed. ffmpeg reads the fMP4 from the pipe (moov first).
- `export_x_realtime_abs`: the same runs of ours, judged against DESIGN §4's 50x.
- `export_peak_rss_mib`: VmHWM of the long export's own process image (not ru_maxrss: a
  child's also counts the parent's image it was forked from); `export_peak_rss_growth_mib`:
  that minus the quarter-length export's, run by run.
- Series `export_rss_mib`: VmRSS of the last long export, sampled every 50 ms.
"""
from __future__ import annotations

import glob
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
import time

from nacl.signing import SigningKey

from device.evidence import keys
from tools.bench.model import BenchContext, Figure, Series
from tools.bench.offload import HD_10M, record_card

MIB = 1024 * 1024
RSS_SAMPLE_S = 0.05

# `bwc ARGS` in a child that reports the peak RSS of its own image (VmHWM) as it exits
# (tests/tool/test_tool_export_memory.py uses it too).
MEASURED_BWC = r"""
import sys
import openbwc
from tools import cli
code = cli.main(sys.argv[1:])
with open("/proc/self/status") as f:
    peak = next(line.split()[1] for line in f if line.startswith("VmHWM:"))
print(f"VMHWM_KIB {peak}", file=sys.stderr)
sys.exit(code)
"""


class _Card:
    def __init__(self, root: str, record_s: float) -> None:
        intake_pub = os.path.join(root, "intake.pub")
        os.makedirs(root, exist_ok=True)
        keys.write_public(intake_pub, keys.INTAKE_PUBLIC, bytes(SigningKey.generate().verify_key))
        self.device = record_card(root, intake_pub, HD_10M, record_s, segment_s=60)
        self.storage = os.path.join(self.device, "storage")
        self.pub = os.path.join(self.device, "device.pub")
        self.key = os.path.join(root, "custodian", "custodian.key")
        self.files = sorted(glob.glob(os.path.join(self.storage, "*")))
        self.bytes = sum(os.path.getsize(p) for p in self.files)
        self.media_s = 0.0

    def warm(self) -> None:
        for path in self.files:
            with open(path, "rb", buffering=0) as f:
                while f.read(1 << 20):
                    pass


def _timed(argv: list[str], **kwargs) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    return time.perf_counter() - started, proc


def _bwc(*args: str) -> list[str]:
    return [sys.executable, "-m", "openbwc", *args]


def _fail(what: str, proc: subprocess.CompletedProcess) -> RuntimeError:
    last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
    return RuntimeError(f"{what} exited {proc.returncode}: {last}")


def measure_verify(ctx: BenchContext, card: _Card) -> Figure:
    figure = Figure("verify_mb_s", "MB/s", [], better="higher", peer="openssl dgst -sha256",
                    description="bwc verify of a whole card as a process (segment files on a thread per core), "
                                "warm cache, vs openssl dgst -sha256 over the same files, interleaved",
                    context={"card_mb": round(card.bytes / 1e6, 1)})
    if shutil.which("openssl") is None:
        figure.skipped = "openssl not installed: apt-get install openssl"
        return figure
    peers = {"openssl": ["openssl", "dgst", "-sha256"], "sha256sum": ["sha256sum"], "b2sum": ["b2sum"]}
    peers = {name: argv for name, argv in peers.items() if shutil.which(argv[0])}
    rates: dict[str, list[float]] = {name: [] for name in peers}
    card.warm()
    for _ in range(ctx.repeats):
        elapsed, proc = _timed(_bwc("verify", card.storage, "--device-pub", card.pub))
        if proc.returncode != 0:
            raise _fail("bwc verify", proc)
        figure.samples.append(card.bytes / 1e6 / elapsed)
        for name, argv in peers.items():
            elapsed, proc = _timed([*argv, *card.files])
            if proc.returncode != 0:
                raise _fail(name, proc)
            rates[name].append(card.bytes / 1e6 / elapsed)
    figure.peer_samples = rates.pop("openssl")
    for name, values in rates.items():
        figure.context[f"{name}_mb_s"] = round(statistics.median(values), 1)
    for name in ("sha256sum", "b2sum"):
        if name not in peers:
            figure.context[f"{name}_mb_s"] = "not installed: apt-get install coreutils"
    return figure


class _RssSampler(threading.Thread):
    """VmRSS of one process every RSS_SAMPLE_S, until it exits."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.points = pid, []
        self._stop_event = threading.Event()

    def run(self) -> None:
        started = time.perf_counter()
        while not self._stop_event.is_set():
            try:
                with open(f"/proc/{self.pid}/status") as f:
                    kib = next((line.split()[1] for line in f if line.startswith("VmRSS:")), None)
            except OSError:
                return
            if kib is not None:
                self.points.append((round(time.perf_counter() - started, 3), int(kib) / 1024))
            self._stop_event.wait(RSS_SAMPLE_S)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def _export(card: _Card, out: str, sample: bool = False) -> tuple[float, float, list]:
    """One `bwc export` process: (wall s, peak RSS MiB, RSS points if sampled)."""
    argv = [sys.executable, "-c", MEASURED_BWC, "export", card.storage, "--key", card.key, "--out", out,
            "--device-pub", card.pub]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sampler = _RssSampler(proc.pid) if sample else None
    if sampler:
        sampler.start()
    _, err = proc.communicate()
    elapsed = time.perf_counter() - started
    if sampler:
        sampler.stop()
    if proc.returncode != 0:
        raise _fail("bwc export", subprocess.CompletedProcess(argv, proc.returncode, "", err))
    peak_kib = next(line.split()[1] for line in err.splitlines() if line.startswith("VMHWM_KIB "))
    with open(os.path.join(out, "export-summary.json"), encoding="utf-8") as f:
        card.media_s = sum(e["media_s"] for e in json.load(f)["events"])
    return elapsed, int(peak_kib) / 1024, sampler.points if sampler else []


def _peer_input(root: str, exported_dir: str) -> tuple[str, str] | str:
    """(age key, encrypted plaintext fMP4), or why the peer cannot run."""
    missing = [tool for tool in ("age", "age-keygen", "ffmpeg") if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not installed: apt-get install age ffmpeg"
    mp4 = glob.glob(os.path.join(exported_dir, "*.mp4"))[0]
    plain, age_key, encrypted = (os.path.join(root, n) for n in ("plain-fmp4.mp4", "peer.agekey", "peer.age"))
    subprocess.run(["ffmpeg", "-v", "error", "-i", mp4, "-c", "copy", "-movflags",
                    "frag_keyframe+empty_moov+default_base_moof", "-y", plain], check=True)
    subprocess.run(["age-keygen", "-o", age_key], check=True, capture_output=True)
    recipient = subprocess.run(["age-keygen", "-y", age_key], check=True, capture_output=True, text=True).stdout.strip()
    subprocess.run(["age", "-r", recipient, "-o", encrypted, plain], check=True)
    os.unlink(plain)
    return age_key, encrypted


def _peer_export(age_key: str, encrypted: str, out_mp4: str) -> float:
    pipeline = (f"age -d -i {shlex.quote(age_key)} {shlex.quote(encrypted)} | "
                f"ffmpeg -v error -f mp4 -i - -c copy -y {shlex.quote(out_mp4)}")
    elapsed, proc = _timed(["sh", "-c", pipeline])
    if proc.returncode != 0:
        raise _fail("age -d | ffmpeg -c copy", proc)
    os.unlink(out_mp4)
    return elapsed


def measure_export(ctx: BenchContext, long: _Card, short: _Card) -> tuple[list[Figure], list[Series]]:
    root = os.path.join(ctx.work_dir, "read-export")
    os.makedirs(root, exist_ok=True)
    out = os.path.join(root, "out")
    _export(long, out)                          # warms the caches, gives the peer its input
    peer = _peer_input(root, out)
    shutil.rmtree(out)
    ours_x, peer_x, peaks, growth, points = [], [], [], [], []
    for run in range(ctx.repeats):
        elapsed, peak, sampled = _export(long, out, sample=run == ctx.repeats - 1)
        shutil.rmtree(out)
        ours_x.append(long.media_s / elapsed)
        peaks.append(peak)
        points = sampled or points
        if not isinstance(peer, str):
            peer_x.append(long.media_s / _peer_export(*peer, os.path.join(root, "peer-out.mp4")))
        _, short_peak, _ = _export(short, out)
        shutil.rmtree(out)
        growth.append(peak - short_peak)
    context = {"media_s": round(long.media_s, 1), "card_mb": round(long.bytes / 1e6, 1)}
    relative = Figure("export_x_realtime", "x realtime", ours_x, better="higher", peer="age -d | ffmpeg -c copy",
                      peer_samples=peer_x or None, context=dict(context),
                      description="bwc export of a whole card as a process (verify + decrypt + remux + sidecar) vs "
                                  "age -d of its plaintext fMP4 piped to ffmpeg -c copy, interleaved",
                      skipped=peer if isinstance(peer, str) else None)
    absolute = Figure("export_x_realtime_abs", "x realtime", list(ours_x), better="higher", context=dict(context),
                      description="media seconds exported per wall second, 1080p30 10 Mbit/s (DESIGN §4: >= 50x)")
    peak_fig = Figure("export_peak_rss_mib", "MiB", peaks, context=dict(context),
                      description="peak RSS (VmHWM) of the bwc export process, longest event")
    growth_fig = Figure("export_peak_rss_growth_mib", "MiB", growth,
                        context={"long_media_s": round(long.media_s, 1), "short_media_s": round(short.media_s, 1)},
                        description="peak RSS of the long export minus that of a quarter-length one, run by run")
    series = Series("export_rss_mib", f"bwc export RSS, {long.media_s / 60:.0f} min of 1080p30 10 Mbit/s",
                    "s", "MiB", points)
    return [relative, absolute, peak_fig, growth_fig], [series]


def measure(ctx: BenchContext) -> tuple[list[Figure], list[Series]]:
    record_s = 120.0 if ctx.reduced else 14 * 60.0
    long = _Card(os.path.join(ctx.work_dir, "read-long"), record_s)
    short = _Card(os.path.join(ctx.work_dir, "read-short"), record_s / 4)
    verify = measure_verify(ctx, long)
    export_figures, series = measure_export(ctx, long, short)
    return [verify, *export_figures], series
