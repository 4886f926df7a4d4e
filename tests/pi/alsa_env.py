"""Real ALSA without sound hardware: the system's libasound and alsa-utils, given
PCMs made of ALSA's own `file` and `null` plugins.

- `openbwc_tone`: capture reads a raw S16_LE file (the plugin's `infile`) and,
  past its end, silence. Nothing paces it: arecord runs as fast as its pipe is
  drained, so tests stamp time with PacedClock, not the wall clock.
- `openbwc_fifo_mic`: capture reads a FIFO the test writes, so the test decides
  when audio stops arriving (a device that opens and then goes quiet).
- `openbwc_speaker`: playback writes what aplay sends into a raw file.
- `openbwc_wedged_speaker`: playback writes into a FIFO nobody reads, so aplay
  blocks for good inside ALSA, as on a wedged device.

Selected with ALSA_CONFIG_PATH (the system's alsa.conf, then ours), which
arecord and aplay inherit. CI needs: apt-get install -y alsa-utils (it brings
libasound2 and libasound2-data, i.e. /usr/share/alsa/alsa.conf).
"""
from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from hal.clock import Clock, Timer

SYSTEM_ALSA_CONF = Path("/usr/share/alsa/alsa.conf")
RATE_HZ = 48_000
TONE_HZ = 1_000.0
TONE_AMPLITUDE = 8_000  # of 32768: -12.3 dBFS peak
TONE_S = 4.0  # longer than any test captures, so every capture is tone, never the silence past its end


def require_alsa_utils() -> None:
    """Fail (never skip) with the install line when the machine lacks what these tests run."""
    missing = [tool for tool in ("arecord", "aplay") if shutil.which(tool) is None]
    if missing or not SYSTEM_ALSA_CONF.is_file():
        raise AssertionError(f"real-ALSA tests need {', '.join(missing) or SYSTEM_ALSA_CONF}: "
                             "apt-get install -y alsa-utils")


def tone(sample_count: int, frequency_hz: float = TONE_HZ, amplitude: int = TONE_AMPLITUDE) -> np.ndarray:
    t = np.arange(sample_count) / RATE_HZ
    return np.round(np.sin(2 * np.pi * frequency_hz * t) * amplitude).astype(np.int16)


@dataclass
class AlsaEnv:
    root: Path
    speaker_out: Path
    mic_fifo: Path
    tone_pcm: str = "openbwc_tone"
    fifo_mic_pcm: str = "openbwc_fifo_mic"
    speaker_pcm: str = "openbwc_speaker"
    wedged_speaker_pcm: str = "openbwc_wedged_speaker"


def make_alsa_env(root: Path, set_env: Callable[[str, str], None]) -> AlsaEnv:
    """Write the PCMs under `root` and point ALSA at them through `set_env` (monkeypatch.setenv)."""
    require_alsa_utils()
    tone_file = root / "tone.raw"
    tone_file.write_bytes(tone(int(TONE_S * RATE_HZ)).astype("<i2").tobytes())
    mic_fifo, wedge_fifo = root / "mic.fifo", root / "wedge.fifo"
    os.mkfifo(mic_fifo)
    os.mkfifo(wedge_fifo)
    speaker_out = root / "speaker.raw"
    conf = root / "asound.conf"
    conf.write_text(f"""
pcm.openbwc_tone {{ type file  slave.pcm "null"  file "/dev/null"  infile "{tone_file}"  format "raw" }}
pcm.openbwc_fifo_mic {{ type file  slave.pcm "null"  file "/dev/null"  infile "{mic_fifo}"  format "raw" }}
pcm.openbwc_speaker {{ type file  slave.pcm "null"  file "{speaker_out}"  format "raw" }}
pcm.openbwc_wedged_speaker {{ type file  slave.pcm "null"  file "{wedge_fifo}"  format "raw" }}
""")
    set_env("ALSA_CONFIG_PATH", f"{SYSTEM_ALSA_CONF}:{conf}")
    return AlsaEnv(root=root, speaker_out=speaker_out, mic_fifo=mic_fifo)


class PacedClock(Clock):
    """Each reading is one capture period later than the last.

    PiMicrophone reads the clock once per 10 ms block, so this is the clock a
    device delivering in real time would show it - without the test waiting
    for real time or depending on how busy the machine is.
    """

    def __init__(self, step_us: int = 10_000, start_us: int = 1_000_000_000) -> None:
        self._lock = threading.Lock()
        self._step_us = step_us
        self._next_us = start_us

    def monotonic_us(self) -> int:
        with self._lock:
            self._next_us += self._step_us
            return self._next_us

    def peek_us(self) -> int:
        """The latest reading, without taking a new one."""
        with self._lock:
            return self._next_us

    def wall_time_us(self) -> int:
        return 1_767_225_600 * 1_000_000 + self.monotonic_us()

    def call_at(self, deadline_us: int, callback: Callable[[], None]) -> Timer:
        raise NotImplementedError("PacedClock only stamps capture")

    def wait_until(self, deadline_us: int) -> None:
        raise NotImplementedError("PacedClock only stamps capture")


def children_named(name: str) -> list[int]:
    """PIDs of this process's children whose command is `name` (from /proc, no psutil)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        if comm == name and int(fields[1]) == os.getpid() and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids
