"""Runs the whole firmware on the simulator through a scenario (SIM-2, SIM-3).

A scenario is one device's life. Storage and key store sit on one SimFS for the whole
run. `power.cut` pulls the battery in-process: SimFS rolls the directories back to
what was durable, and the firmware instance is abandoned where it stands (no
shutdown; its clock domain goes dark, its threads die at their next storage
operation). `power.restore` boots a fresh instance, with fresh simulated parts, on the
same clock, device directory and SimFS, like a battery put back.

The world outside the firmware lasts the whole run: one battery (simulator/battery.py),
one wall clock that clock.jump / clock.set step (simulator/wallclock.py), and a camera
cord pulled or a microphone failed while the device runs stays so across a reboot,
until the step that undoes it. A trace (simulator/trace.py) hears every instance.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from device.announce_assets import load_assets
from device.config import Identity, Policy
from device.firmware import Firmware
from device.group import MemberRecord
from device.link.frame import Pairing
from device.podlink import PAIRINGS_RECORD, load_pairings, pairings_record
from hal.filekeystore import FileKeyStore
from pod import pairing as pod_pairing
from hal.clock import Clock
from hal.inputs import RECORD_BUTTON
from hal.realclock import RealClock
from simulator.battery import SimBattery
from simulator.board import SimWorld, build_sim_board
from simulator.clock import VirtualClock
from simulator.ether import SimEther
from simulator.sim_pod import SimPod
from simulator.power import PowerDomain
from simulator.scenario import Scenario, Step
from simulator.simfs import PowerLost, SimFS
from simulator.trace import Trace
from simulator.wallclock import SteppableWallClock

CATCH_UP_TIMEOUT_S = 10.0   # real seconds
PRESS_US = 120_000          # a deliberate tap
DOUBLE_PRESS_GAP_US = 150_000


@dataclass
class Instance:
    """One boot of the firmware, from power-on to shutdown or power cut.

    `world` and `firmware` are None only if power or storage failed while the board was
    being built (creating the storage directory), before a firmware existed.
    """
    power: PowerDomain
    boot_us: int
    world: SimWorld | None = None
    firmware: Firmware | None = None
    booted: bool = False                 # boot() returned: its writer thread was started
    error: BaseException | None = None   # a storage error raised by building, boot() or shutdown() itself
    power_lost_us: int | None = None     # when its power was cut; None: it ran to the end

    @property
    def failure(self) -> BaseException | None:
        return (self.firmware.failure if self.firmware is not None else None) or self.error


@dataclass
class RunResult:
    instances: list[Instance]   # every firmware instance booted, in order
    simfs: SimFS
    start_us: int
    end_us: int
    battery: SimBattery | None = None   # the one cell, across every boot
    trace: Trace | None = None
    pods: dict = None                   # pod id -> SimPod (simulator/sim_pod.py)

    @property
    def firmwares(self) -> list[Firmware]:
        return [i.firmware for i in self.instances if i.firmware is not None]

    @property
    def worlds(self) -> list[SimWorld]:
        return [i.world for i in self.instances if i.world is not None]

    @property
    def firmware(self) -> Firmware:
        """The last firmware instance (the only one unless the scenario restores power)."""
        return self.firmwares[-1]

    @property
    def world(self) -> SimWorld:
        return self.worlds[-1]

    @property
    def powered_at_end(self) -> bool:
        return self.instances[-1].power_lost_us is None


def group_node(node: str) -> str:
    """A camera's group radio on the ether, beside its pod radio `node`."""
    return node + "/group"


def _seconds(t_s: float) -> int:
    return round(t_s * 1_000_000)


