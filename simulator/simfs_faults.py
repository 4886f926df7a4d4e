"""What SimFS is told to do wrong: injected errors, armed power cuts, a full card.

Kept apart from the file-system model so each rule reads on its own: an operation of a
kind ("write", "fsync", "create", "rename"; "open", "unlink") on a path is first offered
to the armed cuts, then to the faults, and a write is then held to the free space left.
"""
from __future__ import annotations

import errno as errno_codes
import os
from dataclasses import dataclass

OPS = ("write", "fsync", "create", "rename", "any")
ERRNOS = {"ENOSPC": errno_codes.ENOSPC, "EIO": errno_codes.EIO}
CUT_MODES = ("drop", "tear")


def covers(under: str | None, path: str) -> bool:
    return under is None or path == under or path.startswith(under + os.sep)


def check_op(op: str) -> None:
    if op not in OPS:
        raise ValueError(f"op must be one of {OPS}, got {op!r}")


def check_mode(mode: str) -> None:
    if mode not in CUT_MODES:
        raise ValueError(f"power cut mode must be one of {CUT_MODES}, got {mode!r}")


def _matches(op: str, kind: str) -> bool:
    return op == "any" or op == kind


@dataclass
class _Fault:
    errno: int
    op: str
    under: str | None
    skip_ops: int           # matching operations still to pass before it arms (nth - 1)
    bytes_left: int         # bytes still to be written before it strikes
    count_left: int | None  # failures still to give; None: until healed


@dataclass
class _ArmedCut:
    op: str
    under: str | None
    skip_ops: int
    mode: str


@dataclass
class _Fill:
    under: str | None
    free_bytes: int


class FaultPlan:
    """Not thread-safe on its own: SimFS calls it under its lock."""

    def __init__(self) -> None:
        self._faults: list[_Fault] = []
        self._cuts: list[_ArmedCut] = []
        self._fill: _Fill | None = None

    # -- arming ---------------------------------------------------------------------------

    def add_fault(self, errno: str, op: str, after_bytes: int | None, count: int | None, nth: int,
                  under: str | None) -> None:
        if errno not in ERRNOS:
            raise ValueError(f"errno must be one of {sorted(ERRNOS)}, got {errno!r}")
        check_op(op)
        if after_bytes is not None and after_bytes < 0:
            raise ValueError(f"after_bytes must not be negative, got {after_bytes}")
        if count is not None and count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        if nth < 1:
            raise ValueError(f"nth counts from 1, got {nth}")
        self._faults.append(_Fault(ERRNOS[errno], op, under, nth - 1, after_bytes or 0, count))

    def add_cut(self, op: str, nth: int, mode: str, under: str | None) -> None:
        check_op(op)
        check_mode(mode)
        if nth < 1:
            raise ValueError(f"nth counts from 1, got {nth}")
        self._cuts.append(_ArmedCut(op, under, nth - 1, mode))

    def set_fill(self, free_bytes: int | None, under: str | None) -> None:
        if free_bytes is not None and free_bytes < 0:
            raise ValueError(f"free_bytes must not be negative, got {free_bytes}")
        self._fill = None if free_bytes is None else _Fill(under, free_bytes)

    def heal(self) -> None:
        self._faults.clear()
        self._fill = None

    @property
    def cut_armed(self) -> bool:
        return bool(self._cuts)

    # -- as operations happen ---------------------------------------------------------------

    def due_cut(self, kind: str, path: str) -> str | None:
        """The mode of an armed cut that strikes this operation, if one does (it is used up)."""
        for cut in self._cuts:
            if covers(cut.under, path) and _matches(cut.op, kind):
                if cut.skip_ops:
                    cut.skip_ops -= 1
                    continue
                self._cuts.remove(cut)
                return cut.mode
        return None

    def check(self, kind: str, path: str, write_bytes: int = 0) -> int:
        """Raise the OSError a fault gives this operation, or return how many of
        `write_bytes` may land (fewer: a short write, at a fault's mark or the card's end)."""
        limit, striking = write_bytes, None
        for fault in self._faults:
            if not covers(fault.under, path):
                continue
            if fault.skip_ops:
                fault.skip_ops -= _matches(fault.op, kind)
            elif fault.bytes_left:
                if kind == "write" and _matches(fault.op, kind):
                    limit = min(limit, fault.bytes_left)
            elif _matches(fault.op, kind) and striking is None:
                striking = fault
        if striking is not None:
            if striking.count_left is not None:
                striking.count_left -= 1
                if striking.count_left == 0:
                    self._faults.remove(striking)
            raise OSError(striking.errno, os.strerror(striking.errno), path)
        fill = self._fill
        if kind == "write" and fill is not None and covers(fill.under, path):
            if fill.free_bytes == 0 and write_bytes:
                raise OSError(errno_codes.ENOSPC, os.strerror(errno_codes.ENOSPC), path)
            limit = min(limit, fill.free_bytes)
        return limit

    def landed(self, path: str, count: int) -> None:
        """`count` bytes were written to `path`: byte marks move, the card fills."""
        for fault in self._faults:
            if not fault.skip_ops and fault.bytes_left and covers(fault.under, path):
                fault.bytes_left = max(0, fault.bytes_left - count)
        if self._fill is not None and covers(self._fill.under, path):
            self._fill.free_bytes = max(0, self._fill.free_bytes - count)

    def freed(self, path: str, count: int) -> None:
        if self._fill is not None and covers(self._fill.under, path):
            self._fill.free_bytes += count

    def free_bytes(self, path: str) -> int | None:
        """The free space a fill leaves at `path`, or None: the real free space."""
        if self._fill is not None and covers(self._fill.under, path):
            return self._fill.free_bytes
        return None
