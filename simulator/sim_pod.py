"""A control pod in the simulated world: the real pod program (pod/app.py) on its test board
(pod/board_fake.py), driven on the world's virtual clock, talking over the simulated ether.

What the pod showed is kept as (monotonic_us, pattern) changes, and the pod's LED and motor
go to the trace, so a scenario test asserts what the wearer would see on the pod.
"""
from __future__ import annotations

from hal.clock import Clock
from pod import pairing as pairing_file
from pod.app import PodApp
from pod.board_fake import FakeBoard
from simulator.ether import SimEther

PRESS_US = 120_000
DOUBLE_PRESS_GAP_US = 150_000


class SimPod:
    def __init__(self, clock: Clock, ether: SimEther, name: str, pairing_text: str, camera_address: str,
                 trace=None) -> None:
        self._clock, self.name, self._camera_address, self._trace = clock, name, camera_address, trace
        self.radio = ether.endpoint(name, clock)
        # The board's own tick is the world's monotonic time (wrapping at 2^30 like a Pico's).
        self.board = FakeBoard(start_us=clock.monotonic_us(), pairing_text=pairing_text)
        self.app = PodApp(self.board, pairing_file.parse(pairing_text), clock.monotonic_us())
        self._timer = None
        self._led_seen = 0
        self.radio.subscribe(self._on_datagram)
        self._step()

    @property
    def shown_changes(self) -> list:
        return list(self.app.shown_changes)

    # -- the world acts on the pod -------------------------------------------------------
    def press(self, at_us: int, length_us: int = PRESS_US) -> None:
        for t_us, pressed in ((at_us, True), (at_us + length_us, False)):
            self._clock.call_at(t_us, lambda t=t_us, p=pressed: self._edge(p, t))

    def double_press(self, at_us: int) -> None:
        self.press(at_us)
        self.press(at_us + PRESS_US + DOUBLE_PRESS_GAP_US)

    def hold(self, at_us: int, hold_s: float) -> None:
        self.press(at_us, round(hold_s * 1e6))

    def _edge(self, pressed: bool, t_us: int) -> None:
        self.board.script_edge(pressed, t_us)
        self._step()

    def _on_datagram(self, data: bytes, sender: str, received_us: int) -> None:
        self.board.inbox.append(data)
        self._step()

    # -- one pass of the pod's main loop ----------------------------------------------------
    def _step(self) -> None:
        now_us = self._clock.monotonic_us()
        self.board.set_time(now_us)
        self.app.step(now_us)
        for data in self.board.take_sent():
            self.radio.send(data, self._camera_address)
        self._report(now_us)
        if self._timer is not None:
            self._timer.cancel()
        deadline_us = self.app.next_deadline_us()
        edge_us = self.board.next_edge_us()
        if edge_us is not None and (deadline_us is None or edge_us < deadline_us):
            deadline_us = edge_us
        self._timer = None if deadline_us is None else self._clock.call_at(max(deadline_us, now_us + 1), self._step)

    def _report(self, now_us: int) -> None:
        history = self.board.led_history
        if self._trace is not None:
            for t_us, colour in history[self._led_seen:]:
                self._trace.record("pod_led", t_us, pod=self.name, colour=colour, shown=self.app.shown)
        self._led_seen = len(history)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.radio.close()
