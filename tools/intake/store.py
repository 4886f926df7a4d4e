"""Where the intake keeps everything it knows (docs/offload.md §5): a file tree or an
S3-compatible bucket behind one small interface.

Every write that decides something is create-only, so replicas sharing one store can
race without ever both accepting two different things under one name: S3's
`If-None-Match: *`, or on a file system a finished temporary file hard-linked into
place (link(2) fails if the name exists, and the name never shows a half-written file).
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from typing import BinaryIO
from urllib.parse import urlparse

_KEY = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*\Z")
COPY_BYTES = 1024 * 1024
CONFLICT_RETRIES = 4


class StoreError(Exception):
    """The store cannot be reached or refused an operation (not "already exists")."""


class StoreURLError(ValueError):
    """A --store URL this intake cannot use."""


def check_key(key: str) -> str:
    if not _KEY.match(key) or any(part in (".", "..") for part in key.split("/")):
        raise ValueError(f"not a store key: {key!r}")
    return key


class Store:
    """The interface. Keys are '/'-separated names of [A-Za-z0-9._-] parts."""
    url: str

    def get(self, key: str) -> bytes | None:
        raise NotImplementedError

    def get_to_file(self, key: str, f: BinaryIO) -> bool:
        """Stream the object into `f`; False if it does not exist."""
        raise NotImplementedError

    def put_if_absent(self, key: str, data: bytes | BinaryIO, durable: bool = True) -> bool:
        """Create the object; False (nothing changed) if it already exists. With
        `durable=False` the store may lose it in a crash (never half of it): for upload
        parts and nonces, which the device re-sends or which guard idempotent requests."""
        raise NotImplementedError

    def list(self, prefix: str) -> list[str]:
        """Every key that starts with `prefix`, sorted."""
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def ping(self) -> None:
        """Raise StoreError unless the store answers."""
        raise NotImplementedError


class FileStore(Store):
    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.url = "file://" + self.root

    def _path(self, key: str) -> str:
        return os.path.join(self.root, *check_key(key).split("/"))

    def get(self, key: str) -> bytes | None:
        try:
            with open(self._path(key), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"{key}: {exc.strerror}") from None

    def get_to_file(self, key: str, f: BinaryIO) -> bool:
        try:
            with open(self._path(key), "rb") as src:
                shutil.copyfileobj(src, f, COPY_BYTES)
            return True
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StoreError(f"{key}: {exc.strerror}") from None

    def put_if_absent(self, key: str, data: bytes | BinaryIO, durable: bool = True) -> bool:
        path = self._path(key)
        directory = os.path.dirname(path)
        try:
            if os.path.exists(path):
                return False
            os.makedirs(directory, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    if isinstance(data, (bytes, bytearray, memoryview)):
                        f.write(data)
                    else:
                        shutil.copyfileobj(data, f, COPY_BYTES)
                    f.flush()
                    if durable:
                        os.fsync(f.fileno())
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    return False
                if durable:
                    _fsync_dir(directory)
                return True
            finally:
                os.unlink(tmp)
        except OSError as exc:
            raise StoreError(f"{key}: {exc.strerror}") from None

    def list(self, prefix: str) -> list[str]:
        # Walk only the directory the prefix names (keys are paths).
        base, _, _ = prefix.rpartition("/")
        start = os.path.join(self.root, *base.split("/")) if base else self.root
        found = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = os.path.relpath(dirpath, self.root)
            for name in filenames:
                if name.startswith("."):
                    continue
                key = name if rel == "." else f"{rel.replace(os.sep, '/')}/{name}"
                if key.startswith(prefix):
                    found.append(key)
        return sorted(found)

    def delete(self, key: str) -> None:
        try:
            os.unlink(self._path(key))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StoreError(f"{key}: {exc.strerror}") from None

    def ping(self) -> None:
        if not os.path.isdir(self.root) or not os.access(self.root, os.W_OK):
            raise StoreError(f"{self.root} is not a writable directory")


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class S3Store(Store):
    """Any S3-compatible store (AWS S3, MinIO, Ceph RGW). Credentials come from the
    usual AWS environment variables or files, as boto3 finds them."""

    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None) -> None:
        try:
            import boto3
            from botocore.config import Config
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError:
            raise StoreURLError("s3:// stores need boto3: pip install 'openbwc[s3]'") from None
        self._client_errors = (BotoCoreError, ClientError)
        self._ClientError = ClientError
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        # A few quick retries, then fail: the device retries a refused request itself.
        config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=60,
                        max_pool_connections=32)
        self._s3 = boto3.client("s3", endpoint_url=endpoint_url, config=config)

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _code(self, exc: Exception) -> str:
        if isinstance(exc, self._ClientError):
            return str(exc.response.get("Error", {}).get("Code", ""))
        return ""

    def get(self, key: str) -> bytes | None:
        try:
            return self._s3.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except self._client_errors as exc:
            if self._code(exc) in ("NoSuchKey", "404"):
                return None
            raise StoreError(f"{key}: {exc}") from None

    def get_to_file(self, key: str, f: BinaryIO) -> bool:
        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
            for block in body.iter_chunks(COPY_BYTES):
                f.write(block)
            return True
        except self._client_errors as exc:
            if self._code(exc) in ("NoSuchKey", "404"):
                return False
            raise StoreError(f"{key}: {exc}") from None

    def put_if_absent(self, key: str, data: bytes | BinaryIO, durable: bool = True) -> bool:
        start = data.tell() if hasattr(data, "tell") else None
        for attempt in range(CONFLICT_RETRIES + 1):
            try:
                self._s3.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*")
                return True
            except self._client_errors as exc:
                code = self._code(exc)
                if code in ("PreconditionFailed", "412"):
                    return False    # it exists
                # 409 ConditionalRequestConflict (AWS): a racing create is under way and may
                # still fail; ask again rather than assume it won.
                if code not in ("ConditionalRequestConflict", "409") or attempt == CONFLICT_RETRIES:
                    raise StoreError(f"{key}: {exc}") from None
                if start is not None:
                    data.seek(start)
                time.sleep(0.05 * (attempt + 1))
        return False

    def list(self, prefix: str) -> list[str]:
        full = (self.prefix + "/" if self.prefix else "") + prefix
        cut = len(self.prefix) + 1 if self.prefix else 0
        keys: list[str] = []
        try:
            for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
                keys.extend(obj["Key"][cut:] for obj in page.get("Contents", ()))
        except self._client_errors as exc:
            raise StoreError(f"list {prefix}: {exc}") from None
        return sorted(keys)

    def delete(self, key: str) -> None:
        try:
            self._s3.delete_object(Bucket=self.bucket, Key=self._key(key))
        except self._client_errors as exc:
            raise StoreError(f"{key}: {exc}") from None

    def ping(self) -> None:
        try:
            self._s3.head_bucket(Bucket=self.bucket)
        except self._client_errors as exc:
            raise StoreError(f"s3://{self.bucket}: {exc}") from None


def open_store(url: str, s3_endpoint: str | None = None) -> Store:
    """`file:///path` or `s3://bucket[/prefix]`."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost") or not parsed.path.startswith("/"):
            raise StoreURLError(f"{url}: a file store is file:///absolute/path")
        return FileStore(parsed.path)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise StoreURLError(f"{url}: an S3 store is s3://bucket/prefix")
        prefix = parsed.path.strip("/")
        if prefix and not _KEY.match(prefix):
            raise StoreURLError(f"{url}: the prefix may hold only letters, digits, '.', '_', '-' and '/'")
        return S3Store(parsed.netloc, prefix, s3_endpoint)
    raise StoreURLError(f"{url}: a store is file:///path or s3://bucket/prefix")
