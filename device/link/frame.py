"""Pod link frames (docs/link.md §1-§3): pairing keys, bodies, sealing and opening.

`open_frame` runs checks 1-7 of docs/link.md §4 and raises LinkReject naming the first one
that fails; the session rules (replay, freshness) are device/link/endpoint.py's.
"""
import struct

from device.link import crypto

VERSION = 1
POD_TO_CAMERA = 0x50   # 'P'
CAMERA_TO_POD = 0x43   # 'C'
HEADER_BYTES = 14
TAG_BYTES = 16
MAX_BODY_BYTES = 48
MIN_FRAME_BYTES = HEADER_BYTES + 0 + TAG_BYTES
MAX_FRAME_BYTES = HEADER_BYTES + MAX_BODY_BYTES + TAG_BYTES
MAX_COUNTER = (1 << 63) - 1

HEARTBEAT = 0x01
GESTURE = 0x02
BEACON = 0x81
# type -> (direction, body length, struct format after type and echo)
_BODIES = {
    HEARTBEAT: (POD_TO_CAMERA, 9, ""),
    GESTURE: (POD_TO_CAMERA, 20, ">BQH"),
    BEACON: (CAMERA_TO_POD, 27, ">BBIHHQ"),
}
GESTURE_CODES = {1: "press", 2: "double_press", 3: "hold"}
GESTURE_NUMBERS = {"press": 1, "double_press": 2, "hold": 3}
STATES = ("off", "buffering", "recording")
NO_MEDIA = 0xFFFFFFFF
BATTERY_UNKNOWN = 0xFFFF
FAULT_BITS = ("camera_lost", "mic_failed", "storage", "storage_full", "battery_low",
              "storage_low", "clock_unset", "commit_stall", "pod_link")

POD_ID_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-"
LINK_ID_LABEL = b"OBWC-link-v1 id"
KEY_SALT = b"OBWC-link-v1"


class LinkReject(Exception):
    """A frame dropped without effect; `reason` is one of docs/link.md §4's names."""

    def __init__(self, reason, detail=""):
        super().__init__(reason if not detail else "%s: %s" % (reason, detail))
        self.reason = reason


def check_pod_id(pod_id):
    """None if `pod_id` is 1-16 of [a-z0-9-] starting with a letter, else the problem."""
    if not isinstance(pod_id, str) or not 1 <= len(pod_id) <= 16:
        return "a pod id is 1 to 16 characters"
    if not "a" <= pod_id[0] <= "z" or any(c not in POD_ID_CHARS for c in pod_id):
        return "a pod id is lower-case letters, digits and '-', starting with a letter"
    return None


def link_id_of(secret):
    return crypto.sha256(LINK_ID_LABEL + secret)[:4]


class Pairing:
    """One pod-camera pairing: its id and the four directional keys."""

    def __init__(self, pod_id, secret):
        problem = check_pod_id(pod_id)
        if problem:
            raise ValueError(problem)
        if not isinstance(secret, bytes) or len(secret) != 32:
            raise ValueError("a pairing secret is 32 bytes")
        self.pod_id = pod_id
        self.secret = secret
        self.link_id = link_id_of(secret)
        self._enc = {}
        self._mac = {}
        for d in (POD_TO_CAMERA, CAMERA_TO_POD):
            self._enc[d] = crypto.hkdf(secret, KEY_SALT, b"enc " + bytes([d]), 16)
            self._mac[d] = crypto.hkdf(secret, KEY_SALT, b"mac " + bytes([d]), 32)

    def seal(self, direction, counter, body):
        """The frame carrying `body` (bytes from encode_body) at `counter`."""
        if direction not in self._enc:
            raise ValueError("no such direction")
        if not 1 <= counter <= MAX_COUNTER:
            raise ValueError("counter out of range")
        if len(body) > MAX_BODY_BYTES:
            raise ValueError("body too long")
        header = bytes([VERSION, direction]) + self.link_id + struct.pack(">Q", counter)
        block = bytes([direction]) + self.link_id + struct.pack(">Q", counter) + b"\x00\x00\x00"
        frame = header + crypto.aes_ctr(self._enc[direction], block, body)
        return frame + crypto.hmac_sha256(self._mac[direction], frame)[:TAG_BYTES]

    def open(self, direction, frame):
        """Checks 5 and 7 for a frame already found to be this pairing's: (counter, body).
        The caller has run header() first."""
        data, tag = frame[:-TAG_BYTES], frame[-TAG_BYTES:]
        if not crypto.equal(crypto.hmac_sha256(self._mac[direction], data)[:TAG_BYTES], tag):
            raise LinkReject("bad_tag")
        counter = struct.unpack(">Q", frame[6:14])[0]
        block = bytes([direction]) + self.link_id + frame[6:14] + b"\x00\x00\x00"
        return counter, crypto.aes_ctr(self._enc[direction], block, data[HEADER_BYTES:])


def header(frame, expected_direction):
    """Checks 1-4 (length, version, direction) of a received frame: (link_id, counter)."""
    if not isinstance(frame, (bytes, bytearray)) or not MIN_FRAME_BYTES <= len(frame) <= MAX_FRAME_BYTES:
        raise LinkReject("malformed", "length")
    frame = bytes(frame)
    if frame[0] != VERSION:
        raise LinkReject("version")
    if frame[1] != expected_direction:
        raise LinkReject("direction")
    counter = struct.unpack(">Q", frame[6:14])[0]
    if not 1 <= counter <= MAX_COUNTER:
        raise LinkReject("malformed", "counter")
    return frame[2:6], counter


def encode_body(kind, echo, fields=()):
    """`fields` in the order of docs/link.md §3.1's table."""
    direction, length, fmt = _BODIES[kind]
    body = bytes([kind]) + struct.pack(">Q", echo)
    if fmt:
        body += struct.pack(fmt, *fields)
    if len(body) != length:
        raise ValueError("body length")
    return body


def decode_body(body, direction):
    """(type, echo, fields tuple), or LinkReject('malformed')."""
    if len(body) < 9:
        raise LinkReject("malformed", "short body")
    kind = body[0]
    spec = _BODIES.get(kind)
    if spec is None:
        raise LinkReject("malformed", "type 0x%02x" % kind)
    want_direction, length, fmt = spec
    if want_direction != direction:
        raise LinkReject("malformed", "type in the wrong direction")
    if len(body) != length:
        raise LinkReject("malformed", "body length")
    echo = struct.unpack(">Q", body[1:9])[0]
    fields = struct.unpack(fmt, body[9:]) if fmt else ()
    if kind == GESTURE:
        if fields[0] not in GESTURE_CODES:
            raise LinkReject("malformed", "gesture code")
        if not 1 <= fields[1] <= MAX_COUNTER:
            raise LinkReject("malformed", "gesture_ref")
    elif kind == BEACON:
        if fields[0] > 2:
            raise LinkReject("malformed", "state")
        if fields[1] > 1:
            raise LinkReject("malformed", "record_led")
        if fields[5] > MAX_COUNTER:
            raise LinkReject("malformed", "gesture_ack")
    if echo > MAX_COUNTER:
        raise LinkReject("malformed", "echo")
    return kind, echo, fields


def faults_mask(names):
    mask = 0
    for name in names:
        if name in FAULT_BITS:
            mask |= 1 << FAULT_BITS.index(name)
    return mask


def fault_names(mask):
    return [name for i, name in enumerate(FAULT_BITS) if mask & (1 << i)]
