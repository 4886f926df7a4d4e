"""Real UDP on 127.0.0.1: one sender, N GroupLink receivers, each on its own socket and
receive thread. Measures wall-clock start latency (announce -> on_start) and prints p50/p99
(run with -s). N=3 in CI; N=20 with -m slow."""
from __future__ import annotations

import statistics
import threading
import time

import pytest

from group_helpers import MemoryStore, member_key, record
from device.group import GroupLink
from hal.realclock import RealClock
from hal.udp_radio import UdpRadio

LIMIT_MS = 500


def _percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _run(n_receivers, rounds):
    clock = RealClock()
    radios, got = [], []
    lock = threading.Lock()
    try:
        events = [threading.Event() for _ in range(n_receivers)]
        arrivals = [None] * n_receivers
        logs = []
        for i in range(n_receivers):
            radio = UdpRadio("127.0.0.1:0")
            radios.append(radio)

            def on_start(source, fields, i=i):
                arrivals[i] = (time.perf_counter_ns(), source, fields["counter"])
                events[i].set()
            GroupLink(record(f"cam-{i}"), member_key(f"cam-{i}"), MemoryStore(), radio, clock, [], on_start,
                      lambda status, fields: (lock.acquire(), logs.append((status, fields)), lock.release()))
        copies = []   # every datagram the first receiver got: 3 per start (0, 50, 150 ms)
        radios[0].subscribe(lambda data, sender, now_us: copies.append(data))
        sender_radio = UdpRadio("127.0.0.1:0")
        radios.append(sender_radio)
        sender = GroupLink(record("cam-s"), member_key("cam-s"), MemoryStore(), sender_radio, clock,
                           [r.address for r in radios[:-1]], lambda s, f: None, lambda s, f: None)
        for _ in range(rounds):
            for e in events:
                e.clear()
            t0 = time.perf_counter_ns()
            counter = sender.announce("button")
            for i, e in enumerate(events):
                assert e.wait(5), f"receiver {i} never started"
                at_ns, source, got_counter = arrivals[i]
                assert source == "peer:cam-s" and got_counter == counter
                got.append((at_ns - t0) / 1e6)
            # Let the retransmissions (50, 150 ms) go out and arrive: duplicates, silently ignored.
            clock.wait_until(clock.monotonic_us() + 200_000)
        assert [s for s, _ in logs] == ["accepted"] * (n_receivers * rounds)
        assert len(copies) == 3 * rounds and len(set(copies)) == rounds
        assert all(r.errors == [] for r in radios)
    finally:
        for r in radios:
            r.close()
    return got


def _report(n, latencies_ms):
    p50, p99 = statistics.median(latencies_ms), _percentile(latencies_ms, 0.99)
    print(f"\ngroup start over loopback UDP, {n} receivers, {len(latencies_ms)} starts: "
          f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {max(latencies_ms):.2f} ms")
    assert p99 < LIMIT_MS and max(latencies_ms) < LIMIT_MS


def test_three_receivers_start_within_500_ms():
    _report(3, _run(3, rounds=10))


@pytest.mark.slow
def test_twenty_receivers_start_within_500_ms():
    _report(20, _run(20, rounds=20))


def test_udp_radio_drops_oversize_and_never_raises_on_send():
    import socket
    got, done = [], threading.Event()
    radio = UdpRadio("127.0.0.1:0")
    radio.subscribe(lambda data, sender, now_us: (got.append((data, sender, now_us)), done.set()))
    raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        host, port = radio.address.split(":")
        raw.sendto(b"x" * 2049, (host, int(port)))       # dropped unread
        raw.sendto(b"y" * 2048, (host, int(port)))
        assert done.wait(5)
        assert [len(d) for d, _, _ in got] == [2048]
        assert got[0][1] == f"127.0.0.1:{raw.getsockname()[1]}" and isinstance(got[0][2], int)
        radio.send(b"z", "not an address")               # lost, like any datagram
        radio.send(b"z" * 2049, radio.address)
        with pytest.raises(ValueError):
            UdpRadio("nowhere")
    finally:
        raw.close()
        radio.close()
        radio.close()
    radio.send(b"after close", "127.0.0.1:9")
