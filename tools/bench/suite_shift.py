"""The `shift` suite: an 8-hour virtual shift (reduced: 10 minutes) of the whole firmware on
the simulator, in-process, on replay parts (1080p30 10 Mbit/s, distinct payloads), driven
by a scenario file (docs/scenarios.md): buffering, several events with a marker each, a
camera cord pulled and put back, a card near full, the battery draining.

Figures: rss_growth_mib (RSS at the end minus RSS after the first event: flat means no
leak), cpu_pct_per_hour (this process's CPU per hour of shift, as % of one core: the
firmware plus the replay parts and the simulated card), timestamp_drift_us (per exported
event, the worst of: a video frame's timestamp in the footage against the instant it was
captured — read back from the counter in each frame — and the A/V offset of the audio
against the video). Series: RSS, CPU, A/V offset and bytes written per second over time.
"""
from __future__ import annotations

import json
import os
import time

import av

from device.config import load_identity, load_policy
from device.evidence.keys import read_custodian_secret, read_device_public
from simulator.clock import VirtualClock
from simulator.replay import packet_counter, replay_board
from simulator.runner import run_scenario
from simulator.scenario import parse_scenario
from tools.bench.memory_child import status_kib
from tools.bench.model import BenchContext, Figure, Series, SuiteResult
from tools.export import export_events
from tools.provision import keygen, provision

BITRATE_BPS = 10_000_000


def shift_toml(duration_s: float, events: int, event_s: float, cord_s: float) -> str:
    """Events spread over the shift, each with a marker and a 3 s hold to stop; the cord
    pulled in the second; the card near full for the last: room for its 30 s pre-event and
    half the event, so the card fills mid-event and the event closes cleanly. (A card with
    less room than the pre-event crashed main's writer inside the pre-event hand-over:
    fixed on the writer's branch, issue 10.)"""
    lines = [f"duration_s = {duration_s}", "", "[camera]", "width = 1920", "height = 1080", "fps = 30",
             "keyframe_interval_s = 1", f"bitrate_bps = {BITRATE_BPS}", "constant_bitrate = true", "",
             "[policy]", "pre_event_s = 30", "segment_s = 60"]

    def at(t_s: float, do: str, **keys) -> None:
        lines.extend(["", "[[at]]", f"t_s = {t_s:.3f}", f'do = "{do}"']
                     + [f"{k} = {json.dumps(v)}" for k, v in keys.items()])
    at(1, "battery.set", percent=100)
    at(1, "battery.drain", rate_pct_per_min=0.15)   # 100 % -> 28 % over 8 h: low, never critical
    for k in range(events):
        t = duration_s * (k + 0.5) / events
        if k == events - 1:
            at(t - 5, "storage.fill", free_bytes=int(BITRATE_BPS / 8 * (30 + event_s / 2)))
        at(t, "button.double_press")
        at(t + event_s / 3, "button.press")
        if k == 1:
            at(t + event_s / 2, "camera.disconnect")
            at(t + event_s / 2 + cord_s, "camera.reconnect")
        at(t + event_s, "button.hold", hold_s=3)
        if k == events - 1:
            at(t + event_s + 10, "storage.heal")
    return "\n".join(lines) + "\n"


def _storage_bytes(storage: str) -> int:
    try:
        return sum(e.stat().st_size for e in os.scandir(storage) if e.is_file())
    except OSError:
        return 0


def _footage_errors(mp4_path: str, origin_us: int, camera, microphone, t0_us: int) -> tuple[list, float]:
    """(A/V offset points (shift h, µs), worst |timestamp error| µs) of one exported event.
    Video: origin + pts against the capture instant of the counter in the frame. Audio: its
    pts against the microphone's capture grid (1024 samples), folded to +-half a block."""
    period_a = 1024 * 1e6 / 48_000
    video: list[tuple[int, int]] = []    # (claimed capture µs, error µs)
    audio: list[tuple[int, float]] = []
    with av.open(mp4_path) as container:
        for packet in container.demux():
            if packet.pts is None or not packet.size:
                continue
            claimed = origin_us + round(packet.pts * packet.time_base * 1e6)
            if packet.stream.type == "video":
                slot = packet_counter(bytes(packet))
                if slot is not None:
                    video.append((claimed, claimed - camera.capture_us(slot)))
            elif packet.stream.type == "audio":
                base_t0 = max((t for _, t in microphone.starts if t <= claimed), default=microphone.starts[0][1])
                phase = (claimed - base_t0) % period_a
                audio.append((claimed, phase if phase <= period_a / 2 else phase - period_a))
    worst = max((abs(e) for _, e in video), default=0.0)
    points, j = [], 0
    for claimed, err_a in audio[::47]:   # about one point per second of media
        while j + 1 < len(video) and video[j + 1][0] <= claimed:
            j += 1
        if video:
            offset = err_a - video[j][1]
            points.append(((claimed - t0_us) / 3.6e9, offset))
            worst = max(worst, abs(offset))
    return points, worst


