"""Test helpers for the intake tier: a real `bwc intake serve` subprocess, a real moto S3
server, and a minimal signed client (docs/offload.md §3) — a test helper, not the device's
offload client (tools/offload/), so the intake is tested against the document."""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

from nacl.signing import SigningKey

from device.offload.protocol import H_PART_BYTES, H_SEGMENT_SIZE, sha256_hex, sign_request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
START_TIMEOUT_S = 30


def env(**extra: str) -> dict:
    e = dict(os.environ, PYTHONPATH=ROOT)
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        e.setdefault(name, value)
    e.update(extra)
    return e


def bwc(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env(), cwd=ROOT)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """`bwc intake serve` on 127.0.0.1 (port 0: it prints the port it bound)."""
    intake_dir: str
    store_url: str
    log_path: str
    s3_endpoint: str | None = None
    proc: subprocess.Popen | None = None
    url: str = ""
    port: int = 0
    _log: object = field(default=None, repr=False)

    def start(self) -> "Server":
        args = [sys.executable, "-m", "tools.cli", "intake", "serve", self.intake_dir, "--listen", "127.0.0.1:0",
                "--store", self.store_url]
        if self.s3_endpoint:
            args += ["--s3-endpoint", self.s3_endpoint]
        self._log = open(self.log_path, "a", encoding="utf-8")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self._log, text=True, env=env(), cwd=ROOT)
        line = self.proc.stdout.readline()   # blocks until bound (or the process died)
        assert line.startswith("listening on http://"), (line, open(self.log_path).read())
        self.url = line.split()[2]
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    def stop(self, timeout_s: float = 30) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        finally:
            self._log.close()

    def access_log(self) -> list[dict]:
        if not self._log.closed:
            self._log.flush()
        with open(self.log_path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.startswith("{")]


class MotoServer:
    """A real S3 API server (moto in server mode) on a free loopback port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env())
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert self.proc.poll() is None, "moto server died"
                assert time.monotonic() < deadline, "moto server did not start"
                time.sleep(0.05)   # waiting for a real process to bind; no other signal exists
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def client(self):
        import boto3
        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id="testing",
                            aws_secret_access_key="testing", region_name="us-east-1")

    def new_bucket(self) -> str:
        name = "evidence-" + secrets.token_hex(6)
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class ExternalS3:
    """An S3-compatible server someone else runs (MinIO, Ceph RGW): OBWC_TEST_S3_ENDPOINT,
    with the credentials in the usual AWS_* variables. Buckets are made per test."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def client(self):
        import boto3
        return boto3.client("s3", endpoint_url=self.endpoint)

    def new_bucket(self) -> str:
        name = "evidence-" + secrets.token_hex(6)
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        pass


def s3_server():
    """A real S3 API server for the tests: moto on loopback, or the one OBWC_TEST_S3_ENDPOINT names."""
    endpoint = os.environ.get("OBWC_TEST_S3_ENDPOINT")
    return ExternalS3(endpoint) if endpoint else MotoServer()


class Client:
    """Signs requests as a device (docs/offload.md §3.1)."""

    def __init__(self, url: str, key: SigningKey, clock_offset_us: int = 0) -> None:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.host, self.port, self.key = host, int(port), key
        self.device = bytes(key.verify_key).hex()
        self.offset_us = clock_offset_us

    def raw(self, method: str, path: str, body: bytes = b"", headers: dict | None = None,
            utc_us: int | None = None, nonce: str | None = None) -> tuple[int, dict, dict]:
        utc_us = time.time_ns() // 1000 + self.offset_us if utc_us is None else utc_us
        nonce = nonce or secrets.token_hex(16)
        signed = sign_request(self.key, method, path, sha256_hex(body), utc_us, nonce)
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers={**signed, **(headers or {}),
                                                            "Content-Length": str(len(body))})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, json.loads(data), dict(resp.getheaders())
        finally:
            conn.close()

    def call(self, method: str, tail: str, body: bytes = b"", headers: dict | None = None, **kw) -> tuple[int, dict]:
        status, body_json, _ = self.raw(method, f"/v1/devices/{self.device}/{tail}", body, headers, **kw)
        return status, body_json

    def state(self) -> dict:
        status, body = self.call("GET", "state")
        assert status == 200, body
        return body

    def put_audit(self, file: int, offset: int, data: bytes) -> tuple[int, dict]:
        return self.call("PUT", f"audit/{file}/{offset}", data)

    def upload(self, seq: int, data: bytes, part_bytes: int = 16 * 1024, commit: bool = True) -> tuple[int, dict]:
        sha = hashlib.sha256(data).hexdigest()
        for index in range(-(-len(data) // part_bytes)):
            status, body = self.call("PUT", f"segments/{seq}/{sha}/parts/{index}",
                                     data[index * part_bytes:(index + 1) * part_bytes],
                                     {H_SEGMENT_SIZE: str(len(data)), H_PART_BYTES: str(part_bytes)})
            if status != 200:
                return status, body
            if body.get("status") == "already_held":
                break
        return self.call("POST", f"segments/{seq}/{sha}/commit") if commit else (200, {})


def card_files(storage: str) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(audit files, segment files) of a card as (number, path), oldest first."""
    from device.evidence.audit_lines import audit_file_number
    from device.evidence.format import seq_from_file_name
    audits, segments = [], []
    for name in sorted(os.listdir(storage)):
        path = os.path.join(storage, name)
        if (n := audit_file_number(name)) is not None:
            audits.append((n, path))
        elif (s := seq_from_file_name(name)) is not None:
            segments.append((s, path))
    return audits, segments


def upload_card(client: Client, storage: str, part_bytes: int = 16 * 1024) -> dict:
    """Everything on a card, audit first then segments; returns the last response body."""
    audits, segments = card_files(storage)
    body: dict = {}
    for number, path in audits:
        with open(path, "rb") as f:
            data = f.read()
        data = data[:data.rfind(b"\n") + 1]   # whole lines only
        if data:
            status, body = client.put_audit(number, 0, data)
            assert status == 200, body
    for seq, path in segments:
        with open(path, "rb") as f:
            status, body = client.upload(seq, f.read(), part_bytes)
        assert status == 200, body
    return body


def stop_signal() -> int:
    return signal.SIGTERM
