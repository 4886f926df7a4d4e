"""The interactive simulator's HTTP API (docs/sim-live.md), driven as the page drives it, on a
virtual clock: what the wearer would see, what the page shows, what a custodian gets."""
from __future__ import annotations

import io
import json
import wave

import av
import pytest

from simulator.pattern import read_frame

pytestmark = pytest.mark.scenario

PRESS_S = 0.12


def contact(sim, seconds: float) -> None:
    """The record button's contact closed for `seconds`, as a mouse press makes it."""
    assert sim.post("/api/input", {"name": "record", "active": True}).json()["applied"]
    sim.advance(seconds)
    assert sim.post("/api/input", {"name": "record", "active": False}).json()["applied"]


def test_a_double_click_of_the_button_starts_recording_and_the_led_follows_the_commit(sim):
    sim.advance(12)
    before = sim.status()
    assert before["state"] == "buffering" and not before["record_led"] and before["segment"] is None
    assert 11 < before["pre_event_held_s"] <= 12.1

    # Two real contacts 150 ms apart: the firmware's own decoder makes it a double press.
    contact(sim, PRESS_S)
    sim.advance(0.15)
    contact(sim, PRESS_S)
    sim.advance(2)
    now = sim.status()
    assert now["state"] == "recording" and now["record_led"] and now["segment"] == 1
    assert now["committed_age_ms"] is not None and now["committed_age_ms"] < 2000

    # The page's feed: the LED came on only after the activation's media was on the card.
    sim.live.poll()
    messages, _ = sim.live.feed((0, 0, 0))
    led_on = [m for k, m in messages if k == "trace" and m["kind"] == "led" and m["name"] == "record" and m["on"]]
    activation = [m for k, m in messages if k == "audit" and m.get("type") == "activation"]
    assert led_on and activation and all(m["verified"] for k, m in messages if k == "audit")
    assert led_on[0]["t_s"] >= activation[0]["t_s"]


def test_a_hold_stops_and_a_short_contact_is_a_marker(sim):
    sim.advance(5)
    assert sim.post("/api/step", {"do": "button.double_press"}).status_code == 200
    sim.advance(2)
    contact(sim, PRESS_S)          # a marker
    sim.advance(1)
    contact(sim, 3.2)              # a hold: the event ends
    sim.advance(2)
    assert sim.status()["state"] == "buffering"
    sim.live.poll()
    types = [m["type"] for k, m in sim.live.feed((0, 0, 0))[0] if k == "audit"]
    assert types.index("activation") < types.index("marker") < types.index("deactivation")


def test_the_cord_pull_shows_as_a_fault_and_the_view_keeps_the_last_picture(sim):
    sim.advance(3)
    response = sim.client.get("/api/frame.jpg")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    frame = next(av.open(io.BytesIO(response.content)).decode(video=0)).to_ndarray(format="yuv420p")
    number, _ = read_frame(frame)     # the burned-in frame code survives the JPEG
    assert 80 <= number <= 91         # 3 s at 30 fps, counted from boot

    sim.post("/api/step", {"do": "camera.disconnect"})
    sim.advance(1.5)
    status = sim.status()
    assert "camera_lost" in status["faults"] and status["camera_connected"] is False
    stale = next(av.open(io.BytesIO(sim.client.get("/api/frame.jpg").content)).decode(video=0))
    assert read_frame(stale.to_ndarray(format="yuv420p"))[0] <= number + 4   # nothing new arrived
    sim.post("/api/step", {"do": "camera.reconnect"})
    sim.advance(2)
    assert "camera_lost" not in sim.status()["faults"]


