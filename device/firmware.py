"""The firmware: wires a Board to the recorder, writer, gestures and audit log.

The same code runs on the simulator and the Pi (HAL-3): it sees only the Board.
"""
from __future__ import annotations

import logging
import threading

from nacl.signing import SigningKey

from device import gestures
from device.announce import Announcer
from device.chainstate import ChainState, recover
from device.config import FIRMWARE_VERSION, Identity, Policy
from device.controls import Controls
from device.monitor import Monitor
from device.patterns import PatternPlayer
from device.group import GroupConfigError, GroupLink, MemberRecord, RecordCounterStore
from device.podlink import PairingError, PodLinks, load_pairings
from device.evidence.audit import AuditLog
from device.evidence.receipt import check_receipt
from device.recorder import Recorder
from device.ringbuffer import PreEventBuffer
from device.states import Event, State
from device.writer import AuditEntry, SegmentWriter
from hal.board import Board
from hal.clock import Timer
from hal.indicators import LED_RECORD, LED_STATUS
from hal.inputs import RECORD_BUTTON

_log = logging.getLogger(__name__)

# An audit entry's own fields (docs/format.md §5): a message's fields must not overwrite them.
_ENTRY_KEYS = frozenset({"type", "n", "prev", "monotonic_us", "utc_us", "device_id", "status"})


class BootError(RuntimeError):
    """boot() could not start the firmware; the message is one line naming the part."""


