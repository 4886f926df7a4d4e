"""Throughput figures of the writer path, for the throughput suite.

- `writer_mb_s`: pre-encoded 1080p30 10 Mbit/s packets (video and AAC interleaved in
  time order) fed to a real SegmentWriter on a DirectoryStorage in ctx.work_dir, timed
  from the EventStart put until wait_idle() returns after the EventStop (the close
  syncs); the peer, interleaved run by run, is `age -r RECIPIENT -o OUT IN && sync OUT`
  on the same payload bytes concatenated into one file (written before the clock starts).
  Both in MB/s of payload bytes.
- `firmware_cpu_pct_per_recorded_hour`: the whole firmware on the sim board with
  replayed media (no encoder), process CPU over the recording phase only (after the
  pre-event is durable), as % of one core per recorded hour.
- Series `writer_bytes_per_s`: MB/s made durable over the last writer run, from the
  writer's own DurableMark listener and the segment files' sizes.
"""
from __future__ import annotations

import dataclasses
import math
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid

from device.chainstate import ChainState
from device.config import Policy, load_identity
from device.evidence.audit import AuditLog
from device.firmware import Firmware
from device.states import Event
from device.writer import EventStart, EventStop, SegmentWriter
from hal.dirstorage import DirectoryStorage
from hal.filekeystore import FileKeyStore
from hal.fs import OS_FS, FileSystem
from hal.media import AudioFormat, MediaPacket, VideoFormat
from nacl.signing import SigningKey
from simulator.board import build_sim_board
from simulator.clock import VirtualClock
from simulator.replay import ReplayCamera, ReplayMicrophone, encode_audio_loop, encode_video_loop
from tools.bench.model import BenchContext, Figure, Series
from tools.bench.devices import make_device

HD_10M = VideoFormat(width=1920, height=1080, fps=30, keyframe_interval_s=1.0, bitrate_bps=10_000_000)
AUDIO = AudioFormat()
MB = 1_000_000
UTC_ORIGIN_US = 1_700_000_000_000_000


def packets_for(video: VideoFormat, total_bytes: int | None = None, end_us: int | None = None) -> list[MediaPacket]:
    """Replayed video and AAC packets from time 0, in time order, until `total_bytes` of
    payload or until the first packet starting at or after `end_us`."""
    frames, blocks = encode_video_loop(video), encode_audio_loop(AUDIO)
    frame_us, block_us = 1e6 / video.fps, 1024 * 1e6 / AUDIO.sample_rate_hz
    out: list[MediaPacket] = []
    size = n_video = n_audio = 0
    while True:
        video_at, audio_at = n_video * frame_us, n_audio * block_us
        if (total_bytes is not None and size >= total_bytes) or (end_us is not None and min(video_at, audio_at) >= end_us):
            return out
        if video_at <= audio_at:
            data, key = frames[n_video % len(frames)]
            out.append(MediaPacket("video", data, round(video_at), round(frame_us), key))
            n_video += 1
        else:
            data = blocks[n_audio % len(blocks)]
            out.append(MediaPacket("audio", data, round(audio_at), round(block_us), True))
            n_audio += 1
        size += len(data)


class WriterRig:
    """A real SegmentWriter on a DirectoryStorage, over the kernel's file system (or a
    test's SimFS)."""

    def __init__(self, root: str, device_dir: str, video: VideoFormat, fs: FileSystem = OS_FS) -> None:
        self.storage_dir = os.path.join(root, "storage")
        shutil.rmtree(self.storage_dir, ignore_errors=True)
        self.storage = DirectoryStorage(self.storage_dir, fs)
        keystore = FileKeyStore(device_dir, fs)
        identity = load_identity(device_dir)
        key = SigningKey(keystore.signing_seed())
        chain = ChainState.load(keystore)
        audit = AuditLog(self.storage, key, identity.device_id, chain, lambda: chain.save(keystore))
        self.writer = SegmentWriter(self.storage, keystore, key, identity, chain, audit, video, AUDIO,
                                    Policy(pre_event_s=0, segment_s=3600))
        self.marks: list[tuple[float, int]] = []   # (perf_counter s, bytes on disk)
        self.writer.add_durable_listener(lambda mark: self.marks.append((time.perf_counter(), self._on_disk())))
        self.writer.start()

    def _on_disk(self) -> int:
        return sum(os.path.getsize(os.path.join(self.storage_dir, n)) for n in os.listdir(self.storage_dir))

    def run(self, packets: list[MediaPacket]) -> float:
        """Seconds from the EventStart put until the writer is idle after the EventStop."""
        first, last = packets[0], packets[-1]
        started = time.perf_counter()
        self.writer.put(start_item(first.timestamp_us, [first]))
        for packet in packets[1:]:
            self.writer.put(packet)
        end_us = last.timestamp_us + last.duration_us
        self.writer.put(EventStop("button", end_us, UTC_ORIGIN_US + end_us))
        self.writer.wait_idle()
        elapsed = time.perf_counter() - started
        self.marks.append((time.perf_counter(), self._on_disk()))
        self.started = started
        payload = sum(len(p.data) for p in packets)
        if self.marks[-1][1] < payload:
            raise RuntimeError(f"the writer wrote {self.marks[-1][1]} bytes for {payload} bytes of media: it failed")
        return elapsed

    def close(self) -> None:
        self.writer.close()