def test_the_announcement_is_served_as_the_sound_the_speaker_played(sim):
    sim.advance(3)
    sim.post("/api/step", {"do": "button.double_press"})
    sim.advance(3)
    sim.live.poll()
    speaker = [m for k, m in sim.live.feed((0, 0, 0))[0] if k == "trace" and m["kind"] == "speaker"]
    assert speaker and speaker[0]["clip"] == "/api/speaker/0.wav"
    response = sim.client.get(speaker[0]["clip"])
    assert response.status_code == 200
    with wave.open(io.BytesIO(response.content)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        assert abs(w.getnframes() / w.getframerate() * 1000 - speaker[0]["duration_ms"]) < 50
        assert max(w.readframes(w.getnframes())) > 0
    assert sim.client.get("/api/speaker/99.wav").status_code == 404


def test_triggers_battery_and_storage_knobs_reach_the_firmware(sim):
    sim.advance(2)
    assert sim.post("/api/input", {"name": "holster", "active": True}).json()["applied"]
    assert not sim.post("/api/input", {"name": "holster", "active": True}).json()["applied"]
    sim.advance(2)
    assert sim.status()["state"] == "recording"
    sim.post("/api/step", {"do": "battery.set", "percent": 40})
    sim.post("/api/step", {"do": "storage.fill", "free_bytes": 60_000_000})
    sim.advance(11)
    status = sim.status()
    assert status["battery_pct"] == pytest.approx(40, abs=0.5)
    assert status["storage_min"] is not None and status["storage_min"] < 5


def test_export_after_the_end_verifies_and_serves_the_mp4_and_sidecar(sim):
    assert sim.post("/api/export").status_code == 409
    assert "not ended" in sim.status()["export"]["why"]
    sim.advance(3)
    sim.post("/api/step", {"do": "button.double_press"})
    sim.advance(4)
    assert sim.post("/api/end").status_code == 200
    assert sim.post("/api/end").status_code == 409
    assert sim.post("/api/step", {"do": "button.press"}).status_code == 409
    assert sim.status()["export"]["available"] and sim.status()["state"] == "off"
    result = sim.post("/api/export").json()
    assert result["verify"]["outcome"] == "authentic" and result["verify"]["exit_code"] == 0
    [event] = result["exported"]
    mp4 = sim.client.get(event["mp4"])
    assert mp4.status_code == 200 and mp4.content[4:8] == b"ftyp"
    sidecar = json.loads(sim.client.get(event["sidecar"]).content)
    assert event["event_id"] in json.dumps(sidecar)
    assert sim.client.get("/exports/../../device.key").status_code == 404
    assert sim.client.get("/exports/device.key").status_code == 404


@pytest.mark.parametrize("path, body, status, words", [
    ("/api/step", {"do": "button.hold", "hold_s": 0}, 400, "hold_s must be a positive number"),
    ("/api/step", {"do": "explode"}, 400, "do must be one of"),
    ("/api/step", {"do": "storage.fail", "errno": "EIO"}, 400, "op"),
    ("/api/step", {"do": "pod.press", "target": "pod-9"}, 404, "no pod 'pod-9'"),
    ("/api/step", {"do": "trigger.on", "name": "siren"}, 400, "--trigger siren"),
    ("/api/step", {"do": "button.press", "t_s": 3}, 400, "no t_s"),
    ("/api/step", ["button.press"], 400, "JSON object"),
    ("/api/input", {"name": "record"}, 400, '"active"'),
    ("/api/input", {"name": "nose", "active": True}, 400, "no input 'nose'"),
    ("/api/input", {"name": "record", "active": 1}, 400, "true or false"),
])
def test_a_wrong_control_is_refused_with_one_line_naming_it(sim, path, body, status, words):
    response = sim.post(path, body)
    assert response.status_code == status
    error = response.json()["error"]
    assert words in error and "\n" not in error


def test_bodies_that_are_not_json_controls_are_refused(sim):
    assert sim.client.post("/api/step", content=b'{"do":"button.press"}',
                           headers={"Content-Type": "text/plain"}).status_code == 415
    assert sim.client.post("/api/step", content=b"{", headers={"Content-Type": "application/json"}).status_code == 400
    assert sim.client.post("/api/step", content=b"[NaN]",
                           headers={"Content-Type": "application/json"}).status_code == 400
    big = json.dumps({"do": "button.press", "x": "a" * 20_000})
    assert sim.client.post("/api/step", content=big, headers={"Content-Type": "application/json"}).status_code == 413
    assert sim.client.get("/api/nothing").status_code == 404
    assert sim.client.get("/api/step").status_code == 405


def test_only_a_loopback_host_is_answered(sim):
    from starlette.testclient import TestClient

    from tools.sim_web.app import build_app
    app = build_app(sim.live)
    assert TestClient(app, base_url="http://127.0.0.1:8470").get("/api/status").status_code == 200
    assert TestClient(app, base_url="http://localhost").get("/").status_code == 200
    rebound = TestClient(app, base_url="http://attacker.example:8470").get("/api/status")
    assert rebound.status_code == 421 and "loopback" in rebound.json()["error"]


def test_the_page_and_its_files_are_served(sim):
    page = sim.client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for name in ("sim.js", "sim.css"):
        assert sim.client.get(f"/static/{name}").status_code == 200


def test_a_paired_pod_is_on_the_page_and_its_button_starts_recording(tmp_path):
    from sim_helpers import Sim
    sim = Sim(str(tmp_path), pods=("pod-1",))
    try:
        sim.advance(4)
        assert sim.status()["pods"]["pod-1"]["shown"] == "buffering"
        assert sim.post("/api/step", {"do": "pod.double_press", "target": "pod-1"}).status_code == 200
        sim.advance(3)
        status = sim.status()
        assert status["state"] == "recording" and status["pods"]["pod-1"]["shown"] == "recording"
        sim.post("/api/step", {"do": "link.drop", "target": "pod-1"})
        sim.advance(6)
        assert sim.status()["pods"]["pod-1"]["shown"] == "link_lost"
        sim.live.poll()
        sources = [m["fields"].get("source") for k, m in sim.live.feed((0, 0, 0))[0]
                   if k == "audit" and m.get("type") == "activation"]
        assert sources == ["pod:pod-1"]
    finally:
        sim.close()


def test_power_steps_keep_the_sequence_a_scenario_must_keep(sim):
    sim.advance(2)
    assert sim.post("/api/step", {"do": "power.restore"}).status_code == 409
    assert sim.post("/api/step", {"do": "power.cut"}).status_code == 200
    sim.advance(1)
    assert sim.status()["powered"] is False and sim.status()["state"] == "off"
    assert sim.post("/api/step", {"do": "power.cut", "mode": "drop"}).status_code == 409
    # A button pressed on a dead camera does nothing, as in a scenario.
    sim.post("/api/step", {"do": "button.double_press"})
    sim.advance(1)
    assert sim.post("/api/step", {"do": "power.restore"}).status_code == 200
    sim.advance(3)
    assert sim.status()["powered"] and sim.status()["state"] == "buffering"
    # The audit tail goes on in the new boot's file, after the cut took back what was not durable.
    sim.live.poll()
    boots = [m["file"] for k, m in sim.live.feed((0, 0, 0))[0] if k == "audit" and m.get("type") == "boot"]
    assert len(boots) == 2 and boots[0] != boots[1]
    sim.post("/api/end")
    assert sim.status()["powered"] is False


@pytest.mark.parametrize("host, answered", [
    ("127.0.0.1:8470", True), ("127.0.0.2:9000", True), ("localhost", True), ("LOCALHOST:1", True),
    ("localhost.", True), ("[::1]:8470", True), ("[::1]", True),
    ("", False), ("sub.localhost", False), ("10.0.0.1:8470", False), ("attacker.example", False),
    ("[::ffff:10.0.0.1]:80", False),
])
def test_loopback_host_names(sim, host, answered):
    from starlette.testclient import TestClient

    from tools.sim_web.app import build_app
    client = TestClient(build_app(sim.live), base_url="http://127.0.0.1")
    response = client.get("/api/status", headers={"Host": host})
    assert (response.status_code == 200) == answered, response.text


def test_a_picture_says_when_it_was_captured(sim):
    sim.advance(2)
    response = sim.client.get("/api/frame.jpg")
    at_us = int(response.headers["X-Frame-Monotonic-Us"])
    assert sim.clock.monotonic_us() - 100_000 <= at_us <= sim.clock.monotonic_us()
