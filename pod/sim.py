"""A pod and a camera's link role on one virtual clock (tests, the simulator, and the
MicroPython self-test): pod/app.PodApp on a FakeBoard, device/link/roles.CameraRole
answering it, datagrams carried with a fixed delay. Runs under both interpreters.
"""
from device.link import frame as fr
from device.link import roles
from device.link.endpoint import ReservedCounter
from pod import pairing as pairing_file
from pod.app import PodApp
from pod.board import MemoryStore
from pod.board_fake import FakeBoard
from pod.clock import PERIOD_2_30_US

TEST_SECRET = bytes(range(32))


class LinkSim:
    def __init__(self, period_us=PERIOD_2_30_US, start_us=0, delay_us=2000, secret=TEST_SECRET):
        text = pairing_file.record_text("pod-1", secret, "cam-1", "127.0.0.1:4770")
        self.board = FakeBoard(period_us, start_us, text)
        self.app = PodApp(self.board, pairing_file.parse(self.board.pairing_text()), start_us)
        self.camera = roles.CameraRole(fr.Pairing("pod-1", secret), ReservedCounter(MemoryStore()))
        self.status = {"state": "buffering", "record_led": False, "faults": ()}
        self.beacons_on = True      # False: the camera goes silent (out of range, jammed)
        self.delay_us = delay_us
        self.now_us = start_us
        self._next_beacon_us = start_us
        self._air = []              # [(arrive_us, "pod" or "camera", bytes)]
        self.camera_gestures = []   # [(name, press_us, receive_us)]
        self.beacons_sent = []      # [(sent_us, status copy)]
        self.rejected = {}

    def set_status(self, **changes):
        for k in changes:
            self.status[k] = changes[k]
        self._next_beacon_us = self.now_us   # "at once on every state or record-LED change"

    def _beacon(self, t_us):
        if not self.beacons_on:
            return
        data = self.camera.beacon(self.status, t_us)
        if data is not None:
            self.beacons_sent.append((t_us, dict(self.status)))
            self._air.append((t_us + self.delay_us, "pod", data))

    def _next_event_us(self):
        times = [self.app.next_deadline_us(), self.board.next_edge_us()]
        if self.beacons_on and self.camera.address is not None:
            times.append(self._next_beacon_us)
        for arrive_us, _, _ in self._air:
            times.append(arrive_us)
        best = None
        for t in times:
            if t is not None and (best is None or t < best):
                best = t
        return best

    def run_until(self, end_us):
        """Advance both sides to end_us, handling every event on the way in time order."""
        while True:
            t = self._next_event_us()
            if t is None or t > end_us:
                break
            self._at(max(t, self.now_us))
        self._at(end_us)

    def _at(self, t_us):
        self.now_us = t_us
        self.board.set_time(t_us)
        later = []
        for item in self._air:
            arrive_us, to, data = item
            if arrive_us > t_us:
                later.append(item)
            elif to == "pod":
                self.board.inbox.append(data)
            else:
                self._camera_receive(data, t_us)
        self._air = later
        self.app.step(self.app.now_us())
        for data in self.board.take_sent():
            self._air.append((t_us + self.delay_us, "camera", data))
        if self.camera.address is not None and t_us >= self._next_beacon_us:
            self._beacon(t_us)
            self._next_beacon_us = t_us + roles.BEACON_US

    def _camera_receive(self, data, t_us):
        try:
            role, counter = roles.route(data, {self.camera.link.pairing.link_id: self.camera})
            acted = role.receive(data, counter, "pod", t_us)
        except fr.LinkReject as exc:
            self.rejected[exc.reason] = self.rejected.get(exc.reason, 0) + 1
            return
        if acted is not None:
            name, press_us = acted
            self.camera_gestures.append((name, press_us, t_us))
            if name == "double_press":
                self.status["state"] = "recording"
                self.status["record_led"] = True
            elif name == "hold":
                self.status["state"] = "buffering"
                self.status["record_led"] = False
            self._next_beacon_us = t_us   # answer a fresh gesture at once