class _Device:
    """The device across its boots: which instance has power, and the steps that reach it."""

    def __init__(self, clock: SteppableWallClock, fs: SimFS, scenario: Scenario, identity: Identity,
                 policy: Policy, device_dir: str, storage_dir: str, source_path: str | None,
                 trace: Trace | None = None, ether: SimEther | None = None, node: str = "camera",
                 group: MemberRecord | None = None, group_peers: tuple[str, ...] = (),
                 pods: tuple[str, ...] | None = None, build_board=build_sim_board) -> None:
        """`ether`, `node`: the radio world this camera is in and its name there (a world of
        several cameras shares one, simulator/world.py); `group`, `group_peers`: its group
        membership and the nodes its starts go to; `pods`: its paired pods (default: the
        scenario's)."""
        self.clock, self.fs, self.scenario = clock, fs, scenario
        self.identity, self.policy = identity, policy
        self.device_dir, self.storage_dir, self.source_path = device_dir, os.path.abspath(storage_dir), source_path
        self.triggers = tuple(sorted(set(scenario.trigger_names) | set(policy.triggers)))
        self.instances: list[Instance] = []
        self.trace = trace
        self.battery = SimBattery(clock, state_source=self._battery_state)
        # World faults that outlive a boot (set by a step that reached a live instance).
        self.camera_connected = True
        self.mic_failed = False
        self._reaped: set[int] = set()   # ids of abandoned instances whose writer has been stopped
        fs.add_power_listener(self._on_power_lost)
        self.pod_ids = scenario.pods if pods is None else pods
        self.ether = ether if ether is not None else SimEther(clock) if self.pod_ids else None
        self.node, self.group, self.group_peers = node, group, tuple(group_peers)
        self.build_board = build_board   # build_sim_board, or simulator/replay.py's replay_board
        self.pods: dict[str, SimPod] = {}
        if self.pod_ids:
            self._pair_pods()

    def _pair_pods(self) -> None:
        """The scenario's pods: paired already (`bwc pod pair`), or paired now, on this card's
        key store, like a provisioning station would before the shift."""
        keystore = FileKeyStore(self.device_dir, self.fs)
        pairings = {p.pod_id: p for p in load_pairings(keystore)}
        missing = [pod_id for pod_id in self.pod_ids if pod_id not in pairings]
        if missing:
            for pod_id in missing:
                pairings[pod_id] = Pairing(pod_id, os.urandom(32))
            keystore.write_record(PAIRINGS_RECORD, pairings_record(list(pairings.values())))
        for pod_id in self.pod_ids:
            # The address in the pod's record is the ether's camera node (a port for the form).
            text = pod_pairing.record_text(pod_id, pairings[pod_id].secret, self.identity.device_id,
                                           self.node + ":4770", self.policy.gesture_timings())
            self.pods[pod_id] = SimPod(self.clock, self.ether, pod_id, text, self.node, self.trace)

    @property
    def live(self) -> Instance | None:
        """The instance that has power and booted, if any."""
        inst = self.instances[-1] if self.instances else None
        return inst if inst is not None and inst.booted and inst.power.on else None

    def boot(self) -> None:
        power = PowerDomain(self.clock)
        inst = Instance(power, self.clock.monotonic_us())
        self.instances.append(inst)
        # Recorded first, so what the boot itself shows (the status LED) follows it.
        line = {} if self.trace is None else self.trace.record("boot", inst.boot_us, boot=len(self.instances))
        try:
            inst.world = self.build_board(power, self.device_dir, self.storage_dir, self.scenario.video,
                                         self.triggers, self.source_path,
                                         constant_bitrate=self.scenario.constant_bitrate, fs=self.fs,
                                         battery=self.battery, trace=self.trace,
                                         radio=None if self.ether is None
                                         else self.ether.endpoint(self.node, power),
                                         group_radio=None if self.ether is None or self.group is None
                                         else self.ether.endpoint(group_node(self.node), power))
            self._apply_world_faults(inst.world)
            inst.firmware = Firmware(inst.world.board, self.identity, self.policy,
                                     assets=load_assets(self.device_dir, self.policy.announce_languages),
                                     group=self.group, group_peers=self.group_peers)
            inst.firmware.boot()
            inst.booted = True
            self._attach(inst)
        except PowerLost:
            pass   # cut while booting: _on_power_lost has marked it
        except OSError as exc:  # the card failed under boot's own writes: this boot goes no further
            inst.error = exc
            power.cut()
        line.update(booted=inst.booted, state=inst.firmware.recorder.state.value if inst.booted else None)

    def _apply_world_faults(self, world: SimWorld) -> None:
        """Before the firmware starts them: a pulled cord or a failed microphone is still so."""
        if not self.camera_connected:
            world.camera.disconnect()
        if self.mic_failed:
            world.microphone.fail()

    def _attach(self, inst: Instance) -> None:
        """Listen to the booted firmware's recorder: the battery drains by its state, the
        trace shows each change."""
        recorder = inst.firmware.recorder

        def on_state(old, new, monotonic_us: int) -> None:
            self.battery.state_changed(monotonic_us)
            if self.trace is not None:
                self.trace.record("state", monotonic_us, **{"from": old.value, "to": new.value})

        recorder.state_listeners.append(on_state)
        self.battery.state_changed()   # off -> buffering: the board draws current from now

    def _battery_state(self) -> str:
        inst = self.live
        recorder = inst.firmware.recorder if inst is not None else None
        state = recorder.state.value if recorder is not None else "off"
        return state if state in ("buffering", "recording") else "off"

    def _on_power_lost(self) -> None:
        # Runs on whichever thread met the cut (a clock callback or the writer).
        inst = self.instances[-1] if self.instances else None
        if inst is not None and inst.power_lost_us is None:
            inst.power_lost_us = self.clock.monotonic_us()
            inst.power.cut()
            self.battery.state_changed(inst.power_lost_us)   # pulled: no load
            if self.trace is not None:
                self.trace.record("power", inst.power_lost_us, on=False)

    def catch_up(self) -> None:
        """Let the writer reach the present, so a cut or a fault falls at a known point of
        the recording. Skipped when an armed cut may kill the writer meanwhile."""
        inst = self.live
        if inst is not None and self.fs.powered and not self.fs.cut_armed:
            writer = inst.firmware.writer
            # Bounded: a writer thread that died waits for the watchdog, which runs on
            # this very thread, and a stuck one must not hang the simulation.
            if writer.alive():
                writer.wait_idle(CATCH_UP_TIMEOUT_S)

    def power_cut(self, mode: str) -> None:
        self.catch_up()
        self.fs.power_cut(mode)

    def power_restore(self) -> None:
        self._reap()   # before power returns: an abandoned writer must never write again
        self.fs.power_restore()
        if self.trace is not None:
            self.trace.record("power", on=True)
        self.boot()

    def storage_step(self, step: Step) -> None:
        self.catch_up()
        if self.trace is not None:
            self.trace.record("world", do=step.action, applied=True)
        if step.action == "storage.fail":
            self.fs.fail(step.errno, step.op, step.after_bytes, step.count, under=self.storage_dir)
        elif step.action == "storage.fill":
            self.fs.fill(step.free_bytes, under=self.storage_dir)
        else:
            self.fs.heal()

    def set_input(self, name: str, active: bool, at_us: int) -> None:
        """Drive an input, stamped with the time the script meant (simulator/inputs.py):
        on the wall clock this callback runs late by a varying amount."""
        inst = self.live
        if inst is not None:   # a button pressed on a dead camera does nothing
            inst.world.inputs.set(name, active, at_us)

    def world_step(self, step: Step) -> None:
        """camera.*, mic.*, battery.*, clock.*: the world outside the firmware changes."""
        action, inst = step.action, self.live
        fields: dict = {}
        applied = True
        if action.startswith(("camera.", "mic.")):
            # Like a button: a part of a dead camera cannot be pulled or broken.
            applied = inst is not None
            if applied:
                self.camera_connected = {"camera.disconnect": False, "camera.reconnect": True}.get(
                    action, self.camera_connected)
                self.mic_failed = {"mic.fail": True, "mic.heal": False}.get(action, self.mic_failed)
                part = inst.world.camera if action.startswith("camera.") else inst.world.microphone
                getattr(part, action.partition(".")[2])()   # disconnect, reconnect, fail, heal
        elif action == "battery.set":
            self.battery.set_level(step.percent)
            fields["percent"] = step.percent
        elif action == "battery.drain":
            per_min = step.rate_pct_per_min
            self.battery.set_drain(None if per_min is None else per_min * 60.0)
            fields["rate_pct_per_min"] = per_min
        elif action == "clock.jump":
            before_us = self.clock.wall_time_us()
            fields.update(before_utc_us=before_us, after_utc_us=self.clock.jump_us(_seconds(step.delta_s)))
        elif action == "clock.set":
            before_us = self.clock.wall_time_us()
            self.clock.set_wall_time_us(step.utc_us)
            fields.update(before_utc_us=before_us, after_utc_us=step.utc_us)
        else:
            raise ValueError(f"no such world step {action!r}")
        if self.trace is not None:
            self.trace.record("world", do=action, applied=applied, **fields)

    def finish(self) -> None:
        """End of the scenario: a live instance shuts down cleanly; abandoned ones are reaped."""
        inst = self.live
        if inst is not None:
            try:
                inst.firmware.shutdown()
            except PowerLost:
                pass
            except OSError as exc:
                inst.error = exc
        self._reap()
        for pod in self.pods.values():
            pod.stop()
        self.fs.remove_power_listener(self._on_power_lost)

    def _reap(self) -> None:
        """Stop the writer threads of instances that lost power. Their storage raises
        PowerLost, so they end at their next operation, or at the stop marker."""
        for inst in self.instances:
            if inst.power_lost_us is not None and inst.booted and id(inst) not in self._reaped:
                inst.firmware.writer.close()
                self._reaped.add(id(inst))


