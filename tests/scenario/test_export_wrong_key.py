"""TOOL-2 / SEG-2: export with a key that is not one of the footage's custodian keys
fails with a clear message and writes nothing."""
from __future__ import annotations

import os

import pytest

from scenario_support import bwc_many

pytestmark = pytest.mark.scenario


def test_export_with_non_custodian_keys_fails_and_writes_nothing(main_recording, other_custodian, tmp_path):
    rec = main_recording
    storage = rec.storage
    before = {n: os.path.getsize(os.path.join(storage, n)) for n in rec.storage_files()}
    absent, empty = str(tmp_path / "absent"), str(tmp_path / "empty")
    os.mkdir(empty)
    wrong_kind = str(tmp_path / "wrong-kind")
    runs = {
        # A real custodian secret key, but not one this device was provisioned with.
        "other custodian, new out dir": (["export", storage, "--key", other_custodian.secret_path,
                                          "--out", absent], absent),
        "other custodian, empty out dir": (["export", storage, "--key", other_custodian.secret_path,
                                            "--out", empty], empty),
        # The right custodian's *public* key file, and the device's public key: not secret keys.
        "custodian public key": (["export", storage, "--key", rec.custodian.public_path,
                                  "--out", wrong_kind + "-1"], wrong_kind + "-1"),
        "device public key": (["export", storage, "--key", rec.device.pub_path,
                               "--out", wrong_kind + "-2"], wrong_kind + "-2"),
    }
    results = bwc_many([args for args, _ in runs.values()])
    failures = []
    for (case, (_, out)), result in zip(runs.items(), results):
        message = (result.stderr + result.stdout).lower()
        if result.returncode == 0:
            failures.append((case, "exit 0"))
        if case.startswith("other custodian"):
            if "not a custodian key" not in message:
                failures.append((case, f"message does not say the key is not a custodian key: {message!r}"))
        elif "custodian-secret" not in message:
            failures.append((case, f"message does not say a custodian secret key is needed: {message!r}"))
        if "traceback" in message:
            failures.append((case, "traceback instead of a message"))
        if os.path.exists(out) and os.listdir(out):
            failures.append((case, f"wrote {os.listdir(out)}"))
    assert not failures, failures
    assert os.path.isdir(empty) and not os.path.exists(absent)
    after = {n: os.path.getsize(os.path.join(storage, n)) for n in rec.storage_files()}
    assert after == before
