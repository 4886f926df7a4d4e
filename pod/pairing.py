"""The pod's pairing record, link.json (docs/link.md §1, docs/pod.md "Pairing file").

{"pod_id", "link_id", "secret", "camera_id", "camera_address"}: link_id (4 bytes) and
secret (32 bytes) in hex, camera_address "host:port". A mistake in the file is the
wearer's or the provisioner's, so every problem is one PairingError with a one-line
message naming the field, never a traceback.
"""
import json

from device.link import frame as fr

FIELDS = ("pod_id", "link_id", "secret", "camera_id", "camera_address")
HEX_DIGITS = "0123456789abcdefABCDEF"


class PairingError(Exception):
    pass


class PodPairing:
    """The parsed record: `pairing` (device/link/frame.Pairing), camera_id, host, port."""

    def __init__(self, pairing, camera_id, host, port, gestures=None):
        self.pairing = pairing
        self.camera_id = camera_id
        # The camera's own button timings (its policy.toml), so a pod hold is the camera's
        # hold: {"debounce_us", "double_press_window_us", "hold_us"}; None: the defaults.
        self.gestures = gestures
        self.host = host
        self.port = port

    @property
    def camera_address(self):
        return "%s:%d" % (self.host, self.port)


def _hex_field(record, name, length):
    value = record[name]
    if not isinstance(value, str) or len(value) != 2 * length or any(c not in HEX_DIGITS for c in value):
        raise PairingError("link.json: %s must be %d hex digits" % (name, 2 * length))
    out = bytearray(length)
    for i in range(length):
        out[i] = int(value[2 * i:2 * i + 2], 16)
    return bytes(out)


def parse_address(text):
    """'host:port' -> (host, port); PairingError if it is not one."""
    if not isinstance(text, str) or text.count(":") != 1:
        raise PairingError("link.json: camera_address must be \"host:port\"")
    host, port = text.split(":")
    if not host or len(host) > 253 or any(c <= " " or c > "~" for c in host):
        raise PairingError("link.json: camera_address has no valid host")
    if not port or any(c not in "0123456789" for c in port) or len(port) > 5 or not 1 <= int(port) <= 65535:
        raise PairingError("link.json: camera_address port must be 1..65535")
    return host, int(port)


def parse(text):
    """The PodPairing in `text` (link.json's contents); raises PairingError."""
    if text is None:
        raise PairingError("link.json: no pairing file; pair the pod (bwc pod pair) and copy link.json")
    try:
        record = json.loads(text)
    except ValueError:
        raise PairingError("link.json: not valid JSON")
    if not isinstance(record, dict):
        raise PairingError("link.json: must be a JSON object")
    for name in FIELDS:
        if name not in record:
            raise PairingError("link.json: missing field %s" % name)
    pod_id = record["pod_id"]
    problem = fr.check_pod_id(pod_id)
    if problem:
        raise PairingError("link.json: pod_id: %s" % problem)
    link_id = _hex_field(record, "link_id", 4)
    secret = _hex_field(record, "secret", 32)
    if fr.link_id_of(secret) != link_id:
        raise PairingError("link.json: link_id does not match the secret (a damaged or mixed-up record; re-pair)")
    camera_id = record["camera_id"]
    if not isinstance(camera_id, str) or not 1 <= len(camera_id) <= 64 or any(c <= " " or c > "~" for c in camera_id):
        raise PairingError("link.json: camera_id must be 1..64 printable characters")
    host, port = parse_address(record["camera_address"])
    return PodPairing(fr.Pairing(pod_id, secret), camera_id, host, port, _gestures(record.get("gestures")))


GESTURE_KEYS = ("debounce_us", "double_press_window_us", "hold_us")


def _gestures(value):
    if value is None:
        return None
    if not isinstance(value, dict) or sorted(value) != sorted(GESTURE_KEYS):
        raise PairingError("link.json: gestures must hold exactly %s" % ", ".join(GESTURE_KEYS))
    for key in GESTURE_KEYS:
        v = value[key]
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 30000000:
            raise PairingError("link.json: gestures.%s must be whole microseconds, 0..30000000" % key)
    # The decoder's own rules (device/gestures.py), checked now for a one-line error.
    if not value["debounce_us"] < value["double_press_window_us"] or not value["debounce_us"] < 1000000 <= value["hold_us"]:
        raise PairingError("link.json: gestures: need debounce_us < double_press_window_us and debounce_us < 1 s <= hold_us")
    return value


def record_text(pod_id, secret, camera_id, camera_address, gestures=None):
    """link.json's text (bwc pod pair, the simulator, tests). `gestures`: the camera's button
    timings (GESTURE_KEYS), so the pod decodes a hold as the camera would."""
    record = {"pod_id": pod_id, "link_id": _hex(fr.link_id_of(secret)), "secret": _hex(secret),
              "camera_id": camera_id, "camera_address": camera_address}
    if gestures is not None:
        record["gestures"] = gestures
    return json.dumps(record)


def _hex(data):
    return "".join("%02x" % b for b in data)
