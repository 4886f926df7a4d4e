"""The simulator's speed against ffmpeg doing the same encoding (throughput suite).

Ours: `bwc run --hal sim --scenario S` as a process, S being 640x360 at 30 fps with
one event (so the firmware buffers, writes, encrypts and signs as it would), on the
virtual clock: simulated seconds per wall second, start-up included. The simulated
camera and microphone really encode (x264 and FFmpeg's AAC), so the peer is `ffmpeg`
producing the same duration of 640x360 video and mono AAC from synthetic sources
(lavfi testsrc2 and sine) with the simulator's encoder settings
(simulator/camera_encoder.py open_h264_encoder, simulator/audio.py open_aac_encoder)
into a fragmented MP4 on the same disk. Runs interleaved, ctx.repeats each, after one
untimed run of each; bwc's modules are compiled to bytecode first (the harness does it).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

from tools.bench.devices import make_device
from tools.bench.model import BenchContext, Figure, Series

WIDTH, HEIGHT, FPS = 640, 360, 30
VIDEO_BITRATE_BPS = 1_500_000   # the scenario language's default (docs/scenarios.md)
AUDIO_BITRATE_BPS = 64_000      # hal.media.AudioFormat's default
KEYFRAME_INTERVAL_S = 1

_SCENARIO = """\
duration_s = {duration_s}
[camera]
width = {width}
height = {height}
fps = {fps}
keyframe_interval_s = {keyframe_interval_s}
bitrate_bps = {bitrate_bps}
[policy]
pre_event_s = {pre_event_s}
segment_s = 60
[[at]]
t_s = {start_s}
do = "button.double_press"
[[at]]
t_s = {stop_s}
do = "button.hold"
"""

# The simulator's x264 settings (open_h264_encoder) spelled as ffmpeg options.
_GOP = str(FPS * KEYFRAME_INTERVAL_S)
FFMPEG_VIDEO_ARGS = [
    "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-bf", "0",
    "-g", _GOP, "-keyint_min", _GOP, "-sc_threshold", "0", "-aq-mode", "0",
    "-b:v", str(VIDEO_BITRATE_BPS), "-maxrate", str(VIDEO_BITRATE_BPS),
    "-bufsize", str(VIDEO_BITRATE_BPS), "-threads", "1", "-pix_fmt", "yuv420p",
]
FFMPEG_AUDIO_ARGS = ["-c:a", "aac", "-b:a", str(AUDIO_BITRATE_BPS), "-ac", "1", "-ar", "48000"]


def _scenario(path: str, duration_s: int, pre_event_s: int) -> None:
    start_s = pre_event_s + 3
    with open(path, "w") as f:
        f.write(_SCENARIO.format(
            duration_s=duration_s, width=WIDTH, height=HEIGHT, fps=FPS,
            keyframe_interval_s=KEYFRAME_INTERVAL_S, bitrate_bps=VIDEO_BITRATE_BPS,
            pre_event_s=pre_event_s, start_s=start_s, stop_s=max(start_s + 2, duration_s - 3)))


def _fresh_device(root: str) -> str:
    """A newly provisioned device, so every run does the same work from the same state."""
    shutil.rmtree(root, ignore_errors=True)
    return make_device(root, "bench-sim")[0]


def _timed(argv: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall_s = time.perf_counter() - started
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{argv[0]} {argv[1] if len(argv) > 1 else ''} exited {done.returncode}: {last}")
    return wall_s


def _ours(ctx: BenchContext, scenario: str, run: int) -> float:
    device_dir = _fresh_device(os.path.join(ctx.work_dir, f"sim-{run}"))
    return _timed([sys.executable, "-m", "openbwc", "run", "--device", device_dir,
                   "--hal", "sim", "--scenario", scenario])


def _peer(ctx: BenchContext, duration_s: int) -> float:
    out = os.path.join(ctx.work_dir, "ffmpeg-peer.mp4")
    return _timed([
        "ffmpeg", "-nostdin", "-v", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}",
        "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000",
        "-t", str(duration_s), *FFMPEG_VIDEO_ARGS, *FFMPEG_AUDIO_ARGS,
        "-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", out,
    ])


def measure(ctx: BenchContext) -> tuple[list[Figure], list[Series]]:
    duration_s, pre_event_s = (15, 5) if ctx.reduced else (60, 30)
    description = (f"bwc run --hal sim, {WIDTH}x{HEIGHT}@{FPS} x264 ultrafast/zerolatency "
                   f"{VIDEO_BITRATE_BPS // 1000} kbit/s + AAC {AUDIO_BITRATE_BPS // 1000} kbit/s, "
                   f"{duration_s} s simulated with one event, start-up included")
    ratio = Figure("simulator_x_realtime", "x realtime", [], better="higher", description=description,
                   peer="ffmpeg, same x264/AAC settings, lavfi testsrc2+sine to fMP4", peer_samples=[],
                   context={"simulated_s": duration_s, "pre_event_s": pre_event_s})
    absolute = Figure("simulator_x_realtime_abs", "x realtime", [], better="higher",
                      description=f"the simulator's own speed ({duration_s} s simulated)")
    if shutil.which("ffmpeg") is None:
        ratio.skipped = "ffmpeg not installed: apt-get install ffmpeg"
    scenario = os.path.join(ctx.work_dir, "sim-bench.toml")
    _scenario(scenario, duration_s, pre_event_s)
    # One untimed run of each first: the libraries' pages in the cache, as for every
    # later run (the first ran up to 1.5x slower here).
    _ours(ctx, scenario, -1)
    if ratio.skipped is None:
        _peer(ctx, duration_s)
    for run in range(ctx.repeats):
        absolute.samples.append(duration_s / _ours(ctx, scenario, run))
        if ratio.skipped is None:
            ratio.peer_samples.append(duration_s / _peer(ctx, duration_s))
    if ratio.skipped is None:
        ratio.samples = list(absolute.samples)
    return [ratio, absolute], []
