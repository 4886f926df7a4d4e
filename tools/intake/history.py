"""A device's history as an intake holds it, laid out as a card (docs/offload.md §9), so
`bwc verify` and `bwc export` read it with exactly the code that reads a card."""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from contextlib import contextmanager

from device.evidence.audit_lines import audit_file_name
from device.evidence.format import segment_file_name
from tools.intake.ledger import Ledger
from tools.intake.store import Store

_DEVICE = re.compile(r"devices/([0-9a-f]{64})/names\Z")


class HistoryError(Exception):
    pass


def find_device(store: Store, device_id: str) -> str:
    """The key (hex) of the device whose first accepted segment named `device_id`."""
    found = [m.group(1) for key in store.list("devices/") if (m := _DEVICE.match(key))
             and store.get(key) == device_id.encode()]
    if not found:
        raise HistoryError(f"the intake at {store.url} holds no device named {device_id!r}")
    if len(found) > 1:
        raise HistoryError(f"several devices at {store.url} are named {device_id!r}; give --device-pub")
    return found[0]


def write_history(store: Store, device: str, out_dir: str) -> int:
    """Write the device's accepted segments and audit files into `out_dir`; returns
    how many files. Objects are streamed to disk, never held whole in memory."""
    ledger = Ledger(store, intake_key=None)
    written = 0
    for seq, record in sorted(ledger.records(device).items()):
        with open(os.path.join(out_dir, segment_file_name(seq)), "wb") as f:
            if not store.get_to_file(f"devices/{device}/segments/{seq:010d}-{record['sha256']}.bwc", f):
                raise HistoryError(f"the intake's record of segment {seq} has no bytes in the store")
        written += 1
    for part in ledger.audit_parts(device):
        path = os.path.join(out_dir, audit_file_name(part.file))
        with open(path, "ab") as f:
            if f.tell() != part.offset:
                raise HistoryError(f"audit file {part.file} at the intake has a hole before byte {part.offset}")
            store.get_to_file(f"devices/{device}/audit/{part.file:010d}/{part.offset:012d}.log", f)
        written += 1
    return written


@contextmanager
def materialised(store: Store, device: str):
    """A private temporary directory holding the history; always removed."""
    directory = tempfile.mkdtemp(prefix="bwc-intake-")
    try:
        if write_history(store, device, directory) == 0:
            raise HistoryError(f"the intake at {store.url} holds nothing of device {device[:16]}…")
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
