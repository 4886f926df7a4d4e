"""A real pod process (CPython or MicroPython) and a CameraRole in this process, over UDP
on 127.0.0.1; wall-time latencies measured on CLOCK_MONOTONIC, which both interpreters'
tick reads on Linux."""
import os
import queue
import select
import socket
import subprocess
import sys
import threading
import time

from device.link import frame as fr
from device.link import roles
from device.link.endpoint import ReservedCounter
from pod import pairing as pf
from pod.board import MemoryStore
from pod.sim import TEST_SECRET
from pod.udp import UdpSocket
from micropython_support import require_micropython

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def now_us():
    return time.monotonic_ns() // 1000


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


class Loopback:
    def __init__(self, interpreter):
        self.sock = UdpSocket("127.0.0.1", 0)
        self.camera = roles.CameraRole(fr.Pairing("pod-1", TEST_SECRET), ReservedCounter(MemoryStore()))
        self.status = {"state": "buffering", "record_led": False, "faults": ()}
        text = pf.record_text("pod-1", TEST_SECRET, "cam-1", "127.0.0.1:%d" % self.sock.port)
        self.radio_port, self.control_port = free_port(), free_port()
        code = ("import sys\nsys.path.insert(0, %r)\nfrom pod import host\nhost.main(%r, %d, %d)\n"
                % (REPO, text, self.radio_port, self.control_port))
        if interpreter == "micropython":
            argv = [require_micropython(), "-c", code]
        else:
            argv = [sys.executable, "-u", "-c", code]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.control = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.next_beacon_us = 0
        self.beacons_on = True
        self.acted = []            # [(gesture, receive_us)]
        self.beacons = []          # [(sent_us, record_led)]
        self.pod_events = []       # stdout lines, split

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.split())

    def command(self, what):
        self.control.sendto(what, ("127.0.0.1", self.control_port))

    def beacon(self):
        t = now_us()
        data = self.camera.beacon(self.status, t)
        if data is not None:
            self.beacons.append((t, self.status["record_led"]))
            self.sock.send(data, self.camera.address)
        self.next_beacon_us = t + roles.BEACON_US

    def set_record_led(self, on):
        self.status["state"] = "recording" if on else "buffering"
        self.status["record_led"] = on
        self.beacon()              # "at once on every state or record-LED change"

    def pump(self, want, timeout_s=5.0):
        """Serve the camera side until a pod stdout line starting with `want` arrives
        (want None: for timeout_s)."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            select.select([self.sock.sock], [], [], 0.0005)
            while True:
                got = self.sock.receive()
                if got is None:
                    break
                data, sender = got
                t = now_us()
                try:
                    role, counter = roles.route(data, {self.camera.link.pairing.link_id: self.camera})
                    acted = role.receive(data, counter, sender, t)
                except fr.LinkReject:
                    continue
                if acted is not None:
                    self.acted.append((acted[0], t))
                    self.on_gesture(acted[0])
            if self.beacons_on and self.camera.address is not None and now_us() >= self.next_beacon_us:
                self.beacon()
            try:
                while True:
                    words = self.lines.get_nowait()
                    self.pod_events.append(words)
                    if want is not None and words[:len(want)] == want:
                        return words
            except queue.Empty:
                pass
        if want is None:
            return None
        raise AssertionError("no %r from the pod within %.1f s; its stderr: %s" % (
            want, timeout_s, self._stderr()) + " events: %r" % self.pod_events[-6:])

    def on_gesture(self, name):
        if name == "double_press":
            self.set_record_led(True)

    def _stderr(self):
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stderr.read()[-2000:]

    def close(self):
        self.command(b"quit")
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.sock.close()
        self.control.close()


def run_trials(interpreter, trials):
    """(press->camera latencies us, beacon->LED latencies us, the loopback)."""
    lb = Loopback(interpreter)
    press_us, led_us = [], []
    try:
        lb.pump(["ready"])
        lb.pump(["shown", "buffering"])
        for _ in range(trials):
            acted_before = len(lb.acted)
            command_s = time.monotonic()
            lb.command(b"double")
            words = lb.pump(["gesture", "double_press"])
            decoded_us = int(words[2])
            # The camera acted (and sent its record_led beacon) inside pump().
            words = lb.pump(["shown", "recording"])
            name, received_us = lb.acted[acted_before]
            assert name == "double_press"
            press_us.append(received_us - decoded_us)
            led_beacon_us = [t for t, on in lb.beacons if on][-1]
            # Recording shown only after the beacon that said record_led.
            assert int(words[2]) >= led_beacon_us
            led_us.append(int(words[3]) - led_beacon_us)
            lb.set_record_led(False)
            sent_us = lb.beacons[-1][0]
            words = lb.pump(["shown", "buffering"])
            led_us.append(int(words[3]) - sent_us)
            # The scripted second release comes 280 ms after the command: a new double
            # press must start after it.
            lb.pump(None, max(0.0, command_s + 0.32 - time.monotonic()))
    finally:
        lb.close()
    return press_us, led_us, lb
