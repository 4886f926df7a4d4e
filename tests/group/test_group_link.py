"""GroupLink on a virtual clock: announce, every rejection reason as logged, rate limiting."""
from __future__ import annotations

import json

import pytest

from device import group_cert as gc
from device.config import FIRMWARE_BUILD_UTC_US
from device.group import GroupConfigError, GroupLink, RecordCounterStore
from group_helpers import GROUP, HOP_US, WALL_US, Member, MemoryStore, member_key, record, start


def test_one_announce_starts_every_peer_within_one_hop_and_names_the_source(ether, clock):
    peers = [Member(ether, f"cam-{i}") for i in range(3)]
    sender = Member(ether, "cam-a", peers=[p.radio.address for p in peers])
    t0 = clock.monotonic_us()
    counter = sender.link.announce("button", "ab" * 16)
    clock.advance(HOP_US)
    for p in peers:
        assert len(p.starts) == 1
        source, fields = p.starts[0]
        assert source == "peer:cam-a"
        assert fields["counter"] == counter and fields["cause"] == "button" and fields["event_id"] == "ab" * 16
        assert p.logs == [("accepted", dict(fields, source="peer:cam-a"))]
    assert clock.monotonic_us() - t0 == HOP_US
    # The retransmissions at 50 and 150 ms are duplicates: ignored and not logged.
    clock.advance(200_000)
    assert [len(p.starts) for p in peers] == [1, 1, 1] and all(len(p.logs) == 1 for p in peers)
    times = sorted({t - t0 for t, _, _ in ether.sent})
    assert times == [0, 50_000, 150_000]
    assert len({payload for _, _, payload in ether.sent}) == 1      # same counter, same bytes
    assert len(ether.sent) == 9


def test_a_vehicle_start_is_recorded_as_vehicle_source(ether, clock):
    cam = Member(ether, "cam-b")
    car = Member(ether, "car-7", role="vehicle", peers=["cam-b"])
    car.link.announce("lightbar")
    clock.advance(HOP_US)
    assert cam.starts[0][0] == "vehicle:car-7" and cam.starts[0][1]["role"] == "vehicle"


def test_a_start_survives_losing_the_first_two_transmissions(ether, clock):
    cam = Member(ether, "cam-b")
    sender = Member(ether, "cam-a", peers=["cam-b"])
    ether.drop = 2
    t0 = clock.monotonic_us()
    sender.link.announce("button")
    clock.advance(200_000)
    assert len(cam.starts) == 1 and cam.starts[0][1]["counter"] >= 1
    # Started by the 150 ms copy: still far inside 500 ms.
    assert [t - t0 for t, _, _ in ether.sent] == [0, 50_000, 150_000]


def test_counters_are_reserved_ahead_of_use_and_resume_above_after_a_reboot(ether, clock):
    store = MemoryStore()
    a = Member(ether, "cam-a", peers=["cam-b"], store=store)
    assert store.writes == [4097]
    first = a.link.announce("button")
    again = Member(ether, "cam-a2", store=store)     # a reboot: same store, new link
    assert first == 1 and again.link._counter.take() == 4097


def test_a_cert_for_another_key_is_refused_at_construction(ether, clock):
    other = record("cam-a")
    with pytest.raises(GroupConfigError, match="not for this device's key"):
        GroupLink(other, member_key("cam-b"), MemoryStore(), ether.radio("x"), clock, [], print, print)


def _feed(cam, clock, data, address="10.0.0.9:4771"):
    cam.radio.receive(data, address)


@pytest.mark.parametrize("reason, make", [
    ("malformed", lambda: b"{}"),
    ("other_group", lambda: _other_group()),
    ("not_member", lambda: _outsider()),
    ("bad_signature", lambda: _edited(cause="lightbar")),
    ("stale", lambda: start("cam-a", 3, utc_us=WALL_US - 5_000_001)),
    ("stale", lambda: start("cam-a", 3, utc_us=WALL_US + 5_000_001)),
])
def test_each_rejection_is_logged_with_its_reason_and_never_acted_on(ether, clock, reason, make):
    cam = Member(ether, "cam-b")
    _feed(cam, clock, make())
    assert cam.starts == []
    [fields] = cam.rejected()
    assert fields["reason"] == reason and fields["address"] == "10.0.0.9:4771"
    if reason != "malformed":
        assert fields["from"] in ("cam-a", "cam-z", "mallory")


