"""Writes frames.json: pod-link keys and frames (docs/link.md §2, §3) from fixed inputs, and
frames each receiver check of §4 refuses. Run `python tests/vectors/link/generate.py` to
regenerate; tests/unit/test_link_vectors.py checks the file against the code on CPython and
on MicroPython, so a change to either shows."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", ".."))

from device.link import frame as fr  # noqa: E402

SECRET = bytes(range(0x20, 0x40))
OTHER_SECRET = bytes(range(0x40, 0x60))
POD_ID = "pod-1"


def build():
    p = fr.Pairing(POD_ID, SECRET)
    P, C = fr.POD_TO_CAMERA, fr.CAMERA_TO_POD
    keys = {"P": {"enc": p._enc[P].hex(), "mac": p._mac[P].hex()},
            "C": {"enc": p._enc[C].hex(), "mac": p._mac[C].hex()}}
    frames = []

    def add(name, direction, counter, kind, echo, fields):
        body = fr.encode_body(kind, echo, fields)
        frames.append({"name": name, "direction": "P" if direction == P else "C", "counter": counter,
                       "type": kind, "echo": echo, "fields": list(fields), "body": body.hex(),
                       "frame": p.seal(direction, counter, body).hex()})

    add("heartbeat", P, 1, fr.HEARTBEAT, 0, ())
    add("gesture_double_press", P, 4097, fr.GESTURE, 8192, (2, 4097, 35))
    add("gesture_hold_retry", P, 4100, fr.GESTURE, 8193, (3, 4098, 3135))
    add("beacon_recording", C, 8193, fr.BEACON, 4100, (2, 1, 420, 0, 312, 4098))
    add("beacon_faults", C, 8194, fr.BEACON, 4100,
        (2, 0, fr.NO_MEDIA, fr.faults_mask(["camera_lost", "battery_low"]), fr.BATTERY_UNKNOWN, 0))
    add("counter_max", C, fr.MAX_COUNTER, fr.BEACON, 0, (1, 0, fr.NO_MEDIA, 0, 0, 0))

    good = bytes.fromhex(frames[0]["frame"])
    other = fr.Pairing(POD_ID, OTHER_SECRET)
    flipped_tag = bytearray(good)
    flipped_tag[-1] ^= 1
    flipped_body = bytearray(good)
    flipped_body[14] ^= 0x80
    bad_type = p.seal(P, 2, bytes([0x7f]) + bytes(8))
    wrong_dir_type = p.seal(P, 3, fr.encode_body(fr.BEACON, 0, (1, 0, 0, 0, 0, 0)))
    bad_gesture = p.seal(P, 5, bytes([fr.GESTURE]) + bytes(8) + bytes([9]) + (1).to_bytes(8, "big") + bytes(2))
    long_body = p.seal(P, 6, fr.encode_body(fr.HEARTBEAT, 0, ()) + b"\x00")
    zero_counter = good[:6] + bytes(8) + good[14:]
    rejects = [
        {"name": "too_short", "receiver": "camera", "frame": good[:29].hex(), "reason": "malformed"},
        {"name": "too_long", "receiver": "camera", "frame": (good + bytes(49)).hex(), "reason": "malformed"},
        {"name": "version_2", "receiver": "camera", "frame": (b"\x02" + good[1:]).hex(), "reason": "version"},
        {"name": "pod_frame_to_pod", "receiver": "pod", "frame": good.hex(), "reason": "direction"},
        {"name": "other_pairing", "receiver": "camera", "frame": other.seal(P, 1, fr.encode_body(fr.HEARTBEAT, 0)).hex(),
         "reason": "unknown_link"},
        {"name": "tag_flipped", "receiver": "camera", "frame": bytes(flipped_tag).hex(), "reason": "bad_tag"},
        {"name": "ciphertext_flipped", "receiver": "camera", "frame": bytes(flipped_body).hex(), "reason": "bad_tag"},
        {"name": "counter_zero", "receiver": "camera", "frame": zero_counter.hex(), "reason": "malformed"},
        {"name": "unknown_type", "receiver": "camera", "frame": bad_type.hex(), "reason": "malformed"},
        {"name": "beacon_from_pod", "receiver": "camera", "frame": wrong_dir_type.hex(), "reason": "malformed"},
        {"name": "gesture_code_9", "receiver": "camera", "frame": bad_gesture.hex(), "reason": "malformed"},
        {"name": "heartbeat_one_byte_long", "receiver": "camera", "frame": long_body.hex(), "reason": "malformed"},
        {"name": "replayed", "receiver": "camera", "peer_counter": 1, "frame": good.hex(), "reason": "replay"},
    ]
    return {"pod_id": POD_ID, "secret": SECRET.hex(), "link_id": p.link_id.hex(), "keys": keys,
            "frames": frames, "rejects": rejects}


if __name__ == "__main__":
    with open(os.path.join(os.path.dirname(__file__), "frames.json"), "w") as f:
        json.dump(build(), f, indent=1, sort_keys=True)
        f.write("\n")
