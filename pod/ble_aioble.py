"""The pod link over BLE GATT on the Pico W, with aioble (docs/link.md §9, docs/pod.md "BLE").

The pod is the peripheral: it advertises one service with two characteristics,
camera->pod (written by the camera, write without response) and pod->camera (notified
by the pod). Each write or notification is one link frame (at most 78 bytes, so an MTU
of 81 or more; the camera asks for it). The transport carries bytes only; all security
is in the frames. Written against aioble's documented API; UNTESTED ON HARDWARE (tests
run it against a fake aioble). aioble is imported only when a radio is made on the Pico.
"""

SERVICE_UUID = "4f425743-0001-4c69-6e6b-2d706f642d31"
CAMERA_TO_POD_UUID = "4f425743-0002-4c69-6e6b-2d706f642d31"
POD_TO_CAMERA_UUID = "4f425743-0003-4c69-6e6b-2d706f642d31"
ADV_INTERVAL_US = 100000      # 100 ms: a camera reconnects within a few beacons
MAX_QUEUED = 16               # received frames waiting for the main loop; older dropped


class BleRadio:
    """send()/receive() for pod/app.PodApp's board; run() is the aioble task."""

    def __init__(self, name, aioble=None, bluetooth=None):
        if aioble is None:
            import aioble
            import bluetooth
        self._aioble = aioble
        uuid = bluetooth.UUID
        self.service = aioble.Service(uuid(SERVICE_UUID))
        self.rx = aioble.Characteristic(self.service, uuid(CAMERA_TO_POD_UUID), write=True,
                                        write_no_response=True, capture=True)
        self.tx = aioble.Characteristic(self.service, uuid(POD_TO_CAMERA_UUID), read=True, notify=True)
        aioble.register_services(self.service)
        self.name = name
        self.connection = None
        self.inbox = []
        self.dropped = 0

    def send(self, data):
        """Notify one frame to the connected camera; with none connected it is lost, which
        the link tolerates (retries, freshness)."""
        conn = self.connection
        if conn is None:
            self.dropped += 1
            return
        try:
            self.tx.notify(conn, data)
        except Exception:   # disconnected under us, or the stack's queue full: loss
            self.dropped += 1

    def receive(self):
        return self.inbox.pop(0) if self.inbox else None

    async def run(self):
        """Advertise, serve one camera until it disconnects, repeat."""
        while True:
            conn = await self._aioble.advertise(ADV_INTERVAL_US, name=self.name,
                                                services=[self._aioble_uuid()])
            self.connection = conn
            try:
                while conn.is_connected():
                    got = await self.rx.written()
                    if got is None:
                        break
                    _, data = got
                    if len(self.inbox) >= MAX_QUEUED:
                        self.inbox.pop(0)
                    self.inbox.append(bytes(data))
            except Exception:   # aioble raises on disconnect mid-wait: advertise again
                pass
            self.connection = None

    def _aioble_uuid(self):
        return self.service.uuid
