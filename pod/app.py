"""The pod's logic (docs/pod.md): button -> gestures -> the camera; beacons -> LED and motor.

`step(now_us)` is one pass of the main loop and `next_deadline_us()` says when the next
pass is due without a datagram or an edge, so pod/main.py loops with a short sleep and a
simulator or a test drives it on a virtual clock.
"""
from device.gestures import HOLD, GestureDecoder
from device.link.endpoint import ReservedCounter
from device.link.roles import PodRole
from pod.clock import ExtendedClock
from pod.show import Indicator

MAX_DATAGRAMS_PER_STEP = 16   # a flood cannot starve the button and the LED


class PodApp:
    def __init__(self, board, pod_pairing, start_us=0):
        self.board = board
        self.camera_id = pod_pairing.camera_id
        self.clock = ExtendedClock(board.ticks_us, board.ticks_diff, start_us)
        now_us = self.clock.now_us()
        self._now_us = now_us
        # A pod without a durable counter must not send (docs/link.md §4): ReservedCounter
        # writes its reservation here before the first frame, and any error surfaces now.
        self.role = PodRole(pod_pairing.pairing, ReservedCounter(board.counter_store()), now_us)
        timings = pod_pairing.gestures or {}
        self.decoder = GestureDecoder(initial_active=board.button_pressed(), **timings)
        self.indicator = Indicator(board)
        self.gestures = []        # [(name, decoded_us)]: what was sent, for diagnostics and tests
        self.shown_changes = []   # [(pattern, now_us)]: each change of what the pod shows
        self._update_indicator(now_us)

    def now_us(self):
        return self.clock.now_us()

    def step(self, now_us=None):
        """One pass: datagrams in, button edges and timers, frames out, LED and motor."""
        if now_us is None:
            now_us = self.clock.now_us()
        self._now_us = now_us
        # Receive first, so the heartbeat sent below echoes the newest beacon.
        for _ in range(MAX_DATAGRAMS_PER_STEP):
            data = self.board.receive()
            if data is None:
                break
            self.role.receive(data, now_us)
        for pressed, t_us in self.board.button_edges(self.clock, now_us):
            self._send_gestures(self.decoder.edge(pressed, t_us), now_us)
        self._send_gestures(self.decoder.poll(now_us), now_us)
        for frame in self.role.poll(now_us):
            self.board.send(frame)
        self._update_indicator(now_us)

    def _send_gestures(self, names, now_us):
        for name in names:
            self.gestures.append((name, now_us))
            press_us = self.decoder.last_press_us
            if name == HOLD:
                # A hold exists only once held for hold_us (3 s), past the camera's 2 s
                # press-age limit (docs/link.md §5), so it is dated when it became a hold.
                press_us += self.decoder.hold_us
            frame = self.role.gesture(name, press_us, now_us)
            if frame is not None:   # else it waits for the gesture in flight (PodRole.gesture)
                self.board.send(frame)

    def _update_indicator(self, now_us):
        pattern = self.role.shown(now_us)
        if pattern != self.indicator.pattern:
            self.shown_changes.append((pattern, now_us))
        self.indicator.update(pattern, now_us)

    @property
    def shown(self):
        return self.indicator.pattern

    def next_deadline_us(self):
        """When the next pass is due if no datagram or edge arrives first."""
        now_us = self._now_us
        candidates = [self.role.next_deadline_us(), self.decoder.next_deadline_us(),
                      self.indicator.next_change_us(now_us)]
        info_us = self.role.link.info_us
        if info_us is not None and info_us + self.role.link.fresh_us >= now_us:
            # The first microsecond at which the newest fresh beacon is too old to show.
            candidates.append(info_us + self.role.link.fresh_us + 1)
        best = None
        for t in candidates:
            if t is not None and (best is None or t < best):
                best = t
        return best
