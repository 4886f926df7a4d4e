"""`bwc export` memory stays flat in the length of the footage (issue 5 item 5).

The footage is real firmware output at 1080p30, 10 Mbit/s (tests/tool/long_event.py).
Peak RSS is the kernel's high-water mark for the `bwc export` process (Linux VmHWM).

Segments are 10 s here so that both lengths have segments of the same size: nothing
should hold a whole segment (the verifier reads by records, the decryptor a chunk or
two ahead), but equal segments keep this test about the footage's length alone.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from long_event import record_long_event
from tools.bench import measure_read

REPO = Path(__file__).resolve().parents[2]  # the working tree under test

pytestmark = [pytest.mark.tool,
              pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")]

MIB = 1024 * 1024


# `bwc export` in a child that reports its own peak RSS (VmHWM) as it exits. Not the
# parent's os.wait4 figure: on Linux a child's ru_maxrss also counts the parent's
# memory image it ran in between fork and exec, here the whole pytest process.
MEASURED_BWC = measure_read.MEASURED_BWC


def _export_peak_rss_mib(event, out) -> float:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-c", MEASURED_BWC, "export", event.storage, "--key",
                           event.custodian_key, "--out", str(out), "--device-pub", event.device_pub],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    peak_kib = next(line.split()[1] for line in proc.stderr.splitlines() if line.startswith("VMHWM_KIB "))
    return int(peak_kib) / 1024


def test_peak_memory_does_not_grow_with_the_footage(tmp_path):
    short = record_long_event(str(tmp_path / "short"), 20, segment_s=10)
    long = record_long_event(str(tmp_path / "long"), 40, segment_s=10)
    footage_growth_mib = (long.storage_bytes - short.storage_bytes) / MIB
    assert footage_growth_mib > 20, footage_growth_mib
    rss_short = _export_peak_rss_mib(short, tmp_path / "out-short")
    rss_long = _export_peak_rss_mib(long, tmp_path / "out-long")
    print(f"peak RSS {rss_short:.1f} MiB ({short.storage_bytes / MIB:.0f} MiB of footage), "
          f"{rss_long:.1f} MiB ({long.storage_bytes / MIB:.0f} MiB)")
    # Holding the footage in memory would add about footage_growth_mib; the muxer's
    # sample index adds well under 1 MiB for 20 s more.
    assert rss_long - rss_short < 8, (f"peak RSS {rss_short:.1f} -> {rss_long:.1f} MiB while the footage "
                                      f"grew by {footage_growth_mib:.1f} MiB")


@pytest.mark.slow
def test_a_30_minute_10_mbit_event_exports_in_bounded_memory(tmp_path):
    """About 2.2 GB of evidence in 60 s segments (the default), measured for the record."""
    event = record_long_event(str(tmp_path / "long"), 30 * 60)
    rss = _export_peak_rss_mib(event, tmp_path / "out")
    print(f"30-minute event, {event.storage_bytes / 1e9:.2f} GB: peak RSS {rss:.0f} MiB")
    assert rss < 256, rss
    mp4 = next(p for p in (tmp_path / "out").iterdir() if p.suffix == ".mp4")
    assert mp4.stat().st_size > 0.95 * event.storage_bytes
