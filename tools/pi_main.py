"""`bwc run --hal pi`: the firmware on a Raspberry Pi until SIGTERM/SIGINT (docs/pi.md)."""
from __future__ import annotations

import os
import signal
import threading
from dataclasses import fields

from device.config import ConfigError, load_identity, load_policy, parse_toml, where
from device.firmware import Firmware
from hal.dirstorage import DirectoryStorage
from hal.filekeystore import FileKeyStore
from hal.pi import build_pi_board
from hal.pi.config import InputPinConfig, PiBoardConfig, PiConfigError
from hal.realclock import RealClock

PI_CONFIG_FILE = "pi.toml"
_TICK_US = 500_000


def load_pi_config(path: str) -> PiBoardConfig:
    """DEVICE_DIR/pi.toml: PiBoardConfig fields; [triggers] maps a name to a GPIO number."""
    if not os.path.exists(path):
        return PiBoardConfig()
    with open(path, encoding="utf-8") as f:
        text = f.read()
    data = parse_toml(text, path)
    known = {f.name for f in fields(PiBoardConfig)}
    values = {}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(f"{where(path, text, key)}: unknown key {key!r}")
        if key == "record_button":
            value = InputPinConfig(pin=value) if isinstance(value, int) else value
        elif key == "triggers":
            if not isinstance(value, dict) or not all(isinstance(p, int) for p in value.values()):
                raise ConfigError(f"{where(path, text, key)}: [triggers] maps names to GPIO numbers")
            value = {name: InputPinConfig(pin=pin) for name, pin in value.items()}
        values[key] = value
    try:
        return PiBoardConfig(**values)
    except (PiConfigError, TypeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


def run_on_pi(args) -> int:
    identity = load_identity(args.device)
    policy = load_policy(os.path.join(args.device, "policy.toml"))
    config = load_pi_config(os.path.join(args.device, PI_CONFIG_FILE))
    storage = DirectoryStorage(args.storage or os.path.join(args.device, "storage"))
    clock = RealClock()
    board = build_pi_board(config, clock, storage, FileKeyStore(args.device))
    firmware = Firmware(board, identity, policy)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    firmware.boot()
    print(f"recording policy loaded; buffering {policy.pre_event_s:g} s (stop with SIGTERM)", flush=True)
    try:
        # Timers (gestures, indicator pulses) run on this thread inside wait_until.
        while not stop.is_set() and firmware.failure is None:
            clock.wait_until(clock.monotonic_us() + _TICK_US)
    finally:
        firmware.shutdown("shutdown")
    return 1 if firmware.failure is not None else 0
