"""The activation suite: many presses at random phases of the GOP, edge -> indicator and
edge -> media durable measured in wall time from the edge the rig made (docs/bench.md).

Each press is the activation gesture of docs/indicators.md (a double press: the event
starts on the second press, dated at its edge, ACT-1), after a full pre-event (30 s;
reduced 5 s) of 1080p30 10 Mbit/s replayed media; then a hold stops the event and the
buffer refills. On the simulator the clock runs fast while only buffering and in step
with wall time (Prototype.pace) from the first press until the whole pre-event is durable
plus a margin, so the writer meets packets at the real rate.
"""
from __future__ import annotations

import os
import statistics
import threading

from device.config import Policy
from device.evidence.decrypt import decrypt_segment
from device.evidence.keys import read_custodian_secret, read_device_public
from device.evidence.segment_reader import read_header_unverified, verify_segment
from device.writer_health import DurableMark
from hal.inputs import RECORD_BUTTON
from hal.media import VideoFormat
from tools.bench.machine import disk_write_rates_mb_s
from tools.bench.model import BenchContext, Figure, Series, SuiteResult
from tools.bench.rig import RECORD_LED, Prototype

SUITE = "activation"
HD_10M = VideoFormat(width=1920, height=1080, fps=30, keyframe_interval_s=1.0, bitrate_bps=10_000_000)
# The double press (docs/indicators.md): press, release, second press; the second is the edge.
PRESS_1_S, RELEASE_1_S, PRESS_2_S, RELEASE_2_S = 0.0, 0.10, 0.25, 0.35
MARGIN_S = 0.3           # paced on after the whole pre-event is durable and the LED is lit
CHECK_EVERY_NS = 10_000_000
PRESS_TIMEOUT_S = 15.0   # wall; a press that gets no durable pre-event by then is a failed sample


class _Marks:
    """The writer's durable checkpoints, each stamped on arrival in the rig's wall base."""

    def __init__(self, wall_ns) -> None:
        self._wall_ns, self._lock = wall_ns, threading.Lock()
        self.marks: list[tuple[int, DurableMark]] = []

    def __call__(self, mark: DurableMark) -> None:   # the writer thread: quick, never raises
        stamp = self._wall_ns()
        with self._lock:
            self.marks.append((stamp, mark))

    def after(self, wall_ns: int, seen_events: set[str]) -> list[tuple[int, DurableMark]]:
        with self._lock:
            return [(t, m) for t, m in self.marks if t >= wall_ns and m.event_id not in seen_events]


def _event_of(marks: list[tuple[int, DurableMark]]) -> str | None:
    return marks[0][1].event_id if marks else None


def _press_once(proto: Prototype, marks: _Marks, seen: set[str]) -> dict:
    """One activation, paced in wall time; returns the wall ns of what was seen (or None)."""
    rig = proto.rig
    proto.start_pacing()
    began_ns = rig.wall_ns()
    plan = [(PRESS_1_S, rig.press), (RELEASE_1_S, rig.release), (PRESS_2_S, rig.press),
            (RELEASE_2_S, rig.release)]
    edge, checked_ns = None, 0
    while True:
        elapsed_s = (rig.wall_ns() - began_ns) / 1e9
        while plan and elapsed_s >= plan[0][0]:
            at_s, act = plan.pop(0)
            proto.catch_up()
            made = act(RECORD_BUTTON)
            if at_s == PRESS_2_S:
                edge = made
        # Every 10 ms, not every step: the scan copies lists the writer's thread appends to.
        if edge is not None and rig.wall_ns() - checked_ns > CHECK_EVERY_NS:
            checked_ns = rig.wall_ns()
            new = marks.after(edge.wall_ns, seen)
            event_id = _event_of(new)
            whole = next((t for t, m in new if m.event_id == event_id and m.pre_event_durable), None)
            led = rig.first_change(edge.wall_ns, RECORD_LED, on=True)
            if whole is not None and led is not None and rig.wall_ns() - max(whole, led.wall_ns) > MARGIN_S * 1e9:
                break
            if rig.wall_ns() - edge.wall_ns > PRESS_TIMEOUT_S * 1e9:
                break
        proto.pace()
    new = marks.after(edge.wall_ns, seen)
    event_id = _event_of(new)
    mine = [(t, m) for t, m in new if m.event_id == event_id]
    media = next((t for t, m in mine if m.video_end_us is not None or m.audio_end_us is not None), None)
    whole = next((t for t, m in mine if m.pre_event_durable), None)
    first = rig.first_change(edge.wall_ns, on=True)
    led = rig.first_change(edge.wall_ns, RECORD_LED, on=True)
    return {"edge": edge, "event_id": event_id,
            "indicator_ns": None if first is None else first.wall_ns - edge.wall_ns,
            "first_indicator": None if first is None else first.indicator,
            "record_led_ns": None if led is None else led.wall_ns - edge.wall_ns,
            "first_media_ns": None if media is None else media - edge.wall_ns,
            "whole_ns": None if whole is None else whole - edge.wall_ns,
            "activation_us": mine[0][1].activation_monotonic_us if mine else None}


