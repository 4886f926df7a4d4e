"""The pod's board on a Raspberry Pi Pico W (pod/board.py). Imports machine and network,
so it runs only on the Pico; check it with `micropython -c "compile(...)"` (tests do).
Untested on hardware.
"""
import os
import socket
import time

import machine
import network

from pod.board import AMBER, Board, GREEN, RED

# Pins (GPIO numbers). A two-colour LED (red + green, common cathode): amber is both.
PIN_BUTTON = 15      # to GND; internal pull-up, so pressed reads 0
PIN_LED_RED = 16
PIN_LED_GREEN = 17
PIN_MOTOR = 18       # through a transistor (a motor draws more than a GPIO gives)
MOTOR_PWM_HZ = 200
MOTOR_DUTY_U16 = 45000   # ~70 %: a coin motor at 3.3 V is felt through a uniform
MAX_EDGES = 32           # a bounce burst between two passes fits; more are dropped
COUNTER_FILE = "link_counter"
LINK_FILE = "link.json"
WIFI_FILE = "wifi.json"  # {"ssid": ..., "password": ...}: the camera's access point
UDP_PORT = 4771


class PicoWBoard(Board):
    def start_watchdog(self, timeout_ms):
        """The RP2040's hardware watchdog: feed() it every pass, or the pod resets."""
        return machine.WDT(timeout=timeout_ms)

    def __init__(self):
        self._button = machine.Pin(PIN_BUTTON, machine.Pin.IN, machine.Pin.PULL_UP)
        self._red = machine.Pin(PIN_LED_RED, machine.Pin.OUT, value=0)
        self._green = machine.Pin(PIN_LED_GREEN, machine.Pin.OUT, value=0)
        self._motor = machine.PWM(machine.Pin(PIN_MOTOR))
        self._motor.freq(MOTOR_PWM_HZ)
        self._motor.duty_u16(0)
        # Edges stamped in the interrupt handler: preallocated, no allocation in the IRQ.
        self._edge_ticks = [0] * MAX_EDGES
        self._edge_level = [0] * MAX_EDGES
        self._edge_count = 0
        self._button.irq(self._on_edge, machine.Pin.IRQ_FALLING | machine.Pin.IRQ_RISING)
        self._sock = None
        self._camera = None

    def _on_edge(self, pin):
        n = self._edge_count
        if n < MAX_EDGES:
            self._edge_ticks[n] = time.ticks_us()
            self._edge_level[n] = pin.value()
            self._edge_count = n + 1

    def connect(self, host, port):
        """Join the camera's Wi-Fi (wifi.json) and open the UDP socket to host:port."""
        import json
        with open(WIFI_FILE) as f:
            wifi = json.load(f)
        wlan = network.WLAN(network.STA_IF)
        wlan.active(True)
        wlan.connect(wifi["ssid"], wifi["password"])
        from pod.udp import UdpSocket, resolve
        self._sock = UdpSocket("0.0.0.0", UDP_PORT)
        self._camera = resolve(host, port)
        self.wlan = wlan

    # -- Board ------------------------------------------------------------------------
    def ticks_us(self):
        return time.ticks_us()

    def ticks_diff(self, new, old):
        return time.ticks_diff(new, old)

    def button_pressed(self):
        return self._button.value() == 0

    def button_edges(self, clock, now_us):
        state = machine.disable_irq()
        n = self._edge_count
        ticks = self._edge_ticks[:n]
        levels = self._edge_level[:n]
        self._edge_count = 0
        machine.enable_irq(state)
        return [(levels[i] == 0, clock.to_us(ticks[i], now_us)) for i in range(n)]

    def set_led(self, colour):
        self._red.value(1 if colour in (RED, AMBER) else 0)
        self._green.value(1 if colour in (GREEN, AMBER) else 0)

    def set_motor(self, on):
        self._motor.duty_u16(MOTOR_DUTY_U16 if on else 0)

    def send(self, data):
        if self._sock is not None:
            self._sock.send(data, self._camera)

    def receive(self):
        if self._sock is None:
            return None
        got = self._sock.receive()
        return None if got is None else got[0]

    def counter_store(self):
        return FlashCounter(COUNTER_FILE)

    def pairing_text(self):
        try:
            with open(LINK_FILE) as f:
                return f.read()
        except OSError:
            return None


class FlashCounter:
    """The link counter's reservation in a flash file: written to a temporary file and
    renamed over the old one, so a power cut leaves the old or the new value, never half.
    (littlefs on the Pico commits a rename atomically.)"""

    def __init__(self, path):
        self.path = path

    def read(self):
        """None only when the file does not exist (a new pairing). Anything unreadable is an
        error: starting again at 1 would reuse AES-CTR counters (docs/link.md §4)."""
        try:
            f = open(self.path)
        except OSError as exc:
            if exc.args and exc.args[0] == 2:   # ENOENT
                return None
            raise
        with f:
            return int(f.read().strip())   # ValueError: damaged; the pod refuses to send

    def write(self, value):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % value)
        os.rename(tmp, self.path)
