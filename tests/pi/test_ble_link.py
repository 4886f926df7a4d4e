"""hal/pi/ble_link.py against a fake bleak with bleak's API: frames flow both ways over the
GATT characteristics, a dropped connection is retried, and nothing raises into the firmware.
(Untested on hardware: docs/link.md §9.)"""
from __future__ import annotations

import asyncio
import threading
import types

from hal.pi import ble_link


class FakeClient:
    instances: list["FakeClient"] = []

    def __init__(self, address, disconnected_callback=None):
        self.address, self._lost = address, disconnected_callback
        self.writes, self.notify = [], {}
        self.connected = threading.Event()
        self.loop = None
        FakeClient.instances.append(self)

    async def connect(self):
        self.loop = asyncio.get_running_loop()
        if len(FakeClient.instances) == 1:
            raise OSError("no pod in range")   # the first attempt fails: retried
        self.connected.set()

    async def start_notify(self, uuid, callback):
        self.notify[uuid] = callback

    async def write_gatt_char(self, uuid, data, response=True):
        self.writes.append((uuid, bytes(data), response))

    async def disconnect(self):
        self._lost(self)

    # the test's side
    def pod_sends(self, data):
        self.loop.call_soon_threadsafe(self.notify[ble_link.POD_TO_CAMERA_UUID], None, bytearray(data))

    def drop(self):
        self.loop.call_soon_threadsafe(self._lost, self)


def test_frames_flow_both_ways_and_a_drop_reconnects(monkeypatch):
    monkeypatch.setattr(ble_link, "RETRY_S", (0.01,))
    FakeClient.instances = []
    fake = types.SimpleNamespace(BleakClient=FakeClient)
    got, arrived = [], threading.Event()
    radio = ble_link.BleRadio("AA:BB:CC:DD:EE:FF", monotonic_us=lambda: 42, bleak_module=fake)
    radio.subscribe(lambda data, sender, t: (got.append((data, sender, t)), arrived.set()))
    radio.send(b"dropped: not connected yet", "pod")
    assert radio.wait_connected(5)
    client = FakeClient.instances[-1]
    assert len(FakeClient.instances) == 2 and client.address == "AA:BB:CC:DD:EE:FF"
    client.pod_sends(b"\x01pod frame")
    assert arrived.wait(5) and got == [(b"\x01pod frame", "ble:AA:BB:CC:DD:EE:FF", 42)]
    radio.send(b"\x01beacon", "ble:AA:BB:CC:DD:EE:FF")
    for _ in range(500):
        if client.writes:
            break
        threading.Event().wait(0.01)
    assert client.writes == [(ble_link.CAMERA_TO_POD_UUID, b"\x01beacon", False)]
    client.drop()
    for _ in range(500):
        if len(FakeClient.instances) >= 3 and FakeClient.instances[-1].connected.is_set():
            break
        threading.Event().wait(0.01)
    assert len(FakeClient.instances) >= 3 and radio.wait_connected(5)
    radio.close()


def test_uuids_match_the_pod():
    from pod import ble_aioble
    assert (ble_link.SERVICE_UUID, ble_link.CAMERA_TO_POD_UUID, ble_link.POD_TO_CAMERA_UUID) == (
        ble_aioble.SERVICE_UUID, ble_aioble.CAMERA_TO_POD_UUID, ble_aioble.POD_TO_CAMERA_UUID)
