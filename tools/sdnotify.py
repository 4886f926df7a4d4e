"""systemd's notify protocol (sd_notify(3)), the few lines of it a Type=notify service needs.

No dependency: the protocol is one datagram per message to the AF_UNIX socket named in
$NOTIFY_SOCKET ("@name" is Linux's abstract namespace). Outside systemd (no $NOTIFY_SOCKET)
every call does nothing, so `bwc run --hal pi` behaves the same from a shell.
"""
from __future__ import annotations

import os
import socket


class SdNotify:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):
            address = "\0" + address[1:]
        self._address = address or None
        # systemd asks for pings only when WatchdogSec= is set, and may address another pid.
        watchdog_pid = env.get("WATCHDOG_PID")
        usec = env.get("WATCHDOG_USEC", "")
        mine = watchdog_pid is None or watchdog_pid == str(os.getpid())
        self.watchdog_interval_us = int(usec) if usec.isdigit() and int(usec) > 0 and mine else None
        self._socket: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, **fields: str | int) -> bool:
        """notify(READY=1, STATUS="buffering") -> one datagram; False when it could not be sent."""
        if self._address is None:
            return False
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.sendto(message, self._address)
            return True
        except OSError:
            # systemd gone (shutting down) or the socket path wrong: a missed ping restarts us,
            # which is the right outcome when the supervisor cannot be reached.
            return False

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
