"""A board for tests and the simulator (pod/board.py): scripted button edges, recorded
LED and motor history with times, datagram queues, an in-memory store, and a settable
tick that wraps at a configurable period (so wrap-around is tested, not assumed).
"""
from pod.board import Board, MemoryStore
from pod.clock import PERIOD_2_30_US, make_ticks_diff


class FakeBoard(Board):
    def __init__(self, period_us=PERIOD_2_30_US, start_us=0, pairing_text=None, store=None):
        self.period_us = period_us
        self._diff = make_ticks_diff(period_us)
        self.true_us = start_us         # the virtual time the test sets (never wraps)
        self._edges = []                # scripted [(t_us, pressed)], in time order
        self._level = False
        self.led = None
        self.motor = False
        self.led_history = []           # [(t_us, colour or None)], one entry per change
        self.motor_history = []         # [(t_us, on)], one entry per change
        self.inbox = []                 # datagrams waiting to be received
        self.outbox = []                # [(t_us, bytes)] sent
        self.store = store if store is not None else MemoryStore()
        self._pairing_text = pairing_text

    # -- the test's side --------------------------------------------------------------
    def set_time(self, t_us):
        if t_us < self.true_us:
            raise ValueError("the fake board's time goes forward only")
        self.true_us = t_us

    def script_edge(self, pressed, t_us):
        self._edges.append((t_us, bool(pressed)))
        self._edges.sort(key=lambda e: e[0])

    def script_press(self, t_us, length_us=80000):
        self.script_edge(True, t_us)
        self.script_edge(False, t_us + length_us)

    def next_edge_us(self):
        return self._edges[0][0] if self._edges else None

    def take_sent(self):
        out = [d for t, d in self.outbox]
        self.outbox = []
        return out

    # -- Board ----------------------------------------------------------------------
    def ticks_us(self):
        return self.true_us % self.period_us

    def ticks_diff(self, new, old):
        return self._diff(new, old)

    def button_pressed(self):
        return self._level

    def button_edges(self, clock, now_us):
        out = []
        while self._edges and self._edges[0][0] <= self.true_us:
            t_us, pressed = self._edges.pop(0)
            self._level = pressed
            # Dated through the wrapping tick, as the Pico's interrupt handler does.
            out.append((pressed, clock.to_us(t_us % self.period_us, now_us)))
        return out

    def set_led(self, colour):
        if colour != self.led:
            self.led = colour
            self.led_history.append((self.true_us, colour))

    def set_motor(self, on):
        on = bool(on)
        if on != self.motor:
            self.motor = on
            self.motor_history.append((self.true_us, on))

    def send(self, data):
        self.outbox.append((self.true_us, bytes(data)))

    def receive(self):
        return self.inbox.pop(0) if self.inbox else None

    def counter_store(self):
        return self.store

    def pairing_text(self):
        return self._pairing_text