def run(ctx: BenchContext) -> SuiteResult:
    duration_s, events, event_s, cord_s = (600, 3, 30, 5) if ctx.reduced else (8 * 3600, 8, 120, 20)
    sample_every_us = (10 if ctx.reduced else 60) * 1_000_000
    secret_path, public = keygen(os.path.join(ctx.work_dir, "custodian"))
    device_dir = os.path.join(ctx.work_dir, "device")
    device_pub = provision("shift-cam", [public], device_dir)
    storage = os.path.join(device_dir, "storage")
    scenario = parse_scenario(shift_toml(duration_s, events, event_s, cord_s), "<shift suite>")
    policy = scenario.apply_policy(load_policy(os.path.join(device_dir, "policy.toml")))
    clock = VirtualClock()
    t0_us = clock.monotonic_us()
    first_stop_us = t0_us + round((duration_s * 0.5 / events + event_s + 10) * 1e6)
    samples: list[tuple[float, float, float, int]] = []   # (shift s, RSS MiB, CPU s, storage bytes)

    def sample() -> None:
        now = clock.monotonic_us()
        samples.append(((now - t0_us) / 1e6, (status_kib("VmRSS") or 0) / 1024, time.process_time(),
                        _storage_bytes(storage)))
        clock.call_at(now + sample_every_us, sample)

    clock.call_at(t0_us, sample)
    # Both while buffering with a full pre-event, the firmware running: like for like.
    rss_after_first: list[float] = []
    rss_at_end: list[float] = []
    clock.call_at(first_stop_us, lambda: rss_after_first.append((status_kib("VmRSS") or 0) / 1024))
    clock.call_at(t0_us + round((duration_s - 2) * 1e6), lambda: rss_at_end.append((status_kib("VmRSS") or 0) / 1024))
    cpu_start = time.process_time()
    result = run_scenario(scenario, load_identity(device_dir), policy, device_dir, storage, clock=clock,
                          build_board=replay_board(distinct_payloads=True))
    cpu_s = time.process_time() - cpu_start
    end_us = clock.monotonic_us()
    rss_end = rss_at_end[0]
    if result.firmware.failure is not None:
        raise RuntimeError(f"the firmware failed during the shift: {result.firmware.failure!r}")
    camera, microphone = result.world.camera.replayer, result.world.microphone.replayer
    newest_us = camera.capture_us(camera.starts[-1][0] + camera._n - 1) if camera.starts else end_us

    exported = export_events(storage, read_custodian_secret(secret_path), read_device_public(device_pub),
                             os.path.join(ctx.work_dir, "export"), True)
    offsets, drift = [], []
    for ev in exported.exported:
        with open(ev.sidecar_path, encoding="utf-8") as f:
            origin_us = json.load(f)["origin_monotonic_us"]
        points, worst = _footage_errors(ev.mp4_path, origin_us, camera, microphone, t0_us)
        offsets += points
        drift.append(float(worst))

    hours = duration_s / 3600
    slices = 8 if not ctx.reduced else 5
    per_slice = []
    for k in range(slices):   # CPU of each slice of the shift, so the figure has a spread
        lo, hi = duration_s * k / slices, duration_s * (k + 1) / slices
        inside = [s for s in samples if lo <= s[0] <= hi]
        if len(inside) >= 2:
            per_slice.append((inside[-1][2] - inside[0][2]) / (inside[-1][0] - inside[0][0]) * 100)
    context = {"shift_s": duration_s, "events": events, "event_s": event_s, "exported_events": len(exported.exported),
               "not_exported": [e.event_id for e in exported.not_exported], "cpu_s_total": round(cpu_s, 2),
               "end_lag_us": end_us - newest_us, "video": "1920x1080@30 10 Mbit/s CBR replay, distinct payloads"}
    suite = SuiteResult("shift", notes=[f"{len(exported.exported)} events exported of {events}; "
                                        f"{cpu_s:.1f} s CPU for {hours:g} h of shift"])
    suite.figures = [
        Figure("rss_growth_mib", "MiB", [rss_end - (rss_after_first or [rss_end])[0]], context=context,
               description="RSS 2 s before the shift ends minus RSS 10 s after its first event (both buffering)"),
        Figure("cpu_pct_per_hour", "% of a core", per_slice or [cpu_s / duration_s * 100], context=context,
               description="process CPU per hour of shift (one sample per slice of the shift)"),
        Figure("timestamp_drift_us", "µs", drift, context=context,
               description="per event: worst |footage timestamp - capture instant| and |A/V offset|",
               skipped=None if drift else "no event exported"),
    ]
    xs = [s[0] / 3600 for s in samples]
    suite.series = [
        Series("shift_rss_mib", "RSS over the shift", "shift h", "MiB", [(x, s[1]) for x, s in zip(xs, samples)]),
        Series("shift_cpu_pct", "CPU over the shift", "shift h", "% of a core",
               [(xs[i], (samples[i][2] - samples[i - 1][2]) / (samples[i][0] - samples[i - 1][0]) * 100)
                for i in range(1, len(samples))]),
        Series("shift_av_offset_us", "A/V offset in the footage", "shift h", "µs", offsets),
        Series("shift_bytes_per_s", "bytes written per second", "shift h", "MB/s",
               [(xs[i], max(0, samples[i][3] - samples[i - 1][3]) / (samples[i][0] - samples[i - 1][0]) / 1e6)
                for i in range(1, len(samples))]),
    ]
    return suite