def start_item(press_us: int, packets: list[MediaPacket], pre_event_s: float = 0.0) -> EventStart:
    return EventStart(uuid.uuid4().hex, "button", press_us, UTC_ORIGIN_US + press_us, pre_event_s, packets)


def _age_recipient(public_path: str) -> str | None:
    """An X25519 age recipient for the peer (age-keygen's, kept in the work dir)."""
    if shutil.which("age") is None or shutil.which("age-keygen") is None:
        return None
    out = subprocess.run(["age-keygen", "-o", public_path], capture_output=True, text=True, check=True)
    for line in (out.stderr + out.stdout).splitlines():
        if "age1" in line:
            return line[line.index("age1"):].split()[0]
    return None


def _age_run(recipient: str, src: str, dst: str) -> float:
    started = time.perf_counter()
    subprocess.run(f'age -r {recipient} -o "{dst}" "{src}" && sync "{dst}"', shell=True, check=True)
    elapsed = time.perf_counter() - started
    os.unlink(dst)
    return elapsed


def measure_writer_throughput(ctx: BenchContext) -> tuple[Figure, Series]:
    total_bytes = (100 if ctx.reduced else 1000) * MB
    root = tempfile.mkdtemp(prefix="writer-", dir=ctx.work_dir)
    try:
        device_dir, _ = make_device(root)
        packets = packets_for(HD_10M, total_bytes)
        payload_bytes = sum(len(p.data) for p in packets)
        src = os.path.join(root, "payload.bin")
        with open(src, "wb") as f:
            for p in packets:
                f.write(p.data)
        recipient = _age_recipient(os.path.join(root, "age.key"))
        ours, theirs, series = [], [], []
        for repeat in range(ctx.repeats):
            rig = WriterRig(os.path.join(root, "run"), device_dir, HD_10M)
            try:
                elapsed = rig.run(packets)
            finally:
                rig.close()
            ours.append(payload_bytes / elapsed / MB)
            series = _rate_points(rig)
            if recipient is not None:
                theirs.append(payload_bytes / _age_run(recipient, src, os.path.join(root, "age.out")) / MB)
        figure = Figure("writer_mb_s", "MB/s", ours, better="higher",
                        description=f"segment writer on {payload_bytes / MB:.0f} MB of 1080p30 10 Mbit/s "
                                    "packets: mux, encrypt, sign, write, sync",
                        peer="age -r X25519 recipient + sync", peer_samples=theirs or None,
                        skipped=None if recipient is not None else
                        "age not installed (apt-get install age): no peer to compare with")
        return figure, Series("writer_bytes_per_s", "writer: bytes made durable per second", "s", "MB/s", series)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _rate_points(rig: WriterRig) -> list[tuple[float, float]]:
    """(s since the EventStart put, MB/s durable since the previous mark)."""
    points, prev_t, prev_b = [], rig.started, 0
    for t, size in rig.marks:
        if t > prev_t and size >= prev_b:
            points.append((round(t - rig.started, 4), (size - prev_b) / (t - prev_t) / MB))
            prev_t, prev_b = t, size
    return points


def measure_firmware_cpu(ctx: BenchContext, video: VideoFormat = HD_10M, pre_event_s: float = 30.0) -> Figure:
    record_s = 10.0 if ctx.reduced else 60.0
    samples = []
    for repeat in range(ctx.repeats):
        root = tempfile.mkdtemp(prefix="cpu-", dir=ctx.work_dir)
        try:
            samples.append(_firmware_cpu_once(root, video, pre_event_s, record_s))
        finally:
            shutil.rmtree(root, ignore_errors=True)
    return Figure("firmware_cpu_pct_per_recorded_hour", "%", samples, better="lower",
                  description=f"firmware CPU while recording {video.width}x{video.height}@{video.fps} "
                              f"{video.bitrate_bps / 1e6:g} Mbit/s, encoder excluded, % of one core "
                              f"({record_s:g} s recorded per run, after the {pre_event_s:g} s pre-event)")


