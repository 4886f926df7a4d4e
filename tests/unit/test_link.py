"""The pod link (docs/link.md §1-§6): primitives against references, the receiver's checks,
freshness across reboots, gestures acted on once, and what the pod may show."""
from __future__ import annotations

import hashlib
import hmac
import pathlib

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

import link_vector_check
from device.link import crypto
from device.link import frame as fr
from device.link.endpoint import ReservedCounter
from device.link.roles import LINK_LOST, RECORDING, FAULT, BUFFERING, CameraRole, PodRole, route
from micropython_support import run_micropython

REPO = str(pathlib.Path(__file__).resolve().parents[2])
SECRET = bytes(range(32))
S = 1_000_000


class Store:
    def __init__(self, value=None):
        self.value, self.writes = value, 0

    def read(self):
        return self.value

    def write(self, value):
        self.value, self.writes = value, self.writes + 1


def pair(pod_store=None, camera_store=None):
    p = fr.Pairing("pod-1", SECRET)
    pod = PodRole(p, ReservedCounter(pod_store or Store()), 0)
    cam = CameraRole(p, ReservedCounter(camera_store or Store()))
    return p, pod, cam


STATUS_REC = {"state": "recording", "record_led": True, "committed_age_ms": 300, "faults": (), "battery_min": 90}


def exchange(pod, cam, t_us, status=STATUS_REC, latency_us=1000):
    """One round: the pod's due frames reach the camera, then one beacon reaches the pod.
    Returns the gestures the camera decoded."""
    got = []
    for f in pod.poll(t_us):
        role, counter = route(f, {cam.link.pairing.link_id: cam})
        try:
            g = role.receive(f, counter, "pod-addr", t_us + latency_us)
        except fr.LinkReject:
            continue
        if g:
            got.append(g)
    b = cam.beacon(status, t_us + 2 * latency_us)
    if b is not None:
        pod.receive(b, t_us + 3 * latency_us)
    return got


# -- primitives --------------------------------------------------------------------------
@given(st.binary(max_size=200), st.binary(max_size=300))
def test_hmac_matches_the_standard_library(key, data):
    assert crypto.hmac_sha256(key, data) == hmac.new(key, data, hashlib.sha256).digest()


