"""The recorder: state machine, pre-event buffer and hand-over to the writer.

Packets arrive on the camera/microphone threads and events on the input path;
one lock serialises both, so the switch from buffer to recording happens between
two packets and no frame is lost or duplicated (BUF-4).
"""
from __future__ import annotations

import threading
import uuid
from typing import Callable

from device.announce import Announcer
from device.config import Policy
from device.patterns import PatternPlayer
from device.ringbuffer import PreEventBuffer
from device.states import INITIAL_STATE, Action, Event, State, step
from device.writer import AuditEntry, EventStart, EventStop, Metadata, SegmentWriter
from hal.clock import Clock
from hal.indicators import Indicators
from hal.media import MediaPacket



class Recorder:
    def __init__(self, clock: Clock, policy: Policy, buffer: PreEventBuffer, writer: SegmentWriter,
                 indicators: Indicators, new_event_id: Callable[[], str] = lambda: uuid.uuid4().hex,
                 announcer: Announcer | None = None, player: PatternPlayer | None = None) -> None:
        self._clock, self._policy, self._buffer = clock, policy, buffer
        self._announcer = announcer
        self.player = PatternPlayer(clock, indicators) if player is None else player
        self.monitor = None   # device/monitor.py, set by the firmware: told of every packet
        self._writer, self._new_event_id = writer, new_event_id
        self._lock = threading.Lock()
        self._state = INITIAL_STATE
        self._event_id: str | None = None
        self.events_started = 0
        # Called as (old, new, monotonic_us) on every state change, with the lock held:
        # a simulator's trace (what a person standing there could tell) listens here.
        self.state_listeners: list[Callable[[State, State, int], None]] = []
        # Called as (source, event_id, monotonic_us) when an event starts, lock held: group
        # activation (device/group.py) tells its peers from here.
        self.start_listeners: list[Callable[[str, str, int], None]] = []

    @property
    def state(self) -> State:
        return self._state

    def pre_event_held_us(self) -> int:
        """Media time the pre-event buffer holds now (what an activation would take)."""
        return self._buffer.duration_us

    @property
    def event_id(self) -> str | None:
        return self._event_id

    def on_packet(self, packet: MediaPacket) -> None:
        """Camera and microphone sink: append to memory, nothing else."""
        with self._lock:
            if self.monitor is not None:
                self.monitor.on_packet(packet)
            if self._state is State.RECORDING:
                self._writer.put(packet)
            # The buffer keeps filling while recording (the same bytes objects, no
            # copy), so an activation soon after a stop still gets its full
            # pre-event (BUF-2), even though that footage is also in the last event.
            if self._state is not State.SHUTDOWN:
                self._buffer.append(packet)

    def handle(self, event: Event, source: str, at_us: int | None = None, reason: str | None = None) -> Action:
        """Apply `event`; `at_us` is when the wearer acted, if earlier than now
        (a short press is recognised only after the double-press window); `reason`:
        a stop's reason category (ACT-4)."""
        with self._lock:
            clock_us = self._clock.monotonic_us()
            now_us = clock_us if at_us is None else min(at_us, clock_us)
            utc_us = self._clock.wall_time_us() - (clock_us - now_us)
            old = self._state
            self._state, action = step(self._state, event)
            if self._state is not old:
                for listener in self.state_listeners:
                    listener(old, self._state, clock_us)
            if action is Action.START_EVENT:
                self._start(source, now_us, utc_us)
            elif action is Action.MARKER:
                self._writer.put(Metadata("marker", now_us, {"source": source}))
                self._writer.put(AuditEntry("marker", now_us, utc_us,
                                            {"source": source, "event_id": self._event_id}))
                self.player.play("marker")
            elif action in (Action.STOP_EVENT, Action.STOP_EVENT_AND_SHUTDOWN):
                self._writer.put(EventStop(source, now_us, utc_us, reason))
                self._event_id = None
                if self._announcer is not None:
                    self._announcer.event_stopped()
                if self.monitor is not None:
                    self.monitor.event_stopped()
                    self.monitor.set_record_led(False)
                if event is Event.STORAGE_FAILED:
                    # Not the stop signal: the wearer must know recording ended by itself.
                    self.player.play("storage_full" if source == "storage_full" else "fault")
                elif source != "battery_critical":   # that one has its own alert
                    self.player.play("stop")
            return action

    def storage_failed(self, source: str) -> None:
        """Writer thread: storage ended the event (a fault, or the card is full)."""
        if self._state is State.RECORDING:
            self.handle(Event.STORAGE_FAILED, source)
        else:
            with self._lock:
                self.player.play("storage_full" if source == "storage_full" else "fault")

    def _start(self, source: str, now_us: int, utc_us: int) -> None:
        # Empty if nothing usable is buffered: the writer then starts the event at the
        # first keyframe or audio packet that arrives.
        packets = self._buffer.take(now_us)
        self._event_id = self._new_event_id()
        self.events_started += 1
        self._writer.put(EventStart(self._event_id, source, now_us, utc_us,
                                    self._policy.pre_event_s, packets))
        self.player.play("start")
        if self.monitor is not None:
            self.monitor.event_started(now_us)
        if self._announcer is not None:
            self._announcer.event_started(self._event_id, now_us, utc_us)
        for listener in self.start_listeners:
            listener(source, self._event_id, now_us)

    def replay_announcement(self, source: str) -> None:
        """ANN-4: the wearer asks for the notice again; only while recording."""
        with self._lock:
            if self._state is State.RECORDING and self._announcer is not None:
                self._announcer.replay(self._event_id, self._clock.monotonic_us(), self._clock.wall_time_us())
