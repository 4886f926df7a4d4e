"""The key store's custody head (device/chainstate.py): a corrupt record is refused with
one clear error, never half-trusted; recovery says exactly what boot found."""
from __future__ import annotations

import json
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from device.chainstate import ChainState, ChainStateError, recover
from hal.keystore import KeyStore

DEVICE = SigningKey(bytes([1]) * 32)


class MemoryKeyStore(KeyStore):
    def __init__(self, record: bytes | None = None) -> None:
        self.records = {} if record is None else {"chain.json": record}

    def signing_seed(self) -> bytes:
        return bytes(DEVICE)

    def read_record(self, name):
        return self.records.get(name)

    def write_record(self, name, data):
        self.records[name] = data


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=6),
                     max_leaves=20)
_fields = st.fixed_dictionaries({}, optional={
    "next_seq": _json, "head": _json, "open_seq": _json, "running": _json, "open_event": _json,
    "audit": _json, "pending_faults": _json})


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.binary(max_size=200), _fields.map(lambda d: json.dumps(d).encode()),
                 _json.map(lambda v: json.dumps(v).encode())))
def test_any_record_loads_whole_or_is_refused(record):
    try:
        state = ChainState.load(MemoryKeyStore(record))
    except ChainStateError as exc:
        assert "corrupt" in str(exc)
        return
    assert state._well_formed()
    state.save(MemoryKeyStore())   # and it round-trips


def test_a_missing_record_is_a_new_device():
    assert ChainState.load(MemoryKeyStore()) == ChainState()


def test_round_trip():
    store = MemoryKeyStore()
    state = ChainState(next_seq=5, head={"seq": 4, "hash": "ab" * 32, "chunks": 3}, running=True,
                       audit={"next_n": 9, "prev": "cd" * 32, "next_file": 3, "last_line": "x"},
                       pending_faults=[{"kind": "storage"}])
    state.save(store)
    assert ChainState.load(store) == state


class Names:
    """A storage with given files (only names and reads are used by recover)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def names(self):
        return sorted(self.files)

    def open_read(self, name):
        return _Readable(self.files[name])


class _Readable:
    """A real file (the boot check maps it), holding `data`."""

    def __init__(self, data: bytes) -> None:
        self._f = tempfile.TemporaryFile()
        self._f.write(data)
        self._f.seek(0)

    def __enter__(self):
        return self._f

    def __exit__(self, *exc):
        self._f.close()


@pytest.mark.parametrize("files, found", [({}, "absent"), ({"seg-0000000003.bwc": b"\x89OBW"}, "unauthenticated")])
def test_recovery_names_what_boot_found(files, found):
    state = ChainState(next_seq=4, open_seq=3, running=True, open_event="e" * 32)
    recovery = recover(state, Names(files), DEVICE.verify_key)
    assert recovery.fields() == {"seq": 3, "found": found, "chunks": None, "hash": None, "event_id": "e" * 32}
    assert state.next_seq == 4 and state.open_seq is None and state.open_event is None


def test_a_clean_shutdown_needs_no_recovery():
    assert recover(ChainState(next_seq=4), Names({}), DEVICE.verify_key) is None