def _stop(proto: Prototype) -> None:
    """A hold stops the event (ACT-1); the next press's fast fill refills the buffer."""
    rig = proto.rig
    rig.press(RECORD_BUTTON)
    proto.fast_forward_us(round(proto.firmware.policy.hold_stop_s * 1e6) + 200_000)
    rig.release(RECORD_BUTTON)
    proto.firmware.writer.wait_idle(60)


def delivered_pre_event(proto: Prototype) -> dict[str, tuple[int, float]]:
    """event_id -> (delivered_pre_event_us, configured pre_event_s), from the activation
    metadata as recorded on the card: each event's first segment, verified and decrypted."""
    secret = read_custodian_secret(proto.custodian_key_path)
    device_key = read_device_public(proto.device_pub_path)
    out: dict[str, tuple[int, float]] = {}
    for name in sorted(os.listdir(proto.storage_dir)):
        path = os.path.join(proto.storage_dir, name)
        with open(path, "rb") as f:
            data = f.read()
        header = read_header_unverified(data)
        if header is None or header.get("event_segment") != 0:
            continue
        report = verify_segment(data, device_key)
        if not report.ok:
            continue
        for record in decrypt_segment(data, report, secret).metadata:
            if record.get("type") == "activation":
                out[header["event_id"]] = (record["delivered_pre_event_us"], record["pre_event_s"])
    return out


def run(ctx: BenchContext) -> SuiteResult:
    presses = 6 if ctx.reduced else ctx.repeats * 4
    pre_event_s = 5.0 if ctx.reduced else 30.0
    result = SuiteResult(SUITE)
    disk_mb_s = getattr(ctx, "disk_write_mb_s", None)   # the harness measures it once per run
    if disk_mb_s:
        result.notes.append(f"disk write rate: {disk_mb_s:.0f} MB/s, the run's (report.json machine)")
    else:
        disk_rates = disk_write_rates_mb_s(ctx.work_dir)
        disk_mb_s = statistics.median(disk_rates)
        result.notes.append(f"disk write rate (4 MiB writes + fsync, 64 MiB, in {ctx.work_dir}): "
                            f"median {disk_mb_s:.0f} MB/s of {', '.join(f'{r:.0f}' for r in disk_rates)}")
    policy = Policy(pre_event_s=pre_event_s, segment_s=60)
    proto = _prototype(ctx, policy)
    pre_event_s = proto.firmware.policy.pre_event_s   # a prototype passed in brings its own
    result.notes.append(f"{presses} double presses, {pre_event_s:g} s pre-event each; edges made by the rig "
                        f"(--hal {ctx.hal}), latencies in {proto.rig.wall_base}")
    marks = _Marks(proto.rig.wall_ns)
    samples: list[dict] = []
    try:
        proto.boot(marks)
        gop_s = proto.board.camera.video_format.keyframe_interval_s
        gop_us, fill_us = round(gop_s * 1e6), round((pre_event_s + gop_s) * 1e6)
        seen: set[str] = set()
        for _ in range(presses):
            # A random phase of the GOP: the press lands anywhere between two keyframes.
            proto.fast_forward_us(fill_us + round(ctx.rng.uniform(0, gop_us)))
            proto.firmware.writer.wait_idle(60)
            sample = _press_once(proto, marks, seen)
            if sample["event_id"] is not None:
                seen.add(sample["event_id"])
            samples.append(sample)
            _stop(proto)
    finally:
        proto.close()
    delivered = delivered_pre_event(proto)
    _figures(result, samples, delivered, proto, disk_mb_s, pre_event_s, ctx.hal)
    return result


