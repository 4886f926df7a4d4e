"""What the report says about the machine: CPU, cores, Python, kernel, and the disk's
measured write rate (the activation figures are judged against it, docs/bench.md)."""
from __future__ import annotations

import os
import platform
import statistics
import time

DISK_PROBE_BYTES = 64 * 1024 * 1024
DISK_PROBE_CHUNK_BYTES = 4 * 1024 * 1024


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def disk_write_rates_mb_s(work_dir: str, repeats: int = 3) -> list[float]:
    """MB/s of 64 MiB written in 4 MiB writes, each followed by fsync, in `work_dir` (the
    disk the suites write to), as the writer does: durable bytes, not the page cache's.

    A first pass runs and is not counted: it ran 2-4x slower than the next ones here
    (203-442 MB/s against 511-1478), and a slower rate would excuse a slower pre-event."""
    path = os.path.join(work_dir, "disk-probe.bin")
    chunk = os.urandom(DISK_PROBE_CHUNK_BYTES)
    rates = []
    for _ in range(repeats + 1):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            started = time.perf_counter()
            for _ in range(DISK_PROBE_BYTES // DISK_PROBE_CHUNK_BYTES):
                os.write(fd, chunk)
                os.fsync(fd)
            rates.append(DISK_PROBE_BYTES / 1e6 / (time.perf_counter() - started))
        finally:
            os.close(fd)
            os.unlink(path)
    return rates[1:]


def disk_write_mb_s(work_dir: str) -> float:
    """The median of disk_write_rates_mb_s."""
    return statistics.median(disk_write_rates_mb_s(work_dir))


# The packages whose start-up the measured `bwc` processes pay.
_PACKAGES = ("openbwc", "device", "hal", "simulator", "tools")


def compile_bytecode() -> bool:
    """Compile every module of bwc to bytecode before anything is timed, so a measured
    `bwc` process starts as an installed one does (pip compiles at install). Without it, an
    editable checkout under PYTHONDONTWRITEBYTECODE=1 recompiles ~100 modules on every
    start (0.15 s here), which the peers never pay. True if every file compiled."""
    import compileall
    import importlib

    ok = True
    for name in _PACKAGES:
        try:
            package_dir = os.path.dirname(importlib.import_module(name).__file__)
        except (ImportError, TypeError):
            continue
        ok = bool(compileall.compile_dir(package_dir, quiet=2)) and ok
    return ok


def describe(work_dir: str) -> dict:
    return {"cpu_model": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
            "kernel": platform.release(), "platform": platform.platform(),
            "disk_write_mb_s": round(disk_write_mb_s(work_dir), 1),
            "disk_probe": "64 MiB in 4 MiB writes, each followed by fsync, in the work directory; median of 3 after a warm-up pass",
            "load_avg_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None}


