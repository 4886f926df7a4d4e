"""The pod's entry point on a Pico W (docs/pod.md "Flashing"): copied to the board as
main.py, run at boot. Loads link.json, joins the camera's Wi-Fi and loops."""
import time

from pod import pairing as pairing_file
from pod.app import PodApp
from pod.board_picow import PicoWBoard

LOOP_SLEEP_MS = 2    # short: a beacon or a press waits at most this long for the loop
WATCHDOG_MS = 2000   # the RP2040 watchdog: a loop hung this long resets the pod


def main():
    board = PicoWBoard()
    try:
        record = pairing_file.parse(board.pairing_text())
    except pairing_file.PairingError as exc:
        print(exc)                 # one line on the USB console
        board.set_led("amber")     # steady amber: not paired (a working pod always blinks)
        return
    app = PodApp(board, record)
    board.connect(record.host, record.port)
    watchdog = board.start_watchdog(WATCHDOG_MS)   # a hung loop resets the pod
    while True:
        try:
            app.step()
        except Exception as exc:   # noqa: BLE001 - never leave the LED frozen on a stale pattern
            print("pod: %s" % exc)
            board.set_motor(False)
            board.set_led("amber")   # steady amber: the pod is not showing the camera's state
            return                   # the watchdog, no longer fed, resets the pod
        if watchdog is not None:
            watchdog.feed()
        time.sleep_ms(LOOP_SLEEP_MS)


main()
