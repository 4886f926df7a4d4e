"""The volatile-write-cache model behind SimFS: what is durable, and the rollback a power cut does.

In the spirit of ALICE and CrashMonkey: a file's data is durable as of its last fsync,
a directory's entries (creations, renames, unlinks) as of its last directory fsync.
Everything else sits in a cache that a power cut empties. The real files always hold
the *current* view (what a running system would read); a cut rewrites them to the
durable view. Only appends are cheap to model (the durable data is a prefix of the
file), which is all evidence storage does; anything else keeps a copy of the durable
bytes in memory.
"""
from __future__ import annotations

import os
import random
import shutil

SECTOR_BYTES = 512   # a disk writes whole sectors: a torn write keeps a sector-aligned prefix


class Inode:
    """A file or directory, independent of the names it has (renames move it)."""

    __slots__ = ("kind", "size", "durable_size", "durable_bytes", "mode")

    def __init__(self, kind: str, size: int = 0, durable_size: int = 0, mode: int = 0o600) -> None:
        self.kind = kind                  # "file" or "dir"
        self.size = size                  # current size (what the real file holds)
        self.durable_size = durable_size  # size as of the last fsync
        # The durable data when it is no longer a prefix of the real file (truncated,
        # overwritten) or no longer in it at all (replaced or unlinked): kept in memory.
        self.durable_bytes: bytes | None = None
        self.mode = mode

    def stash_durable(self, path: str) -> None:
        """Keep the durable bytes in memory before the real file stops holding them."""
        if self.kind != "file" or self.durable_bytes is not None:
            return
        with open(path, "rb") as f:
            self.durable_bytes = f.read(self.durable_size)
        self.mode = os.stat(path).st_mode & 0o7777

    def synced(self) -> None:
        self.durable_size = self.size
        self.durable_bytes = None


class Namespace:
    """Per directory (absolute path): the current entries and the durable ones."""

    def __init__(self) -> None:
        self.current: dict[str, dict[str, Inode]] = {}
        self.durable: dict[str, dict[str, Inode]] = {}

    def tracked(self, directory: str) -> bool:
        return directory in self.current

    def adopt(self, directory: str) -> None:
        """Start tracking a directory: what is on disk now counts as durable (it was
        there before the simulation touched it, or was put there from outside)."""
        if directory in self.current:
            return
        entries: dict[str, Inode] = {}
        for name in os.listdir(directory):
            entries[name] = adopt_inode(os.path.join(directory, name))
        self.current[directory] = entries
        self.durable[directory] = dict(entries)
        parent, name = os.path.split(directory)
        if parent != directory and parent in self.current and name not in self.current[parent]:
            inode = Inode("dir")
            self.current[parent][name] = inode
            self.durable[parent][name] = inode

    def lookup(self, path: str) -> Inode | None:
        """The inode at `path` now (adopting a file put there from outside)."""
        directory, name = os.path.split(path)
        self.adopt(directory)
        entries = self.current[directory]
        inode = entries.get(name)
        if inode is None and os.path.lexists(path):
            inode = entries[name] = self.durable[directory][name] = adopt_inode(path)
        return inode

    def durably_referenced(self, inode: Inode) -> bool:
        return any(inode is i for entries in self.durable.values() for i in entries.values())

    def survives(self, directory: str) -> bool:
        """True if the directory itself is still there after a power cut."""
        parent, name = os.path.split(directory)
        if parent == directory or parent not in self.durable:
            return True   # an ancestor the simulation never created: it was there before
        inode = self.durable[parent].get(name)
        return inode is not None and inode.kind == "dir" and self.survives(parent)


def adopt_inode(path: str) -> Inode:
    if os.path.isdir(path):
        return Inode("dir")
    st = os.stat(path)
    return Inode("file", st.st_size, st.st_size, st.st_mode & 0o7777)


def torn_length(inode: Inode, rng: random.Random | None) -> int:
    """How much of a file survives: its durable bytes, plus (tear mode, `rng` given) a
    random sector-aligned prefix of what was written after them."""
    start, end = inode.durable_size, inode.size
    if rng is None or inode.durable_bytes is not None or end <= start:
        return start
    first = (start // SECTOR_BYTES + 1) * SECTOR_BYTES
    return rng.choice([start, *range(first, end + 1, SECTOR_BYTES)])


def roll_back(ns: Namespace, rng: random.Random | None) -> None:
    """Rewrite the real directories to what survives a power cut now, then make that
    the new durable (and current) state. `rng` None drops every unsynced byte; given,
    it tears the unsynced tails (torn_length)."""
    where_now = {id(inode): os.path.join(d, name)
                 for d, entries in ns.current.items() for name, inode in entries.items()}
    alive = [d for d in sorted(ns.current) if ns.survives(d)]
    keep: dict[int, int] = {}
    relocate: list[tuple[str, Inode, bytes]] = []
    in_place: list[tuple[str, Inode]] = []
    for d in alive:
        for name, inode in sorted(ns.durable[d].items()):
            if inode.kind != "file":
                continue
            path = os.path.join(d, name)
            if id(inode) not in keep:
                keep[id(inode)] = torn_length(inode, rng)
            if ns.current[d].get(name) is inode:
                in_place.append((path, inode))
            else:
                # Renamed away, replaced or unlinked since its entry was last synced.
                relocate.append((path, inode, _durable_content(inode, where_now.get(id(inode)), keep[id(inode)])))
    # Whatever is on disk but not durable goes: new files, new directories, rename targets.
    for d in sorted(ns.current):
        if not ns.survives(d):
            if ns.survives(os.path.dirname(d)):
                shutil.rmtree(d, ignore_errors=True)
            continue
        for name, inode in ns.current[d].items():
            if ns.durable[d].get(name) is not inode:
                _remove(os.path.join(d, name))
    for path, inode in in_place:
        if inode.durable_bytes is not None:
            _write_file(path, inode.durable_bytes, inode.mode)
        elif keep[id(inode)] != inode.size:
            os.truncate(path, keep[id(inode)])
    for path, inode, data in relocate:
        _write_file(path, data, inode.mode)
    # The state after the cut is all there is: durable by definition.
    for d in list(ns.current):
        if d not in alive:
            del ns.current[d], ns.durable[d]
    for d in alive:
        ns.current[d] = dict(ns.durable[d])
        for inode in ns.current[d].values():
            if inode.kind == "file":
                inode.size = keep[id(inode)] if inode.durable_bytes is None else len(inode.durable_bytes)
                inode.synced()


def _durable_content(inode: Inode, current_path: str | None, length: int) -> bytes:
    if inode.durable_bytes is not None:
        return inode.durable_bytes
    if current_path is None:
        return b""   # never stashed: nothing of it was durable
    with open(current_path, "rb") as f:
        return f.read(length)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.unlink(path)


def _write_file(path: str, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
