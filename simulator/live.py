"""The simulator driven live (SIM-4, docs/sim-live.md): the whole firmware on the simulated
board, in real time, with controls applied as they come and everything it shows observable.

One run: a device across its boots (simulator/runner.py's _Device: the same world, power
cuts and restores as a scenario), a trace of what the simulated parts did, the audit log
tailed from the card, and the log of applied controls that becomes a scenario file
(simulator/live_log.py). Every control runs as a clock callback, so the world is changed
from one thread at a time, exactly as a scenario's steps are; on a RealClock a pump
thread runs the callbacks, on a VirtualClock (tests) whoever advances the clock does.
"""
from __future__ import annotations

import os
import threading

import numpy as np
from nacl.signing import VerifyKey

from device.config import Identity, Policy
from device.evidence.audit_lines import audit_file_number, parse_line, split_lines
from device.states import State
from hal.clock import Clock
from hal.inputs import RECORD_BUTTON
from hal.realclock import RealClock
from simulator.live_log import ActionLog, NotNow, StepError, UnknownPod, parse_live_step
from simulator.runner import _Device, _schedule
from simulator.scenario import DEFAULT_VIDEO, MAX_DURATION_S, Scenario
from simulator.simfs import SimFS
from simulator.trace import Trace
from simulator.wallclock import SteppableWallClock

PUMP_SLICE_US = 200_000   # how often the pump looks whether the run has ended


class LiveError(Exception):
    """A control that cannot be applied: `status` is the HTTP status it maps to."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _LiveDevice(_Device):
    """The runner's device, handing each boot's speaker the run's list of sounds."""

    clips: list[tuple[np.ndarray, int]]

    def boot(self) -> None:
        super().boot()
        world = self.instances[-1].world
        if world is not None:
            world.board.speaker.clips = self.clips


