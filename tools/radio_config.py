"""DEVICE_DIR/radio.toml: the real board's radios (docs/link.md §9). Absent: no pod link and
no group radio; the camera records exactly as without them.

    pod_listen = "0.0.0.0:4770"            # UDP address the pod link listens on ("" = off)
    group_listen = "0.0.0.0:4771"          # UDP address group starts arrive on ("" = off)
    group_peers = ["192.168.4.255:4771"]   # where this camera's starts go (broadcast allowed)
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from device.config import ConfigError, parse_toml, shown
from hal.udp_radio import parse_address

RADIO_CONFIG_FILE = "radio.toml"
MAX_PEERS = 64
MAX_BYTES = 1 << 16


@dataclass(frozen=True)
class RadioConfig:
    pod_listen: str = ""
    group_listen: str = ""
    group_peers: tuple[str, ...] = ()


def _address(value: object, key: str, path: str) -> str:
    if value == "":
        return ""
    try:
        if not isinstance(value, str):
            raise ValueError
        host, _ = parse_address(value)
        # Numeric only: a name would be looked up by DNS on every send, on the recording's path.
        socket.inet_aton(host)
        if host.count(".") != 3:
            raise ValueError
    except (ValueError, OverflowError, OSError):
        raise ConfigError(f"{path}: {key} must be a numeric \"IPv4:PORT\" (or \"\" for off), "
                          f"got {shown(value)}", key) from None
    return value


def parse_radio_config(text: str, path: str) -> RadioConfig:
    data = parse_toml(text, path)
    unknown = sorted(set(data) - {"pod_listen", "group_listen", "group_peers"})
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} (expected pod_listen, group_listen, group_peers)",
                          unknown[0])
    peers = data.get("group_peers", [])
    if not isinstance(peers, list) or len(peers) > MAX_PEERS:
        raise ConfigError(f"{path}: group_peers must list up to {MAX_PEERS} \"HOST:PORT\" addresses", "group_peers")
    peers = tuple(_address(p, "group_peers", path) for p in peers)
    if "" in peers:
        raise ConfigError(f"{path}: group_peers must not hold an empty address", "group_peers")
    config = RadioConfig(_address(data.get("pod_listen", ""), "pod_listen", path),
                         _address(data.get("group_listen", ""), "group_listen", path), peers)
    if config.group_peers and not config.group_listen:
        raise ConfigError(f"{path}: group_peers needs group_listen (the camera's own group address)", "group_listen")
    return config


def load_radio_config(device_dir: str) -> RadioConfig:
    path = os.path.join(device_dir, RADIO_CONFIG_FILE)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return RadioConfig()
    if len(data) > MAX_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_BYTES} bytes; not a radio configuration")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    return parse_radio_config(text, path)