def _prototype(ctx: BenchContext, policy: Policy) -> Prototype:
    """The simulator's board (--hal sim), or the Pi board in loopback with a GPIO rig (--hal pi).
    `ctx.rig` may be a GpioRig (wired by hand) or a whole unbooted Prototype (CI passes
    rig_gpio.mock_loopback_prototype's)."""
    if isinstance(ctx.rig, Prototype):
        return ctx.rig
    root = os.path.join(ctx.work_dir, "activation")
    os.makedirs(root, exist_ok=True)
    if ctx.hal == "sim":
        from tools.bench.rig_sim import sim_prototype
        return sim_prototype(root, HD_10M, policy)
    from tools.bench.rig_gpio import loopback_prototype
    return loopback_prototype(root, policy, ctx.rig, config_path=ctx.pi_config)


def _histogram(name: str, title: str, unit: str, values: list[float]) -> Series:
    """One point per press: x its number, y the latency (a histogram plots the y values)."""
    return Series(name, title, "press", unit, [(float(i), v) for i, v in enumerate(values)], "histogram")


def _ms(samples: list[dict], key: str) -> tuple[list[float], int]:
    """Latencies in ms; a press where it never came counts as the press timeout (and is noted)."""
    values = [PRESS_TIMEOUT_S * 1000 if s[key] is None else s[key] / 1e6 for s in samples]
    return values, sum(1 for s in samples if s[key] is None)


def _figures(result: SuiteResult, samples: list[dict], delivered: dict, proto: Prototype,
             disk_mb_s: float, pre_event_s: float, hal: str) -> None:
    pre_event_bytes = []
    for s in samples:
        got = delivered.get(s["event_id"])
        if got is not None and s["activation_us"] is not None:
            pre_event_bytes.append(proto.bytes_between(s["activation_us"] - got[0], s["activation_us"]))
    pre_event_mb = statistics.median(pre_event_bytes) / 1e6 if pre_event_bytes else 0.0
    context = {"disk_write_mb_s": round(disk_mb_s, 1), "pre_event_mb": round(pre_event_mb, 2),
               "presses": len(samples), "pre_event_s": pre_event_s, "hal": hal}
    firsts = sorted({s["first_indicator"] for s in samples if s["first_indicator"]})
    rows = [("edge_to_indicator_ms", "indicator_ns",
             f"edge -> first indicator change the wearer feels or sees ({', '.join(firsts) or 'none'})"),
            ("edge_to_record_led_ms", "record_led_ns", "edge -> record LED on (informational)"),
            ("edge_to_first_media_durable_ms", "first_media_ns", "edge -> first media of the event durable")]
    for name, key, description in rows:
        values, missing = _ms(samples, key)
        result.figures.append(Figure(name, "ms", values, "lower", description, context=dict(context)))
        result.series.append(_histogram(name, description, "ms", values))
        if missing:
            result.notes.append(f"{name}: {missing} of {len(samples)} presses saw nothing within "
                                f"{PRESS_TIMEOUT_S:g} s (counted as {PRESS_TIMEOUT_S:g} s)")
    excess = []
    for s in samples:
        got = delivered.get(s["event_id"])
        whole_ms = PRESS_TIMEOUT_S * 1000 if s["whole_ns"] is None else s["whole_ns"] / 1e6
        mb = (proto.bytes_between(s["activation_us"] - got[0], s["activation_us"]) / 1e6
              if got is not None and s["activation_us"] is not None else pre_event_mb)
        excess.append(whole_ms - mb / disk_mb_s * 1000)
    description = "edge -> whole pre-event durable, minus its bytes / the measured disk write rate"
    result.figures.append(Figure("pre_event_durable_excess_ms", "ms", excess, "lower", description,
                                 context=dict(context)))
    result.series.append(_histogram("pre_event_durable_excess_ms", description, "ms", excess))
    excess_s = [delivered[s["event_id"]][0] / 1e6 - delivered[s["event_id"]][1]
                for s in samples if s["event_id"] in delivered]
    if len(excess_s) < len(samples):
        result.notes.append(f"delivered pre-event: {len(samples) - len(excess_s)} of {len(samples)} presses "
                            f"have no activation record on the card")
    for name, better in (("delivered_pre_event_excess_s", "higher"), ("delivered_pre_event_excess_s_max", "lower")):
        result.figures.append(Figure(name, "s", list(excess_s), better,
                                     "delivered pre-event minus configured, per press", context=dict(context),
                                     skipped=None if excess_s else "no event reached the card"))
