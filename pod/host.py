"""The pod on a desktop (CPython or MicroPython's unix port): real UDP, real ticks, and a
button driven by control datagrams. For the loopback tests and the simulator; the Pico's
entry point is pod/main.py.

    micropython -c "import sys; sys.path.insert(0, REPO); from pod import host;
                    host.main(LINK_JSON_TEXT, RADIO_PORT, CONTROL_PORT)"

Control datagrams to 127.0.0.1:CONTROL_PORT: b"double", b"press", b"hold" script the
button's edges from now; b"quit" ends the loop. Stdout gets one line per event,
"gesture NAME T_US" and "shown PATTERN T_US SET_US" (SET_US: after the LED was set), T_US on the tick's clock (CLOCK_MONOTONIC
on both interpreters' unix builds), so a test can compare it with its own clock.
"""
import sys
import time

from pod import pairing as pairing_file
from pod.app import PodApp
from pod.board import MemoryStore
from pod.board_fake import FakeBoard
from pod.udp import UdpSocket, resolve

try:
    _ticks_us = time.ticks_us
    _ticks_diff = time.ticks_diff

    def _sleep_ms(ms):
        time.sleep_ms(ms)
except AttributeError:   # CPython
    def _ticks_us():
        return time.monotonic_ns() // 1000

    def _ticks_diff(new, old):
        return new - old

    def _sleep_ms(ms):
        time.sleep(ms / 1000)

PRESS_US = 80000
GAP_US = 120000


class HostBoard(FakeBoard):
    """FakeBoard's recorded LED and motor, with a real tick and a real UDP radio."""

    def __init__(self, text, radio_port, camera_sockaddr):
        FakeBoard.__init__(self, pairing_text=text, store=MemoryStore())
        self.radio = UdpSocket("127.0.0.1", radio_port)
        self.camera = camera_sockaddr
        self.true_us = _ticks_us()

    def ticks_us(self):
        return _ticks_us()

    def ticks_diff(self, new, old):
        return _ticks_diff(new, old)

    def button_edges(self, clock, now_us):
        self.true_us = now_us    # the scripted edges are on the extended clock
        out = []
        while self._edges and self._edges[0][0] <= now_us:
            t_us, pressed = self._edges.pop(0)
            self._level = pressed
            out.append((pressed, t_us))
        return out

    def send(self, data):
        self.radio.send(data, self.camera)

    def receive(self):
        got = self.radio.receive()
        return None if got is None else got[0]


def script(board, command, now_us):
    if command == b"press":
        board.script_press(now_us, PRESS_US)
    elif command == b"double":
        board.script_press(now_us, PRESS_US)
        board.script_press(now_us + PRESS_US + GAP_US, PRESS_US)
    elif command == b"hold":
        board.script_press(now_us, 3200000)


def main(text, radio_port, control_port):
    try:
        record = pairing_file.parse(text)
    except pairing_file.PairingError as exc:
        print("error %s" % exc)
        return 1
    board = HostBoard(text, radio_port, resolve(record.host, record.port))
    control = UdpSocket("127.0.0.1", control_port)
    # Extended time = the tick's own count, so printed times compare across processes.
    app = PodApp(board, record, start_us=board.true_us)
    gestures_seen = 0
    shown_seen = 0
    print("ready %d" % app.now_us())
    while True:
        got = control.receive()
        if got is not None:
            if got[0] == b"quit":
                break
            script(board, got[0], app.now_us())
        app.step()
        while gestures_seen < len(app.gestures):
            name, t_us = app.gestures[gestures_seen]
            print("gesture %s %d" % (name, t_us))
            gestures_seen += 1
        if shown_seen < len(app.shown_changes):
            set_us = _ticks_us()   # the LED and motor were set by the step just done
            while shown_seen < len(app.shown_changes):
                pattern, t_us = app.shown_changes[shown_seen]
                print("shown %s %d %d" % (pattern, t_us, set_us))
                shown_seen += 1
        if hasattr(sys.stdout, "flush"):
            sys.stdout.flush()
        _sleep_ms(1)
    print("rejected %s" % ",".join("%s=%d" % (k, v) for k, v in sorted(app.role.rejected.items())))
    return 0
