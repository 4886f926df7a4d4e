"""A crash-consistent simulated file system over real directories (SIM-3).

SimFS implements hal.fs.FileSystem. Files written through it are real files (so
`bwc verify` and `bwc export` read them afterwards), but it remembers what has been
made durable (simulator/simfs_model.py), so that:

* power_cut(mode) rolls the real directories back to what a pulled battery leaves:
  "drop" loses every byte not fsynced and every directory entry not made durable by
  a directory fsync; "tear" also keeps a random (seeded) 512-byte-aligned prefix of
  each file's unsynced tail, the way a disk tears a write. From then on every
  operation raises PowerLost until power_restore().
* fail() / fill() inject the errors a card gives: ENOSPC or EIO on write, fsync,
  create or rename, after a short write of any length.

Operations are counted ("write", "fsync", "create", "rename"; "open" and "unlink"
count only as "any"), so a test can arm a fault or a cut at exactly the k-th one.
Reads are never failed or counted. One lock makes each operation atomic with
respect to a power cut from another thread.
"""
from __future__ import annotations

import errno as errno_codes
import os
import random
import shutil
import threading
from contextlib import contextmanager
from typing import BinaryIO, Callable, Iterator

from simulator.simfs_faults import CUT_MODES, ERRNOS, OPS, FaultPlan, check_mode, check_op, covers
from simulator.simfs_model import SECTOR_BYTES, Inode, Namespace, roll_back

__all__ = ["CUT_MODES", "ERRNOS", "OPS", "SECTOR_BYTES", "PowerLost", "SimFS"]
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR


class PowerLost(BaseException):
    """The simulated device has no power. A BaseException, so firmware code that
    handles `Exception` (a storage fault) does not mistake it for one: the thread
    that meets it simply stops, as it would when the power goes."""


class _CutInside(BaseException):
    """An armed cut struck inside an operation: raised under the lock, turned into
    PowerLost (after the listeners ran) once the lock is released."""


def _quiet_power_lost(hook):
    def excepthook(args):
        if args.exc_type is not None and issubclass(args.exc_type, PowerLost):
            return   # a thread that died with the power: nothing to report
        hook(args)
    excepthook.quiet_power_lost = True
    return excepthook


def _install_quiet_hook() -> None:
    if not getattr(threading.excepthook, "quiet_power_lost", False):
        threading.excepthook = _quiet_power_lost(threading.excepthook)


class _OpenFile:
    __slots__ = ("inode", "path", "append", "offset")

    def __init__(self, inode: Inode | None, path: str, append: bool) -> None:
        self.inode, self.path, self.append, self.offset = inode, path, append, 0


