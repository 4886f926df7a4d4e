"""Graceful shutdown (docs/offload.md §7): SIGTERM while an upload is in flight — the
intake stops within its grace, exits 0, what it had accepted is intact, and the part cut
off is not stored; a new replica on the same store carries on."""
from __future__ import annotations

import hashlib
import os
import secrets
import signal
import socket
import time

from device.offload.protocol import H_PART_BYTES, H_SEGMENT_SIZE, sha256_hex, sign_request
from intake_client import Client, bwc, card_files, upload_card
from conftest import enroll, signing_key


def test_sigterm_mid_upload_loses_nothing_accepted(tmp_path, intake_server, forked):
    a, b = forked
    directory = str(tmp_path / "graceful-intake")
    assert bwc("intake", "init", "--out", directory).returncode == 0
    path = os.path.join(directory, "intake.toml")
    text = "".join(line for line in open(path) if not line.startswith("shutdown_grace_s"))
    open(path, "w").write(text + "shutdown_grace_s = 2.0\n")
    enroll(directory, a.pub_path)
    store = "file://" + str(tmp_path / "store")
    server = intake_server(store, directory=directory)
    client = Client(server.url, signing_key(a.directory))
    upload_card(client, a.storage)
    before = client.state()
    seq = max(s for s, _ in card_files(b.storage)[1])
    data = open(dict(card_files(b.storage)[1])[seq], "rb").read()
    sha = hashlib.sha256(data).hexdigest()
    url_path = f"/v1/devices/{client.device}/segments/{seq + 100}/{sha}/parts/0"
    part = data[:16384]
    headers = sign_request(client.key, "PUT", url_path, sha256_hex(part), time.time_ns() // 1000,
                           secrets.token_hex(16))
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as s:
        head = f"PUT {url_path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(part)}\r\n" \
               f"{H_SEGMENT_SIZE}: {len(data)}\r\n{H_PART_BYTES}: 16384\r\n" + \
               "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        s.sendall(head.encode() + part[:1000])            # in flight, and stalled
        assert client.call("GET", "state")[0] == 200      # the server has surely read our headers by now
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(15) == 0
        assert time.monotonic() - started < 2.0 + 3.0
    again = intake_server(store, directory=directory)
    after = Client(again.url, signing_key(a.directory)).state()
    assert after["segments"] == before["segments"] and after["audit"] == before["audit"]
    assert after["uploads"] == []
