"""The `release` suite: `bwc redact` and `bwc verify-release` on a 1280x720 event, against
ffmpeg doing the nearest same work in the same run (docs/bench.md#release).

The event is recorded on the simulator (1280x720 at 30 fps, one event) and exported, once.
The plan exercises every operation but faces: a blurred region, a tracked region, a muted
span and a cut; a second plan has [faces] alone (the simulator's picture has no face, but
the detector's pass over every frame, the cost, is the same). Ours, each as a process:
- redact: media seconds of the original per wall second. Peer: `ffmpeg` re-encoding the
  same export with the same encoder settings (x264 CRF 16 veryfast, AAC 192 kbit/s) and no
  redaction at all — the floor any redaction tool sits on.
- verify-release: media seconds per wall second, against the export. Peer: `ffmpeg`'s
  `psnr` filter comparing the same two files frame by frame (decoding both, as ours does).
Runs interleaved, ctx.repeats each, after one untimed run of each.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import time

from tools.bench.devices import make_device
from tools.bench.model import BenchContext, Figure, SuiteResult

WIDTH, HEIGHT, FPS = 1280, 720, 30

_SCENARIO = """\
duration_s = {duration_s}
[camera]
width = {width}
height = {height}
fps = {fps}
keyframe_interval_s = 1
[policy]
pre_event_s = 2
segment_s = 60
[[at]]
t_s = 3
do = "button.double_press"
[[at]]
t_s = {stop_s}
do = "button.hold"
"""

_PLAN = """\
version = 1
[release]
released_by = "bench"
reason = "bench"
[[region]]
start_s = 0
end_s = {third_s}
box = [100, 300, 240, 180]
[[region]]
start_s = {third_s}
end_s = {two_thirds_s}
box = [600, 300, 200, 150]
track = true
[[audio]]
start_s = {third_s}
end_s = {half_s}
[[cut]]
start_s = {half_s}
end_s = {cut_end_s}
reason = "bench"
"""


def _run(argv: list[str], ok: tuple[int, ...] = (0,)) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall_s = time.perf_counter() - started
    if done.returncode not in ok:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{' '.join(argv[:4])} exited {done.returncode}: {last}")
    return wall_s


def _bwc(*args: str, ok: tuple[int, ...] = (0,)) -> float:
    return _run([sys.executable, "-m", "openbwc", *args], ok)


def _event(ctx: BenchContext, duration_s: int) -> tuple[str, dict, str]:
    """Record and export one 1280x720 event; returns its MP4, sidecar and the device.pub."""
    root = os.path.join(ctx.work_dir, "release-event")
    shutil.rmtree(root, ignore_errors=True)
    device_dir, custodian_key = make_device(root, "bench-release")
    scenario = os.path.join(root, "scenario.toml")
    with open(scenario, "w") as f:
        f.write(_SCENARIO.format(duration_s=duration_s, width=WIDTH, height=HEIGHT, fps=FPS,
                                 stop_s=duration_s - 2))
    _bwc("run", "--device", device_dir, "--hal", "sim", "--scenario", scenario)
    device_pub = os.path.join(device_dir, "device.pub")
    export = os.path.join(root, "export")
    _bwc("export", os.path.join(device_dir, "storage"), "--key", custodian_key, "--out", export,
         "--device-pub", device_pub)
    mp4 = sorted(glob.glob(os.path.join(export, "event-*.mp4")))[0]
    with open(os.path.splitext(mp4)[0] + ".json", encoding="utf-8") as f:
        return mp4, json.load(f), device_pub


def measure_release(ctx: BenchContext) -> list[Figure]:
    duration_s = 14 if ctx.reduced else 40
    redact = Figure("redact_x_realtime", "x realtime", [], better="higher",
                    description=f"bwc redact, {WIDTH}x{HEIGHT}@{FPS}: a blurred and a tracked region, a mute, a cut",
                    peer="ffmpeg re-encode, same x264 CRF 16 veryfast + AAC 192k, no redaction", peer_samples=[])
    faces = Figure("redact_faces_x_realtime", "x realtime", [], better="higher",
                   description=f"bwc redact with [faces] (the detector over every frame), {WIDTH}x{HEIGHT}@{FPS}",
                   peer="ffmpeg re-encode, same settings, no redaction", peer_samples=[])
    verify = Figure("verify_release_x_realtime", "x realtime", [], better="higher",
                    description=f"bwc verify-release against the export, {WIDTH}x{HEIGHT}@{FPS}",
                    peer="ffmpeg psnr filter over the same two files", peer_samples=[])
    figures = [redact, faces, verify]
    if shutil.which("ffmpeg") is None:
        for figure in figures:
            figure.skipped = "ffmpeg not installed: apt-get install ffmpeg"
        return figures
    mp4, side, device_pub = _event(ctx, duration_s)
    media_s = float(side["media_s"])
    for figure in figures:
        figure.context = {"media_s": media_s, "width": WIDTH, "height": HEIGHT}
    root = os.path.dirname(os.path.dirname(mp4))
    key_dir = os.path.join(root, "release-key")
    _bwc("keygen", "--release", "--out", key_dir)
    plan = os.path.join(root, "plan.toml")
    with open(plan, "w") as f:
        f.write(_PLAN.format(third_s=round(media_s / 3, 2), two_thirds_s=round(media_s * 2 / 3, 2),
                             half_s=round(media_s / 2, 2), cut_end_s=round(media_s / 2 + 2, 2)))
    peer_out = os.path.join(root, "ffmpeg-peer.mp4")
    faces_plan = os.path.join(root, "faces.toml")
    with open(faces_plan, "w") as f:
        f.write('version = 1\n[release]\nreleased_by = "bench"\nreason = "bench"\n[faces]\n')

    def ours_redact(run: int, plan_path: str = plan) -> tuple[float, str]:
        out = os.path.join(root, f"release-{run}")
        shutil.rmtree(out, ignore_errors=True)
        wall_s = _bwc("redact", mp4, "--plan", plan_path, "--release-key", os.path.join(key_dir, "release.key"),
                      "--out", out)
        return wall_s, glob.glob(os.path.join(out, "*.release.mp4"))[0]

    def peer_redact() -> float:
        return _run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", mp4, "-c:v", "libx264", "-crf", "16",
                     "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "192k", peer_out])

    def ours_verify(release: str) -> float:
        # Exit 3: honest against an export (the device's signatures are the storage's to show).
        return _bwc("verify-release", release, "--original", mp4, "--device-pub", device_pub,
                    "--release-pub", os.path.join(key_dir, "release.pub"), ok=(3,))

    def peer_verify(release: str) -> float:
        return _run(["ffmpeg", "-nostdin", "-v", "error", "-i", release, "-i", mp4,
                     "-lavfi", "[0:v][1:v]psnr", "-f", "null", "-"])

    _, release = ours_redact(-1)          # untimed: caches warm, as for every later run
    peer_redact()
    ours_verify(release)
    peer_verify(release)
    for run in range(ctx.repeats):
        wall_s, release = ours_redact(run)
        redact.samples.append(media_s / wall_s)
        redact.peer_samples.append(media_s / peer_redact())
        verify.samples.append(media_s / ours_verify(release))
        verify.peer_samples.append(media_s / peer_verify(release))
        faces.samples.append(media_s / ours_redact(run, faces_plan)[0])
        faces.peer_samples.append(media_s / peer_redact())
    return figures


def run(ctx: BenchContext) -> SuiteResult:
    return SuiteResult("release", figures=measure_release(ctx))
