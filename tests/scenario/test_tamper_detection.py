"""VER-2 / SEG-3 on a real recording: a flipped byte anywhere in any evidence file, and a
deleted, reordered or duplicated segment, is an integrity failure (bwc verify exit 1)
that names the file, never "authentic" and never "cut short by power loss"."""
from __future__ import annotations

import os
import shutil

import pytest

from device.evidence.format import (
    CHECKPOINT_RECORD_BYTES, PREAMBLE_BYTES, RECORD_HEAD, TYPE_CHECKPOINT, TYPE_CHUNK, TYPE_HEADER,
    segment_file_name,
)
from device.evidence.keys import read_device_public
from device.evidence.storage_verify import INTEGRITY_FAILURE, verify_storage
from scenario_support import bwc_many, copy_storage

pytestmark = pytest.mark.scenario

T = CHECKPOINT_RECORD_BYTES
HEAD = RECORD_HEAD.size
# Offsets of the checkpoint body's fields (docs/format.md §3.3), last byte of each integer.
CKPT_FIELDS = {"magic": 0, "seq": 15, "chunk_count": 23, "offset": 31, "media_end_us": 39,
               "hash": 40 + 17, "flags": 72, "signature": 73 + 40}


def _records(data: bytes) -> list[tuple[int, int, int]]:
    """(type, offset, body length) of every record of an intact segment file."""
    out, pos = [], PREAMBLE_BYTES
    while pos < len(data):
        rtype, length = RECORD_HEAD.unpack_from(data, pos)
        out.append((rtype, pos, length))
        pos += HEAD + length
    assert pos == len(data)
    return out