class Firmware:
    def __init__(self, board: Board, identity: Identity, policy: Policy, assets: object = None,
                 group: MemberRecord | None = None, group_peers: tuple[str, ...] = ()) -> None:
        """`assets`: the announcement assets (device/announce.py); None: the shipped ones.
        `group`: this camera's group membership (DEVICE_DIR/group.json, docs/link.md §8) and
        `group_peers` the addresses its starts go to, over `board.group_radio`."""
        self.board, self.identity, self.policy = board, identity, policy
        self._assets = assets
        self._signing_key = SigningKey(board.keystore.signing_seed())
        if bytes(self._signing_key.verify_key) != identity.device_public_key:
            raise ValueError("the key store's signing key does not match device.json")
        self._input_lock = threading.Lock()
        self._decoders: dict[str, gestures.GestureDecoder | gestures.TriggerDecoder] = {}
        self._timers: dict[str, Timer] = {}
        self.chain = ChainState.load(board.keystore)
        self.recorder: Recorder | None = None
        self.writer: SegmentWriter | None = None
        self.failure: BaseException | None = None
        self.storage_full = False
        self.monitor: Monitor | None = None
        self.controls: Controls | None = None
        self.pods: PodLinks | None = None
        self._group_member, self._group_peers = group, tuple(group_peers)
        self.group: GroupLink | None = None
        self.shutdown_source: str | None = None   # set once shutdown() has run
        self.boot_problems: list[str] = []         # "part: reason" for parts that did not start
        self._shutdown_lock = threading.Lock()

    def boot(self) -> None:
        """Start buffering. A part that cannot start (camera, microphone) does not stop the
        boot: it is logged and the monitor retries it with back-off (FLT-1), so audio records
        without a camera and video without a microphone. Anything else that fails leaves
        the chain state as a clean stop (no `recovery` entry at the next boot for a boot
        that recorded nothing) and raises BootError: one line naming the part and why."""
        board, clock = self.board, self.board.clock
        now_us, utc_us = clock.monotonic_us(), clock.wall_time_us()
        recovery = recover(self.chain, board.storage, self._signing_key.verify_key)
        # From here on a power cut must make the next boot write a recovery entry.
        self.chain.running = True
        self.chain.save(board.keystore)
        try:
            self._boot(recovery, now_us, utc_us)
        except Exception as exc:
            try:
                # Once the boot is logged (the writer runs from then on) the undoing is logged
                # too; before, nothing is written, and a pending recovery stays pending, so
                # the next boot still explains the unclean stop first (AUD-2).
                if self.writer is not None and self.writer.started:
                    self.shutdown("boot_failed")   # closes the writer, saves running=False
            except Exception:  # noqa: BLE001 - the boot's own failure is the one to report
                _log.exception("undoing the failed boot failed too")
            self.chain.running = False
            self.chain.save(board.keystore)
            raise BootError(f"the firmware could not boot: {type(exc).__name__}: {exc}") from exc

    def _boot(self, recovery, now_us: int, utc_us: int) -> None:
        board, clock = self.board, self.board.clock
        audit = AuditLog(board.storage, self._signing_key, self.identity.device_id,
                         self.chain, lambda: self.chain.save(board.keystore))
        video = board.camera.video_format
        buffer = PreEventBuffer(self.policy.pre_event_s,
                                self.policy.buffer_max_bytes(video.bitrate_bps, video.keyframe_interval_s),
                                keep_audio=self.policy.pre_event_audio,
                                keyframe_interval_s=video.keyframe_interval_s)
        self.writer = SegmentWriter(board.storage, board.keystore, self._signing_key, self.identity,
                                    self.chain, audit, video, board.microphone.audio_format, self.policy,
                                    on_committed=self._on_committed, on_failure=self._on_writer_failure,
                                    on_storage_full=self._on_storage_full)
        player = PatternPlayer(clock, board.indicators)
        announcer = Announcer(clock, board.speaker, self.writer.put, self.policy, self._assets,
                              on_cue=lambda: player.play("announcement"))
        self.recorder = Recorder(clock, self.policy, buffer, self.writer, board.indicators, announcer=announcer,
                                 player=player)
        self.monitor = Monitor(board, self.policy, self.recorder, self.writer, self.recorder.player,
                               on_battery_critical=lambda: self.shutdown("battery_critical"))
        self.recorder.monitor = self.monitor
        self.controls = Controls(clock, self.policy, self.recorder, self.writer, self.monitor)
        self._log_boot(audit, recovery, now_us, utc_us)
        self.writer.start()
        for name in board.inputs.names:
            if name == RECORD_BUTTON:
                self._decoders[name] = gestures.GestureDecoder(
                    debounce_us=self.policy.debounce_ms * 1000,
                    double_press_window_us=self.policy.double_press_window_ms * 1000,
                    hold_us=round(self.policy.hold_stop_s * 1e6),
                    initial_active=board.inputs.is_active(name))
            else:
                self._decoders[name] = gestures.TriggerDecoder(initial_active=board.inputs.is_active(name))
        board.inputs.subscribe(self._on_edge)
        board.indicators.set_led(LED_STATUS, True)
        self._start_part("camera", board.camera)
        self._start_part("microphone", board.microphone)
        self.monitor.start()
        self._start_pod_links(audit)
        self._start_group()

    def _start_part(self, name: str, part) -> None:
        """A camera or microphone that cannot open now may open later: the monitor finds no
        media within camera_timeout_s, alerts the wearer and retries with back-off."""
        try:
            part.start(self.recorder.on_packet)
        except Exception as exc:  # noqa: BLE001 - any backend's failure is a lost part, not a dead camera
            message = f"{type(exc).__name__}: {exc}"[:200]
            self.boot_problems.append(f"{name}: {message}")
            clock = self.board.clock
            self.writer.put(AuditEntry("watchdog", clock.monotonic_us(), clock.wall_time_us(),
                                       {"part": name, "action": "start_failed", "error": message}))

    def _start_group(self) -> None:
        """ACT-3: starts from peers of the group, and ours announced to them. A camera started
        by a peer does not announce again (docs/link.md §8.3): no storms, no loops."""
        board, clock = self.board, self.board.clock
        if board.group_radio is None or self._group_member is None:
            return
        try:
            self.group = GroupLink(self._group_member, self._signing_key, RecordCounterStore(board.keystore),
                                   board.group_radio, clock, self._group_peers,
                                   on_start=self._on_group_start, log=self._on_group_log)
        except (GroupConfigError, OSError) as exc:
            self._on_group_log("refused", {"error": str(exc)[:200]})
            return
        self.recorder.start_listeners.append(self._on_event_started)

    def _on_event_started(self, source: str, event_id: str, monotonic_us: int) -> None:
        # Called with the recorder's lock held, which the camera's packet callback also takes:
        # the signing, sending and any counter write run on the clock's thread instead, now.
        if self.group is not None and not source.startswith(("peer:", "vehicle:")):
            clock = self.board.clock
            clock.call_at(clock.monotonic_us(), lambda: self._announce(source, event_id))

    def _announce(self, source: str, event_id: str) -> None:
        try:
            self.group.announce(source, event_id)
        except (GroupConfigError, OSError, ValueError) as exc:   # the counter could not be reserved
            self._on_group_log("refused", {"error": str(exc)[:200]})

    def _on_group_start(self, source: str, fields: dict) -> None:
        with self._input_lock:
            if self._decoders:   # not shutting down
                self.recorder.handle(Event.TRIGGER_START, source)

    def _on_group_log(self, status: str, fields: dict) -> None:
        clock = self.board.clock
        # The message's own times are the sender's: named so, beside the entry's.
        renamed = {("sent_" + k if k in _ENTRY_KEYS else k): v for k, v in fields.items()}
        self.writer.put(AuditEntry("group_message", clock.monotonic_us(), clock.wall_time_us(),
                                   {"status": status, **renamed}))

    def _start_pod_links(self, audit: AuditLog) -> None:
        """docs/link.md §5: paired pods over the board's radio. A pairing record that cannot
        be read leaves the camera without its pods, never without its own button."""
        board, clock = self.board, self.board.clock
        if board.radio is None:
            return
        try:
            pairings = load_pairings(board.keystore)
            if not pairings:
                return
            self.pods = PodLinks(clock, board.radio, board.keystore, pairings, self.monitor.pod_status,
                                 self._on_pod_gesture, self.recorder.player.play, self.writer)
        except (PairingError, OSError) as exc:
            self.writer.put(AuditEntry("pod_link", clock.monotonic_us(), clock.wall_time_us(),
                                       {"status": "refused", "error": str(exc)[:200]}))
            return
        self.pods.start()

    def _on_pod_gesture(self, gesture: str, press_us: int, source: str) -> None:
        if gesture == gestures.HOLD:
            # The pod dates a hold when it became one (docs/link.md §5); the camera's own
            # button dates it at its press edge, and so does the stop it causes.
            press_us -= round(self.policy.hold_stop_s * 1e6)
        with self._input_lock:
            if self._decoders:   # not shutting down
                self.controls.button(gesture, press_us, source)

    def _log_boot(self, audit: AuditLog, recovery, now_us: int, utc_us: int) -> None:
        """AUD-2: explain an unclean stop before anything else is logged. A card that
        fails now must not stop the camera from buffering: the fault is logged at
        the next chance and an activation tries the card again."""
        try:
            if recovery is not None:
                # A power cut, and a card that cannot show the newest line: say so.
                unconfirmed = {} if audit.unconfirmed is None else {"unconfirmed_entry": audit.unconfirmed}
                audit.append("recovery", now_us, utc_us, **recovery.fields(), **unconfirmed)
                self.chain.pending_recovery = None
            self.writer.log_pending_faults()
            # A board without a fuel gauge says so in its boot entry: no battery warning will come.
            no_battery = {} if self.board.battery.present else {"battery": "none"}
            audit.append("boot", now_us, utc_us, firmware=FIRMWARE_VERSION,
                         pre_event_s=self.policy.pre_event_s, segment_s=self.policy.segment_s, **no_battery)
        except OSError as exc:
            self.writer.note_fault(exc, "boot", (now_us, utc_us))
            self.failure = exc
        self.chain.running = True
        self.chain.save(self.board.keystore)

    def shutdown(self, source: str = "shutdown") -> None:
        """Stop cleanly: close any event, log the shutdown, persist the chain. Runs once;
        `source` says why (`shutdown`, `battery_critical`)."""
        # Held to the end: a second caller (the runner, while the battery's shutdown is
        # still closing the event) waits until the event is closed.
        with self._shutdown_lock:
            if self.shutdown_source is not None:
                return
            self.shutdown_source = source
            self._shutdown(source)

    def _shutdown(self, source: str) -> None:
        board, clock = self.board, self.board.clock
        if self.monitor is not None:
            self.monitor.stop()
        if self.controls is not None:
            self.controls.cancel()
        if self.pods is not None:
            self.pods.stop()
        board.camera.stop()
        board.microphone.stop()
        with self._input_lock:  # an edge arriving now must not re-arm a timer
            self._decoders.clear()
            for timer in self._timers.values():
                timer.cancel()
            self._timers.clear()
        self.recorder.handle(Event.SHUTDOWN, source)
        self.writer.put(AuditEntry("shutdown", clock.monotonic_us(), clock.wall_time_us(), {"source": source}))
        self.writer.close()
        board.indicators.set_led(LED_RECORD, False)
        board.indicators.set_led(LED_STATUS, False)
        # Clean even after a storage fault: the fault entry (or, if the card refused
        # it, the pending record the next boot writes) already explains the loss.
        self.chain.running = False
        self.chain.save(board.keystore)

    def accept_receipt(self, receipt: dict) -> None:
        """Log a custody receipt (docs/format.md §9) once it checks out against an
        intake key this device trusts; raises ReceiptError otherwise, logging nothing.
        Only a logged receipt lets the history it covers leave the card."""
        check_receipt(receipt, self.identity.device_public_key.hex(), list(self.identity.intake_public_keys))
        clock = self.board.clock
        self.writer.put(AuditEntry("receipt", clock.monotonic_us(), clock.wall_time_us(), {"receipt": receipt}))

    # -- inputs -------------------------------------------------------------------
    def _on_edge(self, name: str, active: bool, timestamp_us: int) -> None:
        with self._input_lock:
            decoder = self._decoders.get(name)
            if decoder is None:
                return
            self._dispatch(name, decoder.edge(active, timestamp_us))
            self._rearm(name)

    def _on_timer(self, name: str) -> None:
        with self._input_lock:
            decoder = self._decoders.get(name)
            if decoder is None:  # shutting down
                return
            self._dispatch(name, decoder.poll(self.board.clock.monotonic_us()))
            self._rearm(name)

    def _rearm(self, name: str) -> None:
        old = self._timers.pop(name, None)
        if old is not None:
            old.cancel()
        deadline_us = self._decoders[name].next_deadline_us()
        if deadline_us is not None:
            self._timers[name] = self.board.clock.call_at(deadline_us, lambda: self._on_timer(name))

    def _dispatch(self, name: str, gesture_events: list) -> None:
        for gesture in gesture_events:
            if name == RECORD_BUTTON:
                self.controls.button(gesture, self._decoders[name].last_press_us)
            elif gesture == gestures.ON:
                self.recorder.handle(Event.TRIGGER_START, f"trigger:{name}")
            elif gesture == gestures.OFF and self.policy.triggers.get(name, "start") == "start_stop":
                self.recorder.handle(Event.TRIGGER_STOP, f"trigger:{name}")

    # -- writer callbacks (writer thread) -------------------------------------------
    def _on_committed(self, media_monotonic_us: int) -> None:
        # The monitor owns the record LED; it re-checks the recorder's state under its own
        # lock, so a stop on another thread cannot be overtaken by this.
        self.monitor.on_committed(media_monotonic_us)

    def _on_writer_failure(self, exc: BaseException) -> None:
        self.failure = exc
        if self.monitor is not None:
            self.monitor.note_storage_fault()
        self.recorder.storage_failed("storage")

    def _on_storage_full(self) -> None:
        self.storage_full = True
        if self.monitor is not None:
            self.monitor.note_storage_fault()
        self.recorder.storage_failed("storage_full")

