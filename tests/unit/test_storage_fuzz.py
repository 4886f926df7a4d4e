"""Property tests over the whole-set verifier (SEC-3, VER-2): whatever is done to a card's
files, verification answers from the closed set without a traceback or a hang, and a card
whose bytes were changed never reads as authentic."""
from __future__ import annotations

import os
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device.evidence.storage_report import OVERALL_OUTCOMES
from device.evidence.storage_verify import verify_storage
from test_storage_verify import DEVICE, Card


@pytest.fixture(scope="module")
def base_card(tmp_path_factory) -> str:
    card = Card(tmp_path_factory.mktemp("fuzz-base") / "card")
    card.event(segments=2)
    card.event(segments=1, power_loss=True)
    card.reboot()
    card.event(segments=1)
    return card.close()


_OPS = st.lists(st.tuples(st.sampled_from(["flip", "truncate", "append", "delete", "copy_as", "rename"]),
                          st.integers(min_value=0, max_value=10**6), st.binary(min_size=1, max_size=40)),
                min_size=1, max_size=4)


def _mutate(root: str, ops) -> bool:
    """Apply the operations; True if some file's bytes were changed in place."""
    changed = False
    for op, number, blob in ops:
        names = sorted(os.listdir(root))
        if not names:
            return changed
        name = names[number % len(names)]
        path = os.path.join(root, name)
        size = os.path.getsize(path)
        if op == "flip" and size:
            with open(path, "r+b") as f:
                f.seek(number % size)
                byte = f.read(1)
                f.seek(number % size)
                f.write(bytes([byte[0] ^ (blob[0] or 1)]))
            changed = True
        elif op == "truncate" and size:
            os.truncate(path, number % size)
            changed = True
        elif op == "append":
            with open(path, "ab") as f:
                f.write(blob)
            changed = True
        elif op == "delete":
            os.remove(path)
        elif op == "copy_as":
            target = os.path.join(root, f"seg-{number % 20 + 1:010d}.bwc")
            if target != path:
                changed |= os.path.exists(target)   # a file's content replaced by another's
                shutil.copy(path, target)
        elif op == "rename":
            target = os.path.join(root, f"audit-{number % 5 + 1:010d}.log")
            if target != path:
                changed |= os.path.exists(target)
                os.replace(path, target)
    return changed


@settings(max_examples=int(os.environ.get("BWC_FUZZ_EXAMPLES", "150")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_OPS)
def test_any_damage_is_judged_and_changed_bytes_never_read_as_authentic(base_card, tmp_path_factory, ops):
    root = str(tmp_path_factory.mktemp("fuzz") / "card")
    shutil.copytree(base_card, root)
    changed = _mutate(root, ops)
    report = verify_storage(root, DEVICE.verify_key)
    assert report.outcome in OVERALL_OUTCOMES
    if changed:
        assert report.outcome in ("integrity_failure", "truncated"), (ops, report.to_json())


def test_the_base_card_is_power_loss_not_tampering(base_card):
    report = verify_storage(base_card, DEVICE.verify_key)
    assert report.outcome == "truncated", report.to_json()