def _other_group():
    from nacl.signing import SigningKey
    authority = SigningKey(bytes([0x51]) * 32)
    rec = record("cam-z", authority=authority, group="unit-99")
    return gc.encode_start(member_key("cam-z"), "unit-99", "cam-z", "camera", rec.cert, 1, WALL_US, None, "button")


def _outsider():
    from nacl.signing import SigningKey
    rogue = SigningKey(bytes([0x41]) * 32)      # another authority, same group name
    rec = record("mallory", authority=rogue)
    return gc.encode_start(member_key("mallory"), GROUP, "mallory", "camera", rec.cert, 1, WALL_US, None, "button")


def _edited(**changes):
    msg = json.loads(start("cam-a", 2))
    msg.update(changes)
    return json.dumps(msg).encode()


def test_replay_is_logged_and_duplicate_and_self_are_silent(ether, clock):
    cam = Member(ether, "cam-b")
    _feed(cam, clock, start("cam-a", 10))
    _feed(cam, clock, start("cam-a", 10))          # duplicate: silent
    _feed(cam, clock, start("cam-b", 99))          # its own: silent
    _feed(cam, clock, start("cam-a", 9))           # replay: logged
    assert len(cam.starts) == 1
    assert [f["reason"] for f in cam.rejected()] == ["replay"]
    assert cam.rejected()[0]["from"] == "cam-a"


def test_clock_unset_rejects_and_logs(ether, clock):
    cam = Member(ether, "cam-b")
    clock.set_wall_time_us(FIRMWARE_BUILD_UTC_US - 1)
    _feed(cam, clock, start("cam-a", 1, utc_us=FIRMWARE_BUILD_UTC_US - 1))
    assert cam.starts == [] and cam.rejected()[0]["reason"] == "clock_unset"


def test_a_malformed_claimed_from_is_not_logged_as_from(ether, clock):
    cam = Member(ether, "cam-b")
    msg = json.loads(start("cam-a", 1))
    msg["from"] = "cam\nb" * 30
    _feed(cam, clock, json.dumps(msg).encode())
    [fields] = cam.rejected()
    assert fields["reason"] == "malformed" and "from" not in fields


def test_rejection_logs_are_limited_to_ten_a_minute_and_count_the_rest(ether, clock):
    cam = Member(ether, "cam-b")
    for _ in range(1000):                          # a flood inside one second
        _feed(cam, clock, b"junk")
        clock.advance(1_000)
    assert len(cam.rejected()) == 10 and cam.link.suppressed == 990
    clock.advance(60_000_000)
    _feed(cam, clock, start("cam-a", 1, utc_us=clock.wall_time_us() - 6_000_000))
    later = cam.rejected()
    assert len(later) == 11 and later[-1]["reason"] == "stale" and later[-1]["suppressed"] == 990
    _feed(cam, clock, b"junk")
    assert "suppressed" not in cam.rejected()[-1]
    # An accepted start is never rate-limited.
    for counter in range(2, 40):
        _feed(cam, clock, start("cam-a", counter, utc_us=clock.wall_time_us()))
    assert len(cam.starts) == 38


def test_record_counter_store_on_a_key_store(tmp_path):
    from hal.filekeystore import FileKeyStore
    store = RecordCounterStore(FileKeyStore(str(tmp_path)))
    assert store.read() is None
    store.write(4097)
    assert store.read() == 4097
    assert (tmp_path / "state" / "group_counter").stat().st_mode & 0o777 == 0o600
    (tmp_path / "state" / "group_counter").write_bytes(b"\xff")
    with pytest.raises(GroupConfigError, match="unreadable"):
        store.read()
