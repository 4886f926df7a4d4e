"""The Board bundle: everything the firmware may touch, in one object (HAL-1).

Built in one place (a composition root: simulator/board.py or hal.pi.build_pi_board)
and handed to the firmware.
"""
from __future__ import annotations

from dataclasses import dataclass

from hal.battery import Battery
from hal.camera import Camera
from hal.clock import Clock
from hal.indicators import Indicators
from hal.inputs import Inputs
from hal.keystore import KeyStore
from hal.microphone import Microphone
from hal.radio import Radio
from hal.speaker import Speaker
from hal.storage import Storage


@dataclass(frozen=True)
class Board:
    camera: Camera
    microphone: Microphone
    speaker: Speaker
    inputs: Inputs
    indicators: Indicators
    clock: Clock
    storage: Storage
    battery: Battery
    keystore: KeyStore
    # The pod link's datagram transport (docs/link.md §9); None: a board without one.
    radio: Radio | None = None
    # Group activation's datagram transport (docs/link.md §8); None: no group radio.
    group_radio: Radio | None = None