def _schedule(device: _Device, clock: Clock, start_us: int, step: Step) -> None:
    at_us = start_us + _seconds(step.t_s)

    def press_release(at: int, length_us: int, name: str = RECORD_BUTTON) -> None:
        clock.call_at(at, lambda: device.set_input(name, True, at))
        clock.call_at(at + length_us, lambda: device.set_input(name, False, at + length_us))

    if step.action == "button.press":
        press_release(at_us, PRESS_US)
    elif step.action == "button.double_press":
        press_release(at_us, PRESS_US)
        press_release(at_us + PRESS_US + DOUBLE_PRESS_GAP_US, PRESS_US)
    elif step.action == "button.hold":
        press_release(at_us, _seconds(step.hold_s))
    elif step.action == "trigger.on":
        clock.call_at(at_us, lambda: device.set_input(step.name, True, at_us))
    elif step.action == "trigger.off":
        clock.call_at(at_us, lambda: device.set_input(step.name, False, at_us))
    elif step.action == "power.cut":
        clock.call_at(at_us, lambda: device.power_cut(step.mode))
    elif step.action == "power.restore":
        clock.call_at(at_us, device.power_restore)
    elif step.action.startswith("storage."):
        clock.call_at(at_us, lambda: device.storage_step(step))
    elif step.action.startswith(("camera.", "mic.", "battery.", "clock.")):
        clock.call_at(at_us, lambda: device.world_step(step))
    elif step.action.startswith("pod."):
        pod = device.pods[step.target]
        if step.action == "pod.press":
            pod.press(at_us)
        elif step.action == "pod.double_press":
            pod.double_press(at_us)
        else:
            pod.hold(at_us, step.hold_s)
    elif step.action in ("link.drop", "link.restore"):
        def link_step() -> None:
            getattr(device.ether, step.action.partition(".")[2])(step.target)
            if device.trace is not None:
                device.trace.record("world", do=step.action, applied=True, target=step.target)
        clock.call_at(at_us, link_step)
    else:
        raise ValueError(f"no such scenario step {step.action!r}")