def segment_positions(data: bytes) -> list[int]:
    """~40 byte positions covering the preamble, header, every checkpoint (K0, each
    flush, the final one and its copy), chunks, and the last bytes of the file."""
    size = len(data)
    positions = {0, 3, 7, 8, 9}
    records = _records(data)
    fields = list(CKPT_FIELDS.values())
    chunk_index = 0
    for index, (rtype, off, length) in enumerate(records):
        body = off + HEAD
        if rtype == TYPE_HEADER:
            positions |= {off, off + 4, body, body + length // 2, body + length - 1}
        elif rtype == TYPE_CHECKPOINT:
            # Two fields per checkpoint, rotating, so every field is hit somewhere;
            # the hash and the signature of every checkpoint.
            positions |= {body + fields[index % len(fields)], body + fields[(index + 3) % len(fields)],
                          body + CKPT_FIELDS["hash"], body + CKPT_FIELDS["signature"]}
        elif rtype == TYPE_CHUNK:
            picks = [off, off + 4, body, body + length // 2, body + length - 1]
            positions.add(picks[chunk_index % len(picks)])
            positions.add(body + (length * (chunk_index + 1)) // 7 % length)
            chunk_index += 1
    positions |= {size // 2, size - 1, size - 2, size - T, size - T - 1, size - 2 * T, size - 2 * T + HEAD + 72}
    return sorted(p for p in positions if 0 <= p < size)


def audit_positions(data: bytes) -> list[int]:
    """Per line: its first byte, the middle of its JSON, the separator, a signature
    character and its newline (the last one is the file's last byte)."""
    positions, start = set(), 0
    for line in data.split(b"\n")[:-1]:
        space = start + line.rindex(b" ")
        positions |= {start, start + (space - start) // 2, space, space + 1 + len(line) % 100, start + len(line)}
        start += len(line) + 1
    assert start == len(data)
    return sorted(positions)


@pytest.fixture(scope="module")
def device_key(main_recording):
    return read_device_public(main_recording.device.pub_path)


@pytest.fixture
def storage_copy(main_recording, tmp_path):
    return copy_storage(main_recording.storage, str(tmp_path / "storage"))


def test_intact_copy_is_authentic(storage_copy, device_key):
    assert verify_storage(storage_copy, device_key).outcome == "authentic"


def _flip_all(storage: str, name: str, positions: list[int], device_key) -> list[tuple]:
    path = os.path.join(storage, name)
    with open(path, "rb") as f:
        original = f.read()
    missed = []
    try:
        for n, pos in enumerate(positions):
            damaged = bytearray(original)
            damaged[pos] ^= 0x01 if n % 2 == 0 else 0x80  # a low and a high bit flip
            with open(path, "wb") as f:
                f.write(damaged)
            report = verify_storage(storage, device_key)
            named = {file for file, _ in report.problems}
            if report.outcome != INTEGRITY_FAILURE or name not in named:
                missed.append((name, pos, len(original), report.outcome, report.problems, report.cut_short))
    finally:
        with open(path, "wb") as f:
            f.write(original)
    return missed


def test_byte_flip_in_any_segment_is_named_integrity_failure(main_recording, storage_copy, device_key):
    segments = main_recording.segment_files()
    assert len(segments) >= 3
    missed, tried = [], 0
    for name in segments:
        with open(os.path.join(storage_copy, name), "rb") as f:
            positions = segment_positions(f.read())
        assert len(positions) >= 20 or name == segments[-1], (name, len(positions))
        tried += len(positions)
        missed += _flip_all(storage_copy, name, positions, device_key)
    assert not missed, f"{len(missed)} of {tried} byte flips not reported as tampering of that file: {missed[:5]}"


def test_byte_flip_in_audit_log_body_is_named_integrity_failure(storage_copy, device_key):
    with open(os.path.join(storage_copy, "audit-0000000001.log"), "rb") as f:
        data = f.read()
    positions = [p for p in audit_positions(data) if p != len(data) - 1]
    assert len(positions) >= 20
    missed = _flip_all(storage_copy, "audit-0000000001.log", positions, device_key)
    assert not missed, f"{len(missed)} of {len(positions)} audit.log byte flips missed: {missed[:5]}"


def test_byte_flip_of_audit_log_final_newline_is_integrity_failure(storage_copy, device_key):
    with open(os.path.join(storage_copy, "audit-0000000001.log"), "rb") as f:
        size = len(f.read())
    missed = _flip_all(storage_copy, "audit-0000000001.log", [size - 1], device_key)
    assert not missed, missed


def _cli_verify_args(storage: str, pub: str) -> list[str]:
    return ["verify", storage, "--device-pub", pub]


def test_cli_reports_flips_deletion_reordering_and_duplication(main_recording, tmp_path):
    """A handful of tamperings through the real `bwc verify`, run concurrently."""
    src, pub = main_recording.storage, main_recording.device.pub_path
    segments = main_recording.segment_files()
    cases: dict[str, tuple[str, str | None]] = {}  # case -> (storage dir, file the output must name)

    def fresh(case: str) -> str:
        return copy_storage(src, str(tmp_path / case))

    def flip(case: str, name: str, where) -> None:
        storage = fresh(case)
        path = os.path.join(storage, name)
        with open(path, "rb") as f:
            data = bytearray(f.read())
        data[where(len(data))] ^= 0x01
        with open(path, "wb") as f:
            f.write(data)
        cases[case] = (storage, name)

    flip("flip-first-header", segments[0], lambda n: PREAMBLE_BYTES + HEAD + 40)
    flip("flip-middle-segment", segments[len(segments) // 2], lambda n: n // 2)
    flip("flip-last-segment-end", segments[-1], lambda n: n - 1)
    flip("flip-audit", "audit-0000000001.log", lambda n: n // 2)

    storage = fresh("delete-middle")
    os.unlink(os.path.join(storage, segments[1]))
    cases["delete-middle"] = (storage, None)
    storage = fresh("delete-last")
    os.unlink(os.path.join(storage, segments[-1]))
    cases["delete-last"] = (storage, None)
    storage = fresh("reorder")
    a, b = os.path.join(storage, segments[1]), os.path.join(storage, segments[2])
    os.rename(a, a + ".tmp")
    os.rename(b, a)
    os.rename(a + ".tmp", b)
    cases["reorder"] = (storage, segments[1])
    storage = fresh("duplicate")
    next_free = segment_file_name(int(segments[-1][4:14]) + 1)
    shutil.copyfile(os.path.join(storage, segments[1]), os.path.join(storage, next_free))
    cases["duplicate"] = (storage, next_free)

    names = list(cases)
    results = bwc_many([_cli_verify_args(cases[c][0], pub) for c in names])
    wrong = []
    for case, result in zip(names, results):
        must_name = cases[case][1]
        if result.returncode != 1 or (must_name and must_name not in result.stdout + result.stderr):
            wrong.append((case, result.returncode, must_name, result.stdout[-600:], result.stderr[-300:]))
    assert not wrong, wrong
