"""`bwc run --hal pi`: the firmware on a Raspberry Pi until SIGTERM/SIGINT (docs/pi.md)."""
from __future__ import annotations

import math
import os
import signal
import sys
import threading
from dataclasses import fields

from device.config import (ConfigError, Identity, Policy, as_type_of, check_trigger_name, parse_toml,
                           read_config_text, shown, type_name, where)
from device.announce_assets import load_assets
from device.firmware import Firmware
from hal.dirstorage import DirectoryStorage
from hal.filekeystore import FileKeyStore
from hal.pi import build_pi_board
from hal.pi.config import InputPinConfig, PiBoardConfig, PiConfigError
from hal.realclock import RealClock

PI_CONFIG_FILE = "pi.toml"
_TICK_US = 500_000
EXIT_BATTERY_CRITICAL = 3   # tools/systemd/openbwc.service: RestartPreventExitStatus=3


def _gpio(value: object, place: str, key: str) -> InputPinConfig:
    # A bool is an int to Python, and `true` would quietly mean GPIO1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{place}: {key} must be a GPIO number, got {shown(value)}")
    return InputPinConfig(pin=value)


def load_pi_config(path: str) -> PiBoardConfig:
    """DEVICE_DIR/pi.toml: PiBoardConfig fields; [triggers] maps a name to a GPIO number."""
    if not os.path.exists(path):
        return PiBoardConfig()
    text = read_config_text(path)
    data = parse_toml(text, path)
    defaults = PiBoardConfig()
    known = {f.name for f in fields(PiBoardConfig)}
    values = {}
    for key, value in data.items():
        place = where(path, text, key)
        if key not in known:
            raise ConfigError(f"{place}: unknown key {shown(key)}")
        if key == "record_button":
            value = _gpio(value, place, key)
        elif key == "triggers":
            if not isinstance(value, dict):
                raise ConfigError(f"{place}: [triggers] maps names to GPIO numbers")
            for name in value:
                problem = check_trigger_name(name)
                if problem:
                    raise ConfigError(f"{where(path, text, name)}: {problem}")
            value = {name: _gpio(pin, where(path, text, name), f"triggers.{name}") for name, pin in value.items()}
        else:
            default = getattr(defaults, key)
            converted = as_type_of(default, value)
            if converted is None:
                raise ConfigError(f"{place}: {key} must be {type_name(default)}, got {shown(value)}")
            if isinstance(converted, float) and not math.isfinite(converted):
                raise ConfigError(f"{place}: {key} must be a finite number, got {shown(value)}")
            value = converted
        values[key] = value
    try:
        return PiBoardConfig(**values)
    except (PiConfigError, ArithmeticError) as exc:  # ArithmeticError: e.g. fps too big for a float
        raise ConfigError(f"{path}: {exc}") from None


def _with_radios(board, device_dir: str, clock):
    """docs/link.md §9: the pod link and the group radio over UDP, as DEVICE_DIR/radio.toml says
    (tools/radio_config.py); the membership from DEVICE_DIR/group.json (bwc group admit)."""
    import dataclasses

    from device.config import ConfigError
    from device.group import GROUP_FILE, GroupConfigError, read_member_record
    from hal.udp_radio import UdpRadio
    from tools.radio_config import load_radio_config
    radios = load_radio_config(device_dir)
    member = None
    group_path = os.path.join(device_dir, GROUP_FILE)
    try:
        if radios.group_listen and os.path.exists(group_path):
            member = read_member_record(group_path)
        pod_radio = UdpRadio(radios.pod_listen, clock.monotonic_us) if radios.pod_listen else None
        group_radio = UdpRadio(radios.group_listen, clock.monotonic_us) if member is not None else None
    except GroupConfigError as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:   # the port is taken, the address is not this host's
        raise ConfigError(f"{device_dir}/radio.toml: cannot listen ({exc.strerror or exc})") from None
    return dataclasses.replace(board, radio=pod_radio, group_radio=group_radio), member, radios.group_peers


def run_on_pi(args, identity: Identity, policy: Policy) -> int:
    """The firmware until SIGTERM/SIGINT; `bwc run` has checked the device directory and holds its lock.
    Under systemd (Type=notify, docs/pi.md#systemd) it says READY once buffering, and feeds
    the watchdog only while the pipeline is healthy (device/health.py)."""
    from device.firmware import BootError
    from tools.pi_service import ServiceWatchdog
    from tools.sdnotify import SdNotify

    config = load_pi_config(os.path.join(args.device, PI_CONFIG_FILE))
    storage = DirectoryStorage(args.storage or os.path.join(args.device, "storage"))
    clock = RealClock()
    board = build_pi_board(config, clock, storage, FileKeyStore(args.device))
    board, member, peers = _with_radios(board, args.device, clock)
    firmware = Firmware(board, identity, policy, assets=load_assets(args.device, policy.announce_languages),
                        group=member, group_peers=peers)
    service = ServiceWatchdog(firmware, SdNotify())
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        firmware.boot()
    except BootError as exc:
        print(f"bwc run --hal pi: {exc}", file=sys.stderr)
        return 1
    for problem in firmware.boot_problems:   # the monitor retries these parts (FLT-1)
        print(f"bwc run --hal pi: {problem}; retrying with back-off", file=sys.stderr)
    note = f"buffering {policy.pre_event_s:g} s"
    if not board.battery.present:
        note += "; no battery gauge (battery = \"none\"): battery warnings are off"
    print(f"recording policy loaded; {note} (stop with SIGTERM)", flush=True)
    service.ready(note)
    try:
        # Timers (gestures, indicator pulses) run on this thread inside wait_until.
        while not stop.is_set() and firmware.failure is None and firmware.shutdown_source is None:
            service.tick(clock.monotonic_us())
            clock.wait_until(clock.monotonic_us() + _TICK_US)
    finally:
        service.stopping()
        firmware.shutdown("shutdown")   # does nothing if the firmware already shut down
    if firmware.shutdown_source == "battery_critical":
        print("bwc run: the battery reached its critical level; the event was closed and the camera "
              "shut down", file=sys.stderr)
        # Its own exit status, which the unit's RestartPreventExitStatus= names: a restart
        # would find the same level and shut down again, every few seconds, until the cell died.
        return EXIT_BATTERY_CRITICAL
    return 1 if firmware.failure is not None else 0
