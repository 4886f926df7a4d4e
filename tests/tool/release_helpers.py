"""Helpers of the release-copy tool tests."""
from __future__ import annotations


def resign_record(record: dict, key_path) -> bytes:
    """A release record changed and signed again with the release key: what a dishonest
    releaser holding the key could hand out (the signature holds; the content must not)."""
    from device.evidence.keys import read_release_secret
    from tools.release.record import record_bytes, sign_record
    body = {k: v for k, v in record.items() if k not in ("signature", "format", "version", "kind", "release_key")}
    return record_bytes(sign_record(read_release_secret(str(key_path)), body))
