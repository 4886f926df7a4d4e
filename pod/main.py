"""The pod's entry point on a Pico W (docs/pod.md "Flashing"): copied to the board as
main.py, run at boot. Loads link.json, joins the camera's Wi-Fi and loops."""
import time

from pod import pairing as pairing_file
from pod.app import PodApp
from pod.board_picow import PicoWBoard

LOOP_SLEEP_MS = 2    # short: a beacon or a press waits at most this long for the loop


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
    while True:
        app.step()
        time.sleep_ms(LOOP_SLEEP_MS)


main()