def run_scenario(scenario: Scenario, identity: Identity, policy: Policy, device_dir: str,
                 storage_dir: str, source_path: str | None = None, realtime: bool = False,
                 simfs: SimFS | None = None, trace: Trace | bool | None = None,
                 clock: Clock | None = None, build_board=build_sim_board) -> RunResult:
    """Run `scenario` to its end. `simfs`: the storage to run on (a test may arm faults or
    cuts on it first); a fresh one by default. `trace`: a Trace to report what the world
    saw and heard to, or True for a new one (RunResult.trace). `clock`: what to run on
    instead of a VirtualClock (or, with `realtime`, a RealClock): a test's own clock.
    `build_board`: what builds each boot's board (the bench's replay parts)."""
    if clock is None:
        clock = RealClock() if realtime else VirtualClock()
    world_clock = SteppableWallClock(clock)
    if trace is True:
        trace = Trace()
    if trace:
        trace.use_clock(world_clock)
    fs = SimFS() if simfs is None else simfs
    device = _Device(world_clock, fs, scenario, identity, policy, device_dir, storage_dir, source_path,
                     trace or None, build_board=build_board)
    device.boot()
    start_us = clock.monotonic_us()
    if trace:
        trace.origin_us = start_us
    end_us = start_us + _seconds(scenario.duration_s)
    try:
        for step in scenario.steps:
            _schedule(device, world_clock, start_us, step)
        clock.wait_until(end_us)
    finally:
        # Close the event cleanly even if a simulated part failed mid-run.
        device.finish()
    return RunResult(device.instances, fs, start_us, end_us, device.battery, trace or None, device.pods)