def _firmware_cpu_once(root: str, video: VideoFormat, pre_event_s: float, record_s: float) -> float:
    device_dir, _ = make_device(root)
    clock = VirtualClock()
    # The kernel's file system, as on a camera: the simulator's SimFS (its power-cut model)
    # is the simulated world's cost, not the firmware's.
    world = build_sim_board(clock, device_dir, os.path.join(device_dir, "storage"), video, fs=OS_FS)
    board = dataclasses.replace(world.board, camera=ReplayCamera(clock, video), microphone=ReplayMicrophone(clock))
    firmware = Firmware(board, load_identity(device_dir), Policy(pre_event_s=pre_event_s, segment_s=60))
    firmware.boot()
    pre_event_durable = threading.Event()
    firmware.writer.add_durable_listener(lambda mark: mark.pre_event_durable and pre_event_durable.set())
    try:
        clock.wait_until(clock.monotonic_us() + round(pre_event_s * 1e6) + 2_000_000)
        for at_us, level in ((0, True), (120_000, False), (270_000, True), (390_000, False)):
            clock.call_at(clock.monotonic_us() + at_us, lambda level=level: world.inputs.set("record", level))
        # The press and the pre-event's write-out are not the recording phase.
        clock.wait_until(clock.monotonic_us() + 2_000_000)
        firmware.writer.wait_idle()
        if not pre_event_durable.is_set():
            raise RuntimeError("the pre-event never became durable: the activation failed")
        # Recorded as in real time, only without the idle waits: one second of media at a
        # time, the writer caught up after each, so it checkpoints once a fragment as it
        # does on a camera. Run flat out instead, the writer falls behind by a varying
        # amount and batches checkpoints (docs/format.md), which no camera does.
        cpu_start = time.process_time()
        start_us = clock.monotonic_us()
        for second in range(1, math.ceil(record_s) + 1):
            clock.wait_until(start_us + round(min(second, record_s) * 1e6))
            firmware.writer.wait_idle()
        cpu_s = time.process_time() - cpu_start
    finally:
        firmware.shutdown()
    return cpu_s / record_s * 100


def measure(ctx: BenchContext) -> tuple[list[Figure], list[Series]]:
    writer, series = measure_writer_throughput(ctx)
    return [writer, measure_firmware_cpu(ctx)], [series]


def probe_activation(ctx: BenchContext, presses: int, pre_event_s: float = 30.0,
                     video: VideoFormat = HD_10M) -> tuple[list[float], list[float]]:
    """Button edge -> first media durable and -> whole pre-event durable, in ms of wall
    time, for `presses` activations at random GOP phases (the activation suite's figures,
    measured here on the kernel's file system to tune the writer). The clock runs in step
    with wall time from just before each press until the pre-event is durable."""
    root = tempfile.mkdtemp(prefix="probe-", dir=ctx.work_dir)
    first_ms, whole_ms = [], []
    try:
        device_dir, _ = make_device(root)
        clock = VirtualClock()
        world = build_sim_board(clock, device_dir, os.path.join(device_dir, "storage"), video, fs=OS_FS)
        board = dataclasses.replace(world.board, camera=ReplayCamera(clock, video),
                                    microphone=ReplayMicrophone(clock))
        firmware = Firmware(board, load_identity(device_dir), Policy(pre_event_s=pre_event_s, segment_s=60))
        firmware.boot()
        marks: list[tuple[float, object]] = []
        firmware.writer.add_durable_listener(lambda mark: marks.append((time.perf_counter(), mark)))
        try:
            for _ in range(presses):
                clock.wait_until(clock.monotonic_us() + round((pre_event_s + 1 + ctx.rng.random()) * 1e6))
                firmware.writer.wait_idle()
                marks.clear()
                edge: list[float] = []
                t0 = clock.monotonic_us()
                for at_us, level in ((0, True), (120_000, False), (270_000, True), (390_000, False)):
                    clock.call_at(t0 + at_us, lambda level=level, at_us=at_us: (
                        world.inputs.set("record", level), at_us == 270_000 and edge.append(time.perf_counter())))
                clock.wait_until(t0 + 260_000)
                wall0, virtual0 = time.perf_counter(), clock.monotonic_us()
                while not any(m.pre_event_durable for _, m in marks) and time.perf_counter() - wall0 < 10:
                    clock.wait_until(virtual0 + round((time.perf_counter() - wall0) * 1e6) + 1_000)
                    time.sleep(0.001)   # paced: the camera delivers in real time here
                durable = [(t, m) for t, m in marks if m.video_end_us is not None]
                whole = [t for t, m in marks if m.pre_event_durable]
                if not edge or not durable or not whole:
                    raise RuntimeError("an activation made nothing durable within 10 s")
                first_ms.append((durable[0][0] - edge[0]) * 1e3)
                whole_ms.append((whole[0] - edge[0]) * 1e3)
                firmware.recorder.handle(Event.STOP_BUTTON, "button")   # the hold, without its 3 s
        finally:
            firmware.shutdown()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return first_ms, whole_ms
