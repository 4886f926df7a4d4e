"""pod/ble_aioble.py against a fake aioble with the documented API: Service,
Characteristic(write/notify/capture), register_services, advertise -> connection,
written() -> (connection, data) with capture, notify(connection, data)."""
import asyncio

from device.link import frame as fr
from device.link import roles
from device.link.endpoint import ReservedCounter
from pod import ble_aioble
from pod import pairing as pf
from pod.app import PodApp
from pod.board import MemoryStore
from pod.board_fake import FakeBoard
from pod.sim import TEST_SECRET


class FakeBluetooth:
    class UUID(str):
        pass


class FakeConnection:
    def __init__(self):
        self.connected = True

    def is_connected(self):
        return self.connected


class FakeAioble:
    def __init__(self):
        self.registered = []
        self.notified = []
        self.connection = FakeConnection()
        self.advertised = []
        test = self

        class Service:
            def __init__(self, uuid):
                self.uuid = uuid
                self.characteristics = []

        class Characteristic:
            def __init__(self, service, uuid, read=False, write=False, write_no_response=False,
                         notify=False, indicate=False, initial=None, capture=False):
                service.characteristics.append(self)
                self.uuid, self.write, self.notify_ok, self.capture = uuid, write or write_no_response, notify, capture
                self.queue = asyncio.Queue() if self.write else None

            async def written(self, timeout_ms=None):
                return await self.queue.get()

            def notify(self, connection, data=None):
                assert self.notify_ok and connection is test.connection
                test.notified.append(bytes(data))

        self.Service = Service
        self.Characteristic = Characteristic

    def register_services(self, *services):
        self.registered.extend(services)

    async def advertise(self, interval_us, name=None, services=None, **kw):
        self.advertised.append((interval_us, name, services))
        if self.advertised[1:]:
            await asyncio.sleep(3600)    # the test is over before a second connection
        return self.connection


class BleBoard(FakeBoard):
    def __init__(self, radio, **kw):
        FakeBoard.__init__(self, **kw)
        self.radio = radio

    def send(self, data):
        self.radio.send(data)

    def receive(self):
        return self.radio.receive()


def test_service_layout():
    fake = FakeAioble()
    radio = ble_aioble.BleRadio("pod-1", fake, FakeBluetooth)
    (service,) = fake.registered
    assert service.uuid == ble_aioble.SERVICE_UUID
    rx, tx = service.characteristics
    assert rx.uuid == ble_aioble.CAMERA_TO_POD_UUID and rx.write and rx.capture
    assert tx.uuid == ble_aioble.POD_TO_CAMERA_UUID and tx.notify_ok
    radio.send(b"lost")     # nobody connected: dropped, no exception
    assert radio.dropped == 1 and fake.notified == []


def test_frames_flow_both_ways_and_the_link_comes_up():
    async def scenario():
        fake = FakeAioble()
        radio = ble_aioble.BleRadio("pod-1", fake, FakeBluetooth)
        task = asyncio.ensure_future(radio.run())
        await asyncio.sleep(0)
        assert radio.connection is fake.connection
        text = pf.record_text("pod-1", TEST_SECRET, "cam-1", "ble:1")
        board = BleBoard(radio, pairing_text=text)
        app = PodApp(board, pf.parse(text), 0)
        camera = roles.CameraRole(fr.Pairing("pod-1", TEST_SECRET), ReservedCounter(MemoryStore()))
        status = {"state": "buffering", "record_led": False, "faults": ()}
        rx = fake.registered[0].characteristics[0]
        for t_us in range(0, 2000000, 100000):
            board.set_time(t_us)
            app.step(app.now_us())
            while fake.notified:          # pod -> camera: notifications
                data = fake.notified.pop(0)
                try:
                    role, counter = roles.route(data, {camera.link.pairing.link_id: camera})
                    role.receive(data, counter, "ble", t_us)
                except fr.LinkReject:
                    pass
            beacon = camera.beacon(status, t_us)
            if beacon is not None:        # camera -> pod: a write on the characteristic
                await rx.queue.put((fake.connection, beacon))
                await asyncio.sleep(0)
        task.cancel()
        return app, camera

    app, camera = asyncio.run(scenario())
    assert camera.address == "ble" and camera.link.link_up(1900000)
    assert app.shown == roles.BUFFERING and app.role.rejected == {}
