# Run by tests/pod/test_micropython.py under a real MicroPython (and CPython, to compare):
# micropython mp_selftest.py REPO PART. Prints "name=value" lines the test asserts on.
import sys

sys.path.insert(0, sys.argv[1])
PART = sys.argv[2]

from pod.clock import PERIOD_2_30_US, ExtendedClock, make_ticks_diff


def clock_part():
    box = [PERIOD_2_30_US - 10]
    clock = ExtendedClock(lambda: box[0] % PERIOD_2_30_US, make_ticks_diff(PERIOD_2_30_US), box[0])
    box[0] += 25
    print("wrap_2_30=%d" % (clock.now_us() - PERIOD_2_30_US))
    last = clock.now_us()
    backwards = 0
    exact = 1
    for i in range(200):
        box[0] += PERIOD_2_30_US // 2 - 1 - (i * 7919) % 1000
        now = clock.now_us()
        if now < last:
            backwards += 1
        if now != box[0]:
            exact = 0
        last = now
    print("many_wraps_exact=%d wraps=%d backwards=%d" % (exact, box[0] // PERIOD_2_30_US, backwards))
    period = 1000
    box = [0]
    clock = ExtendedClock(lambda: box[0] % period, make_ticks_diff(period))
    for i in range(5000):
        box[0] += (i * 31) % 499
        if clock.now_us() != box[0]:
            exact = 0
    print("generic_period_exact=%d" % exact)


def boot_part():
    # The app on a fake board with no camera: link_lost, amber/green at 1 Hz, no pulse.
    from pod import pairing as pf
    from pod.app import PodApp
    from pod.board_fake import FakeBoard
    from pod.sim import TEST_SECRET
    text = pf.record_text("pod-1", TEST_SECRET, "cam-1", "127.0.0.1:4770")
    board = FakeBoard(pairing_text=text, start_us=PERIOD_2_30_US - 500000)
    app = PodApp(board, pf.parse(text), board.true_us)
    for t in range(0, 2100000, 100000):
        board.set_time(PERIOD_2_30_US - 500000 + t)
        app.step()
    print("boot_shown=%s leds=%s motor=%d sent=%d" % (app.shown, ",".join(c for t, c in board.led_history),
                                                     len(board.motor_history), len(board.outbox)))
    try:
        pf.parse('{"pod_id": "pod-1"}')
    except pf.PairingError as exc:
        print("pairing_error=%s" % exc)


def link_part():
    # pairing -> link up -> double press -> recording shown -> beacons stop -> link_lost
    from pod.sim import LinkSim
    start = PERIOD_2_30_US - 2700000     # runs across the tick's wrap
    sim = LinkSim(start_us=start)
    sim.run_until(start + 2000000)
    print("linked=%s" % sim.app.shown)
    sim.board.script_press(start + 2000000, 80000)
    sim.board.script_press(start + 2200000, 80000)
    sim.run_until(start + 3000000)
    print("camera_got=%s shown=%s led=%s" % (",".join(g[0] for g in sim.camera_gestures), sim.app.shown, sim.board.led))
    sim.beacons_on = False
    sim.run_until(start + 8000000)
    info = sim.app.role.link.info_us
    lost = [t for p, t in sim.app.shown_changes if p == "link_lost"][-1]
    print("after_stop=%s lost_after_info_us=%d" % (sim.app.shown, lost - info))


{"clock": clock_part, "boot": boot_part, "link": link_part}[PART]()
print("done")