def test_hkdf_matches_rfc5869_case_1():
    okm = crypto.hkdf(bytes.fromhex("0b" * 22), bytes.fromhex("000102030405060708090a0b0c"),
                      bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"), 42)
    assert okm.hex() == ("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c"
                         "5db02d56ecc4c5bf34007208d5b887185865")


@given(st.binary(min_size=16, max_size=16), st.binary(min_size=13, max_size=13), st.binary(max_size=100))
def test_aes_ctr_matches_openssl(key, prefix, data):
    block = prefix + bytes(3)
    ours = crypto.aes_ctr(key, block, data)
    assert ours == Cipher(algorithms.AES(key), modes.CTR(block)).encryptor().update(data)
    assert crypto.aes_ctr(key, block, ours) == data


def test_constant_time_equal():
    assert crypto.equal(b"abc", b"abc") and not crypto.equal(b"abc", b"abd") and not crypto.equal(b"ab", b"abc")


# -- vectors, on both interpreters -------------------------------------------------------------
def test_vectors_hold_on_cpython():
    checked, problems = link_vector_check.check(REPO)
    assert checked == 19 and problems == []


def test_vectors_hold_on_micropython():
    result = run_micropython([str(pathlib.Path(__file__).with_name("link_vector_check.py")), REPO])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "checked 19 problems 0"


def test_vectors_file_is_what_the_generator_writes():
    import importlib.util
    spec = importlib.util.spec_from_file_location("gen", pathlib.Path(REPO, "tests/vectors/link/generate.py"))
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    import json
    assert json.loads(pathlib.Path(REPO, "tests/vectors/link/frames.json").read_text()) == json.loads(
        json.dumps(gen.build()))


# -- counters --------------------------------------------------------------------------------
def test_counter_is_reserved_before_use_and_resumes_above_it_after_a_reboot():
    store = Store()
    c = ReservedCounter(store, block=10)
    assert store.value == 11 and [c.take() for _ in range(10)] == list(range(1, 11))
    assert c.take() == 11 and store.value == 21   # written before 11 went out
    again = ReservedCounter(store, block=10)      # reboot: never a value used before
    assert again.take() == 21 and store.value == 31


def test_a_counter_that_cannot_be_stored_sends_nothing():
    class Broken(Store):
        def write(self, value):
            raise OSError("flash full")
    with pytest.raises(OSError):
        ReservedCounter(Broken())


# -- linking up and freshness --------------------------------------------------------------
def test_two_exchanges_bring_the_link_up_and_the_pod_shows_recording():
    _, pod, cam = pair()
    assert pod.shown(0) == LINK_LOST
    exchange(pod, cam, 0)                # pod heartbeat: authentic but stale to the camera
    assert not cam.link.link_up(3000)
    assert pod.shown(3000) == RECORDING   # the camera's beacon echoed it: fresh to the pod
    exchange(pod, cam, S // 2)
    assert cam.link.link_up(S // 2 + 3000) and cam.link_change(S // 2 + 3000) == "restored"


def test_the_pod_never_shows_recording_longer_than_the_freshness_bound():
    _, pod, cam = pair()
    for i in range(4):
        exchange(pod, cam, i * S // 2)
    last = 3 * S // 2
    assert pod.shown(last + 3000) == RECORDING
    info_us = pod.link.info_us
    assert pod.shown(info_us + 1_500_000) == RECORDING
    assert pod.shown(info_us + 1_500_001) == LINK_LOST
    assert cam.link_change(last + 3000) == "restored" and cam.link_change(last + 2 * S) == "lost"


@pytest.mark.parametrize("status, shown", [
    (dict(STATUS_REC), RECORDING),
    (dict(STATUS_REC, record_led=False), FAULT),            # media stopped reaching the card
    (dict(STATUS_REC, record_led=False, committed_age_ms=None), BUFFERING),   # not on the card yet
    (dict(STATUS_REC, faults=("battery_low",)), RECORDING),   # a warning never hides recording
    (dict(STATUS_REC, record_led=False, faults=("battery_low",)), FAULT),
    (dict(state="buffering", record_led=False, committed_age_ms=None, faults=(), battery_min=None), BUFFERING),
])
def test_what_the_pod_shows_is_what_the_camera_reported(status, shown):
    _, pod, cam = pair()
    exchange(pod, cam, 0, status)
    assert pod.shown(3000) == shown


def test_a_beacon_recorded_before_the_pod_rebooted_is_stale_after_it():
    pod_store = Store()
    p, pod, cam = pair(pod_store)
    for i in range(3):
        exchange(pod, cam, i * S // 2)
    old = cam.beacon(STATUS_REC, 2 * S)
    pod2 = PodRole(p, ReservedCounter(pod_store), 10 * S)   # the pod reboots
    assert pod2.receive(old, 10 * S) is None and pod2.rejected == {"stale": 1}
    assert pod2.shown(10 * S) == LINK_LOST


def test_a_gesture_recorded_before_the_camera_rebooted_is_never_acted_on():
    cam_store = Store()
    p, pod, cam = pair(camera_store=cam_store)
    for i in range(3):
        exchange(pod, cam, i * S // 2)
    hold = pod.gesture("hold", 3 * S // 2 - 3 * S, 3 * S // 2)   # a recorded stop
    cam2 = CameraRole(p, ReservedCounter(cam_store))              # the camera reboots
    _, counter = route(hold, {p.link_id: cam2})
    with pytest.raises(fr.LinkReject) as rejected:
        cam2.receive(hold, counter, "attacker", 20 * S)
    assert rejected.value.reason == "stale"


def test_a_replayed_frame_is_refused_and_changes_nothing():
    p, pod, cam = pair()
    for i in range(3):
        exchange(pod, cam, i * S // 2)
    g = pod.gesture("double_press", 3 * S // 2, 3 * S // 2 + 20_000)
    _, counter = route(g, {p.link_id: cam})
    assert cam.receive(g, counter, "pod-addr", 3 * S // 2 + 21_000) == ("double_press", 3 * S // 2 + 1000)
    with pytest.raises(fr.LinkReject) as rejected:
        cam.receive(g, counter, "attacker", 3 * S // 2 + 22_000)
    assert rejected.value.reason == "replay" and cam.address == "pod-addr"


def test_a_gesture_is_retried_until_acknowledged_and_acted_on_once():
    p, pod, cam = pair()
    for i in range(3):
        exchange(pod, cam, i * S // 2)
    t = 3 * S // 2
    first = pod.gesture("press", t, t + 20_000)   # this first frame is lost
    del first
    acted = []
    for dt in (100_000, 200_000, 400_000):
        acted += exchange(pod, cam, t + 20_000 + dt)
    assert [g for g, _ in acted] == ["press"]
    assert pod.next_deadline_us() >= t + 20_000 + 400_000   # acknowledged: no more retries


def test_a_press_older_than_two_seconds_is_not_acted_on():
    p, pod, cam = pair()
    for i in range(3):
        exchange(pod, cam, i * S // 2)
    g = pod.gesture("double_press", -S, 3 * S // 2)   # pressed 2.5 s ago
    _, counter = route(g, {p.link_id: cam})
    with pytest.raises(fr.LinkReject):
        cam.receive(g, counter, "pod-addr", 3 * S // 2 + 1000)


def test_a_beacon_reflected_back_at_the_camera_is_refused():
    p, pod, cam = pair()
    exchange(pod, cam, 0)
    beacon = cam.beacon(STATUS_REC, S)
    with pytest.raises(fr.LinkReject) as rejected:
        route(beacon, {p.link_id: cam})
    assert rejected.value.reason == "direction"


# -- parser fuzz -------------------------------------------------------------------------------
@settings(max_examples=400)
@given(st.binary(max_size=120))
def test_random_bytes_are_refused_with_a_named_reason(data):
    p, pod, cam = pair()
    with pytest.raises(fr.LinkReject) as rejected:
        role, counter = route(data, {p.link_id: cam})
        role.receive(data, counter, "x", 0)
    assert rejected.value.reason in {"malformed", "version", "direction", "unknown_link", "bad_tag"}
    assert pod.receive(data, 0) is None and cam.acted_ref == 0


@settings(max_examples=300)
@given(st.integers(0, 77), st.integers(0, 7))
def test_any_single_bit_flip_of_a_real_frame_is_refused(position, bit):
    p, pod, cam = pair()
    exchange(pod, cam, 0)
    frame = bytearray(pod.gesture("double_press", S // 2, S // 2 + 10_000))
    if position >= len(frame):
        return
    frame[position] ^= 1 << bit
    with pytest.raises(fr.LinkReject):
        role, counter = route(bytes(frame), {p.link_id: cam})
        role.receive(bytes(frame), counter, "x", S // 2 + 11_000)
    assert cam.acted_ref == 0


def test_pairing_refuses_a_bad_pod_id_or_secret():
    for pod_id in ("", "Pod", "1pod", "p" * 17, "pod_1"):
        with pytest.raises(ValueError):
            fr.Pairing(pod_id, SECRET)
    with pytest.raises(ValueError):
        fr.Pairing("pod-1", b"short")


MICRO_SESSION = """
import sys
sys.path.insert(0, REPO)
from device.link.frame import Pairing
from device.link.endpoint import ReservedCounter
from device.link.roles import PodRole, CameraRole, route
class Store:
    def __init__(self): self.v = None
    def read(self): return self.v
    def write(self, v): self.v = v
p = Pairing("pod-1", bytes(range(32)))
pod = PodRole(p, ReservedCounter(Store()), 0)
cam = CameraRole(p, ReservedCounter(Store()))
out = []
st = {"state": "recording", "record_led": True, "committed_age_ms": 10, "faults": (), "battery_min": 5}
for i in range(4):
    t = i * 500000
    if i == 2:
        g = pod.gesture("double_press", t, t + 20000)
        r, c = route(g, {p.link_id: cam})
        out.append(r.receive(g, c, "a", t + 21000)[0])
    for f in pod.poll(t):
        r, c = route(f, {p.link_id: cam})
        try:
            r.receive(f, c, "a", t + 1000)
        except Exception as e:
            out.append(e.reason)
    pod.receive(cam.beacon(st, t + 2000), t + 3000)
    out.append(pod.shown(t + 3000))
out.append(pod.shown(4000000))
print(",".join(out))
"""


def test_a_session_runs_the_same_under_micropython(tmp_path):
    script = tmp_path / "session.py"
    script.write_text(MICRO_SESSION.replace("REPO", repr(REPO)))
    result = run_micropython([str(script)])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "stale,recording,recording,double_press,recording,recording,link_lost"


@pytest.mark.parametrize("path", sorted(pathlib.Path(REPO, "device/link").glob("*.py")), ids=lambda p: p.name)
def test_link_modules_keep_to_the_micropython_subset(path):
    import ast
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        assert not isinstance(node, (ast.JoinedStr, ast.AnnAssign, ast.NamedExpr)), f"{path.name}: {node}"
        if isinstance(node, ast.ImportFrom):
            assert node.module != "__future__" and (node.module or "").split(".")[0] in {"device", "cryptography"}
        if isinstance(node, ast.Import):
            assert {a.name for a in node.names} <= {"hashlib", "struct", "cryptolib"}
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            assert not node.decorator_list or all(getattr(d, "id", "") == "property" for d in node.decorator_list)
        if isinstance(node, ast.FunctionDef):
            assert node.returns is None and all(a.annotation is None for a in node.args.args)


def test_a_later_gesture_never_hides_an_earlier_one_that_was_lost():
    """Review finding: a press acknowledged while a double press's copies were still lost must
    not make the pod stop retrying the double press (the start)."""
    p, pod, cam = pair()
    for i in range(3):
        exchange(pod, cam, i * S // 2)
    t = 3 * S // 2
    assert pod.gesture("double_press", t, t + 20_000) is not None   # this frame is lost
    assert pod.gesture("press", t + 600_000, t + 1_100_000) is None  # waits for the first
    acted = []
    for dt in range(100_000, 2_600_000, 100_000):
        acted += exchange(pod, cam, t + 20_000 + dt)
    assert [g for g, _ in acted] == ["double_press", "press"]


def test_a_gesture_never_acknowledged_is_given_up_and_the_next_one_goes():
    p, pod, cam = pair()
    for i in range(3):
        exchange(pod, cam, i * S // 2)
    t = 3 * S // 2
    pod.gesture("hold", t, t)
    pod.gesture("press", t, t + 10_000)
    sent = []
    for dt in range(0, 2_000_000, 50_000):
        sent += [fr.decode_body(p.open(fr.POD_TO_CAMERA, f)[1], fr.POD_TO_CAMERA)
                 for f in pod.poll(t + dt)]
    codes = [fields[0] for kind, _, fields in sent if kind == fr.GESTURE]
    assert codes == [3, 3, 3, 3, 1, 1, 1, 1, 1, 1][:len(codes)] and codes[:5] == [3, 3, 3, 3, 1], codes


def test_a_counter_reservation_that_fails_to_write_fails_every_later_send():
    class Flaky(Store):
        fail = False

        def write(self, value):
            if self.fail:
                raise OSError("flash full")
            super().write(value)
    store = Flaky()
    c = ReservedCounter(store, block=3)
    assert [c.take() for _ in range(3)] == [1, 2, 3]
    store.fail = True
    for _ in range(3):
        with pytest.raises(OSError):
            c.take()
    store.fail = False
    assert c.take() == 4 and store.value == 7   # reserved before it went out


def test_a_damaged_counter_record_refuses_to_send():
    with pytest.raises(ValueError):
        ReservedCounter(Store(0))