class LiveSim:
    def __init__(self, identity: Identity, policy: Policy, device_dir: str, storage_dir: str | None = None,
                 source_path: str | None = None, pods: tuple[str, ...] = (), triggers: tuple[str, ...] = (),
                 clock: Clock | None = None, video=DEFAULT_VIDEO) -> None:
        self.identity, self.policy = identity, policy
        self.device_dir = device_dir
        self.storage_dir = os.path.abspath(storage_dir or os.path.join(device_dir, "storage"))
        self._base_clock = clock if clock is not None else RealClock()
        self.clock = SteppableWallClock(self._base_clock)
        self.trace = Trace()
        self.trace.use_clock(self.clock)
        self.scenario = Scenario(duration_s=MAX_DURATION_S, video=video, pods=tuple(pods), source="<live>")
        self.fs = SimFS()
        device = self.device = _LiveDevice(self.clock, self.fs, self.scenario, identity, policy, device_dir,
                                           self.storage_dir, source_path, self.trace)
        device.clips = []
        # Trigger inputs exist when named (docs/scenarios.md): the policy's and --trigger's.
        device.triggers = tuple(sorted(set(device.triggers) | set(triggers)))
        self._lock = threading.Lock()   # the action log and input levels, across HTTP threads
        self._levels = {name: False for name in (RECORD_BUTTON, *device.triggers)}
        self._audit: list[dict] = []
        self._trace_lines: list[dict] = []
        self._trace_read = self._speaker_lines = 0
        self._audit_read: dict[str, int] = {}   # audit file -> bytes read so far
        self._audit_lock = threading.Lock()
        self._verify_key = VerifyKey(identity.device_public_key)
        self.ended_us: int | None = None
        device.boot()
        self.start_us = self._base_clock.monotonic_us()
        self.trace.origin_us = self.start_us
        self.log = ActionLog(self.scenario, self.start_us)
        self._stop = threading.Event()
        self._pump: threading.Thread | None = None
        if isinstance(self._base_clock, RealClock):
            self._pump = threading.Thread(target=self._run_pump, name="bwc-sim-clock", daemon=True)
            self._pump.start()

    # -- time ----------------------------------------------------------------------------
    def _run_pump(self) -> None:
        while not self._stop.is_set():
            self._base_clock.wait_until(self._base_clock.monotonic_us() + PUMP_SLICE_US)

    def now_s(self) -> float:
        end_us = self.ended_us if self.ended_us is not None else self._base_clock.monotonic_us()
        return round((end_us - self.start_us) / 1e6, 6)

    @property
    def ended(self) -> bool:
        return self.ended_us is not None

    # -- controls ------------------------------------------------------------------------
    def step(self, body: object) -> dict:
        """Apply one scenario step now (POST /api/step)."""
        self._running()
        with self._lock:
            t_s = self.log.t_s(self._base_clock.monotonic_us())
            try:
                step = parse_live_step(body, t_s, tuple(self.device.pods))
            except StepError as exc:
                raise LiveError(404 if isinstance(exc, UnknownPod) else 400, str(exc)) from None
            if step.action.startswith("trigger.") and step.name not in self._levels:
                raise LiveError(400, f"{step.action}: no trigger input {step.name!r} "
                                     f"(inputs: {', '.join(n for n in self._levels if n != RECORD_BUTTON) or 'none'}; "
                                     f"start bwc sim with --trigger {step.name})")
            try:
                self.log.add(step)
            except NotNow as exc:
                raise LiveError(409, str(exc)) from None
            if step.action.startswith("trigger."):
                self._levels[step.name] = step.action == "trigger.on"
            _schedule(self.device, self.clock, self.start_us, step)
        return {"t_s": t_s}

    def input(self, body: object) -> dict:
        """One raw edge of an input, now (POST /api/input): the record button's contact
        as the page's mouse or space bar makes it, or a trigger line."""
        self._running()
        if not isinstance(body, dict) or set(body) != {"name", "active"}:
            raise LiveError(400, 'an input edge is {"name": INPUT, "active": true|false}')
        name, active = body["name"], body["active"]
        if not isinstance(active, bool):
            raise LiveError(400, f"active must be true or false, got {active!r}")
        with self._lock:
            if not isinstance(name, str) or name not in self._levels:
                raise LiveError(400, f"no input {name!r} (inputs: {', '.join(self._levels)})")
            at_us = self._base_clock.monotonic_us()
            t_s = self.log.t_s(at_us)
            if self._levels[name] == active:
                return {"t_s": t_s, "applied": False}
            self._levels[name] = active
            self.log.edge(name, active, at_us)
            self.clock.call_at(at_us, lambda: self.device.set_input(name, active, at_us))
        return {"t_s": t_s, "applied": True}

    def end(self) -> dict:
        """End the run as a scenario ends: a running event closes, the firmware shuts down."""
        with self._lock:
            self._running()
            self.ended_us = self._base_clock.monotonic_us()
            # A contact still closed is let go at the end, as the saved scenario has it.
            self.log.end(self.ended_us)
        self._stop.set()
        if self._pump is not None:
            self._pump.join()
        self.device.finish()
        self.poll()
        return {"t_s": self.now_s()}

    def close(self) -> None:
        """End the run if it is still going (the server's shutdown)."""
        if not self.ended:
            self.end()

    def _running(self) -> None:
        if self.ended:
            raise LiveError(409, "the run has ended")

    # -- what it shows -------------------------------------------------------------------
    def status(self) -> dict:
        # After the end the camera is shut down and the world stands still: nothing is on.
        inst = None if self.ended else self.device.live
        out = {"t_s": self.now_s(), "run": "ended" if self.ended else "running", "powered": inst is not None,
               "state": "off", "record_led": False, "status_led": False, "faults": [],
               "pre_event_s": self.policy.pre_event_s, "pre_event_held_s": 0.0,
               "segment": None, "event_id": None, "committed_age_ms": None,
               "battery_pct": round(self.device.battery.level_pct(), 2), "battery_min": None,
               "storage_min": None, "camera_connected": self.device.camera_connected,
               "mic_failed": self.device.mic_failed, "utc_us": self.clock.wall_time_us(),
               "inputs": dict(self._levels),
               "pods": {pod_id: {"shown": None, "colour": None} if self.ended else
                        {"shown": pod.app.shown,
                         "colour": pod.board.led_history[-1][1] if pod.board.led_history else None}
                        for pod_id, pod in self.device.pods.items()}}
        if inst is None:
            return out
        firmware, world = inst.firmware, inst.world
        leds = world.indicators.led_state
        out["record_led"], out["status_led"] = leds.get("record", False), leds.get("status", False)
        recorder, monitor = firmware.recorder, firmware.monitor
        if recorder is not None:
            out["state"] = recorder.state.value if recorder.state is not State.SHUTDOWN else "off"
            out["pre_event_held_s"] = round(recorder.pre_event_held_us() / 1e6, 3)
        if monitor is not None:
            beacon = monitor.pod_status()
            out["faults"] = beacon["faults"]
            out["committed_age_ms"] = beacon["committed_age_ms"]
            minutes = monitor.battery_minutes_left()
            out["battery_min"] = None if minutes is None or not 0 <= minutes < 1e7 else round(minutes, 1)
            try:
                out["storage_min"] = round(monitor.storage_minutes_left(world.board.storage.free_bytes()), 1)
            except OSError:
                pass   # a failing card: the faults say so
        segment = firmware.writer.open_segment() if firmware.writer is not None else None
        if segment is not None:
            out["event_id"], out["segment"] = segment
        return out

    def picture(self) -> tuple[np.ndarray, int] | None:
        """The newest yuv420p picture the camera delivered, and its capture time, monotonic
        µs (None before the first one; the last one stays while the cord is pulled)."""
        for inst in reversed(self.device.instances):
            camera = inst.world.camera if inst.world is not None else None
            if camera is not None and camera.last_picture is not None:
                # One read of each: the camera's thread may deliver the next meanwhile.
                picture, at_us = camera.last_picture, camera.last_picture_us
                return picture, at_us
        return None

    def speaker_clip(self, index: int) -> tuple[np.ndarray, int] | None:
        clips = self.device.clips
        return clips[index] if 0 <= index < len(clips) else None

    def poll(self) -> None:
        """Take in what happened since the last poll: the trace's new lines (a speaker line
        gets the path of its sound) and the audit files' new lines."""
        with self._audit_lock:
            lines, self._trace_read = self.trace.since(self._trace_read)
            for line in lines:
                if line["kind"] == "speaker":
                    line["clip"] = f"/api/speaker/{self._speaker_lines}.wav"
                    self._speaker_lines += 1
                self._trace_lines.append(line)
        self.poll_audit()

    def feed(self, cursor: tuple[int, int, int]) -> tuple[list[tuple[str, dict]], tuple[int, int, int]]:
        """(kind, message) for everything after `cursor` (trace, audit, step counts seen),
        and the cursor to ask from next; (0, 0, 0) is everything so far."""
        trace_i, audit_i, step_i = cursor
        with self._audit_lock:
            trace, audit = self._trace_lines[trace_i:], self._audit[audit_i:]
            cursor = (len(self._trace_lines), len(self._audit))
        with self._lock:
            steps, step_end = self.log.entries_since(step_i)
        messages = [("trace", line) for line in trace] + [("audit", entry) for entry in audit] + \
                   [("step", entry) for entry in steps]
        return messages, (*cursor, step_end)

    def poll_audit(self) -> None:
        """Read what the firmware appended to the card's audit files since the last poll:
        whole lines only (a line being written waits for its newline). The files are read
        as they are on the disk under the SimFS: what was written, durable or not yet."""
        with self._audit_lock:
            try:
                names = sorted(n for n in os.listdir(self.storage_dir) if audit_file_number(n) is not None)
            except OSError:
                return
            for name in names:
                done = self._audit_read.get(name, 0)
                try:
                    with open(os.path.join(self.storage_dir, name), "rb") as f:
                        size = os.fstat(f.fileno()).st_size
                        f.seek(done)
                        data = f.read()
                except OSError:
                    continue
                if size < done:
                    # A power cut took back what was never durable (SimFS): read on from
                    # its new end. Lines already shown stay shown, as a person saw them.
                    self._audit_read[name] = size
                    continue
                lines, rest = split_lines(data)
                self._audit_read[name] = done + len(data) - len(rest)
                for line in lines:
                    self._audit.append(self._audit_entry(name, line))

    def _audit_entry(self, name: str, line: bytes) -> dict:
        entry = parse_line(line, self._verify_key)
        if entry is None:
            return {"file": name, "verified": False, "line": line[:200].decode("utf-8", "replace")}
        fields = {k: v for k, v in entry.items() if k not in ("n", "type", "monotonic_us", "utc_us", "prev")}
        at_us = entry.get("monotonic_us")
        return {"file": name, "verified": True, "n": entry.get("n"), "type": entry.get("type"),
                "t_s": round((at_us - self.start_us) / 1e6, 3) if isinstance(at_us, int) else None,
                "fields": fields}

    def scenario_text(self) -> str:
        with self._lock:
            end_us = self.ended_us if self.ended_us is not None else self._base_clock.monotonic_us()
            return self.log.to_toml(end_us)

