"""The pod link over BLE GATT on the camera (docs/link.md §9), with bleak as the central.

UNTESTED ON HARDWARE: written against bleak's documented API (BleakClient with a
disconnected_callback, connect, start_notify, write_gatt_char, disconnect) and tested with a
fake bleak. The pod is the peripheral (pod/ble_aioble.py): the camera writes frames to the
camera->pod characteristic and hears pod frames as notifications of the pod->camera one. A
link frame is at most 78 bytes, so the ATT MTU must be at least 81 (BlueZ negotiates it).

bleak runs on asyncio; this keeps its own event loop on a daemon thread, so the firmware
sees a plain Radio. A lost connection is retried with back-off for as long as the radio is
open; meanwhile frames are dropped, as on any radio, and the link's own rules (§4) notice.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time

from hal.radio import MAX_DATAGRAM_BYTES, DatagramCallback, Radio

log = logging.getLogger(__name__)

# Must match pod/ble_aioble.py.
SERVICE_UUID = "4f425743-0001-4c69-6e6b-2d706f642d31"
CAMERA_TO_POD_UUID = "4f425743-0002-4c69-6e6b-2d706f642d31"
POD_TO_CAMERA_UUID = "4f425743-0003-4c69-6e6b-2d706f642d31"
RETRY_S = (0.5, 1.0, 2.0, 4.0, 8.0)


class BleRadio(Radio):
    def __init__(self, pod_address: str, monotonic_us=None, bleak_module=None) -> None:
        """`pod_address`: the pod's Bluetooth address; `bleak_module`: bleak itself (tests pass a fake)."""
        if bleak_module is None:
            import bleak as bleak_module   # only on a board that uses BLE
        self._bleak = bleak_module
        self._pod = pod_address
        self._monotonic_us = monotonic_us or (lambda: time.monotonic_ns() // 1000)
        self._callbacks: list[DatagramCallback] = []
        self._client = None
        self._closed = False
        self._connected = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=f"ble-radio {pod_address}", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return "ble:camera"

    def send(self, payload: bytes, to: str) -> None:
        client = self._client
        if self._closed or client is None or not self._connected.is_set() or len(payload) > MAX_DATAGRAM_BYTES:
            return
        future = asyncio.run_coroutine_threadsafe(
            client.write_gatt_char(CAMERA_TO_POD_UUID, bytes(payload), response=False), self._loop)
        future.add_done_callback(self._sent)

    @staticmethod
    def _sent(future) -> None:
        if future.exception() is not None:   # a write on a dropping link: lost, like a datagram
            log.debug("BLE write failed: %s", future.exception())

    def subscribe(self, callback: DatagramCallback) -> None:
        self._callbacks.append(callback)

    def close(self) -> None:
        self._closed = True
        asyncio.run_coroutine_threadsafe(self._disconnect(), self._loop)

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    # -- the loop thread --------------------------------------------------------------
    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._keep_connected())

    async def _keep_connected(self) -> None:
        attempt = 0
        while not self._closed:
            lost = asyncio.Event()
            try:
                client = self._bleak.BleakClient(self._pod, disconnected_callback=lambda _c: lost.set())
                await client.connect()
                await client.start_notify(POD_TO_CAMERA_UUID, self._notified)
                self._client, attempt = client, 0
                self._connected.set()
                await lost.wait()
            except Exception as exc:  # noqa: BLE001 - no pod in range, adapter busy ...: try again
                log.info("BLE link to %s: %s", self._pod, exc)
            self._connected.clear()
            self._client = None
            if self._closed:
                break
            await asyncio.sleep(RETRY_S[min(attempt, len(RETRY_S) - 1)])
            attempt += 1

    def _notified(self, _characteristic, data: bytearray) -> None:
        received_us = self._monotonic_us()
        for callback in list(self._callbacks):
            try:
                callback(bytes(data), "ble:" + self._pod, received_us)
            except Exception:  # noqa: BLE001 - a handler's bug must not end the link
                log.exception("pod frame handler failed")

    async def _disconnect(self) -> None:
        client = self._client
        if client is not None:
            try:
                await client.disconnect()
            except Exception:  # noqa: BLE001
                pass