class SimFS:
    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.RLock()
        self._ns = Namespace()
        self._rng = random.Random(seed)
        self._fds: dict[int, _OpenFile] = {}
        self._powered = True
        self._plan = FaultPlan()
        self._listeners: list[Callable[[], None]] = []
        self.ops: list[tuple[str, str]] = []   # (kind, path) of every counted operation, in order
        self.power_cuts = 0
        self._cut_after_write: str | None = None   # an armed cut struck a write: cut once it lands
        _install_quiet_hook()

    # -- power ------------------------------------------------------------------------

    @property
    def powered(self) -> bool:
        return self._powered

    @property
    def cut_armed(self) -> bool:
        return self._plan.cut_armed

    def power_cut(self, mode: str = "tear") -> None:
        """Pull the battery now. Open files are gone; the real directories hold what survives."""
        check_mode(mode)
        with self._lock:
            if not self._powered:
                return
            self._cut_locked(mode)
        self._notify()

    def power_restore(self) -> None:
        with self._lock:
            self._powered = True

    def add_power_listener(self, callback: Callable[[], None]) -> None:
        """Call `callback()` after every power cut (on the thread that cut it, outside the lock)."""
        self._listeners.append(callback)

    def remove_power_listener(self, callback: Callable[[], None]) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def arm_power_cut(self, op: str = "any", nth: int = 1, mode: str = "tear", under: str | None = None) -> None:
        """Cut power inside the nth matching operation from now: a write lands (and
        may tear) before the cut; anything else does not happen. The operation raises PowerLost."""
        with self._lock:
            self._plan.add_cut(op, nth, mode, _abs(under))

    # -- faults -----------------------------------------------------------------------

    def fail(self, errno: str = "EIO", op: str = "any", after_bytes: int | None = None,
             count: int | None = None, nth: int = 1, under: str | None = None) -> None:
        """Make matching operations fail with `errno` (an OSError, as the kernel reports it).

        The fault lets nth - 1 matching operations pass, then `after_bytes` more bytes be
        written (a write that crosses that mark is cut short there, if the fault is on
        writes), then fails every matching operation: `count` times, or until heal().
        `under` limits it to paths inside one directory.
        """
        with self._lock:
            self._plan.add_fault(errno, op, after_bytes, count, nth, _abs(under))

    def fill(self, free_bytes: int | None, under: str | None = None) -> None:
        """From now the storage has only `free_bytes` free (None: its real free space again)."""
        with self._lock:
            self._plan.set_fill(free_bytes, _abs(under))

    def heal(self) -> None:
        """Remove every injected fault and the fill limit (armed power cuts stay)."""
        with self._lock:
            self._plan.heal()

    def op_count(self, op: str = "any", under: str | None = None) -> int:
        """Counted operations of kind `op` so far (optionally only inside `under`)."""
        check_op(op)
        under = _abs(under)
        with self._lock:
            return sum(1 for kind, path in self.ops if (op == "any" or kind == op) and covers(under, path))

    # -- the FileSystem protocol --------------------------------------------------------

    def open(self, path: str, flags: int, mode: int = 0o600) -> int:
        path = os.path.abspath(path)
        writing = bool(flags & _WRITE_FLAGS)
        with self._operation():
            inode = self._ns.lookup(path)
            creating = inode is None and bool(flags & os.O_CREAT)
            if writing or creating:
                self._begin("create" if creating else "open", path)
            if inode is not None and flags & os.O_CREAT and flags & os.O_EXCL:
                raise FileExistsError(errno_codes.EEXIST, os.strerror(errno_codes.EEXIST), path)
            truncating = inode is not None and inode.kind == "file" and flags & os.O_TRUNC and writing
            if truncating and inode.size:
                if inode.durable_size:
                    inode.stash_durable(path)
                self._plan.freed(path, inode.size)
            fd = os.open(path, flags, mode)
            if creating:
                inode = Inode("file")
                self._ns.current[os.path.dirname(path)][os.path.basename(path)] = inode
            if truncating:
                inode.size = 0
            self._fds[fd] = _OpenFile(inode if writing else None, path, bool(flags & os.O_APPEND))
            return fd

    def write(self, fd: int, data: bytes | memoryview) -> int:
        with self._operation():
            handle = self._handle(fd)
            limit = self._begin("write", handle.path, len(data))
            inode = handle.inode
            if inode is not None and not handle.append and handle.offset < inode.durable_size:
                inode.stash_durable(handle.path)   # about to overwrite durable bytes
            landed = os.write(fd, memoryview(data)[:limit])
            if inode is not None:
                handle.offset = (inode.size if handle.append else handle.offset) + landed
                inode.size = max(inode.size, handle.offset)
            self._plan.landed(handle.path, landed)
            if self._cut_after_write is not None:
                mode, self._cut_after_write = self._cut_after_write, None
                self._cut_locked(mode)
                raise _CutInside(f"power cut during a write to {handle.path}")
            return landed

    def fsync(self, fd: int) -> None:
        with self._operation():
            handle = self._handle(fd)
            self._begin("fsync", handle.path)
            os.fsync(fd)
            if handle.inode is not None:
                handle.inode.synced()

    def fchmod(self, fd: int, mode: int) -> None:
        with self._operation():
            os.fchmod(fd, mode)

    def close(self, fd: int) -> None:
        with self._operation():
            self._fds.pop(fd, None)
            os.close(fd)

    def replace(self, src: str, dst: str) -> None:
        src, dst = os.path.abspath(src), os.path.abspath(dst)
        with self._operation():
            self._begin("rename", dst)
            moving = self._ns.lookup(src)
            if moving is None:
                raise FileNotFoundError(errno_codes.ENOENT, os.strerror(errno_codes.ENOENT), src)
            if moving.kind != "file":
                raise IsADirectoryError(errno_codes.EISDIR, "SimFS renames files only", src)
            displaced = self._ns.lookup(dst)
            if displaced is not None:
                self._displace(dst, displaced)
            os.replace(src, dst)
            del self._ns.current[os.path.dirname(src)][os.path.basename(src)]
            self._ns.current[os.path.dirname(dst)][os.path.basename(dst)] = moving

    def unlink(self, path: str) -> None:
        path = os.path.abspath(path)
        with self._operation():
            self._begin("unlink", path)
            inode = self._ns.lookup(path)
            if inode is None:
                raise FileNotFoundError(errno_codes.ENOENT, os.strerror(errno_codes.ENOENT), path)
            self._displace(path, inode)
            os.unlink(path)
            del self._ns.current[os.path.dirname(path)][os.path.basename(path)]

    def mkdir(self, path: str, mode: int = 0o700) -> None:
        path = os.path.abspath(path)
        with self._operation():
            self._begin("create", path)
            self._ns.adopt(os.path.dirname(path))
            os.mkdir(path, mode)
            self._ns.current[os.path.dirname(path)][os.path.basename(path)] = Inode("dir")
            self._ns.current[path], self._ns.durable[path] = {}, {}

    def fsync_dir(self, path: str) -> None:
        path = os.path.abspath(path)
        with self._operation():
            self._begin("fsync", path)
            self._ns.adopt(path)
            self._ns.durable[path] = dict(self._ns.current[path])

    def listdir(self, path: str) -> list[str]:
        with self._operation():
            return os.listdir(path)

    def stat(self, path: str) -> os.stat_result:
        with self._operation():
            return os.stat(path)

    def free_bytes(self, path: str) -> int:
        path = os.path.abspath(path)
        with self._operation():
            filled = self._plan.free_bytes(path)
            return shutil.disk_usage(path).free if filled is None else filled

    def open_read(self, path: str) -> BinaryIO:
        with self._operation():
            return open(path, "rb")

    # -- inside the lock ------------------------------------------------------------------

    @contextmanager
    def _operation(self) -> Iterator[None]:
        try:
            with self._lock:
                self._check_power()
                yield
        except _CutInside as cut:
            self._notify()
            raise PowerLost(str(cut)) from None

    def _check_power(self) -> None:
        if not self._powered:
            raise PowerLost("the simulated storage has no power")

    def _handle(self, fd: int) -> _OpenFile:
        handle = self._fds.get(fd)
        if handle is None:
            raise OSError(errno_codes.EBADF, os.strerror(errno_codes.EBADF))
        return handle

    def _begin(self, kind: str, path: str, write_bytes: int = 0) -> int:
        """Count an operation; cut power or fail it if armed to. Returns how many of
        `write_bytes` may land (a short write when a fault or the fill is reached)."""
        self.ops.append((kind, path))
        mode = self._plan.due_cut(kind, path)
        if mode is not None and kind != "write":
            self._cut_locked(mode)
            raise _CutInside(f"power cut during {kind} of {path}")
        if mode is not None:
            self._cut_after_write = mode   # the write lands first (and may tear), then the cut
            return write_bytes
        return self._plan.check(kind, path, write_bytes)

    def _displace(self, path: str, inode: Inode) -> None:
        """`path` stops naming `inode`: keep its durable bytes if a cut could bring it back."""
        if inode.kind == "file":
            if self._ns.durably_referenced(inode):
                inode.stash_durable(path)
            self._plan.freed(path, inode.size)

    def _cut_locked(self, mode: str) -> None:
        for fd in list(self._fds):
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds.clear()
        roll_back(self._ns, self._rng if mode == "tear" else None)
        self._powered = False
        self.power_cuts += 1

    def _notify(self) -> None:
        for callback in list(self._listeners):
            callback()


def _abs(path: str | None) -> str | None:
    return None if path is None else os.path.abspath(path)
