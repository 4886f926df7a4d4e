"""SimFS (simulator/simfs.py): a power cut keeps exactly what was made durable; faults
come back as the kernel reports them; operations are counted so a fault or a cut can be
armed at the k-th one."""
from __future__ import annotations

import errno
import os
import threading

import pytest

from hal.dirstorage import DirectoryStorage
from hal.filekeystore import write_private_file
from hal.fs import OS_FS, make_dirs_durable, write_all
from hal.storage import StorageError
from simulator.simfs import SECTOR_BYTES, PowerLost, SimFS

W = os.O_WRONLY
NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL


@pytest.fixture
def fs() -> SimFS:
    return SimFS(seed=7)


@pytest.fixture
def card(tmp_path) -> str:
    path = tmp_path / "card"
    path.mkdir()
    return str(path)


def create(fs: SimFS, path: str, data: bytes = b"", sync_file: bool = False, sync_dir: bool = False) -> int:
    fd = fs.open(path, NEW)
    write_all(fs, fd, data)
    if sync_file:
        fs.fsync(fd)
    if sync_dir:
        fs.fsync_dir(os.path.dirname(path))
    return fd


def size(path: str) -> int | None:
    return os.path.getsize(path) if os.path.exists(path) else None


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


# -- what a power cut keeps ------------------------------------------------------------

def test_synced_data_is_kept_and_unsynced_data_dropped(fs, card):
    path = os.path.join(card, "seg")
    fd = create(fs, path, b"a" * 1000, sync_file=True, sync_dir=True)
    write_all(fs, fd, b"b" * 5000)
    assert size(path) == 6000   # the running system sees everything it wrote
    fs.power_cut("drop")
    assert read(path) == b"a" * 1000


def test_a_file_whose_entry_was_never_synced_is_gone(fs, card):
    path = os.path.join(card, "seg")
    create(fs, path, b"data", sync_file=True)          # data synced, directory not
    fs.power_cut("drop")
    assert not os.path.exists(path)


def test_a_synced_entry_without_synced_data_is_an_empty_file(fs, card):
    path = os.path.join(card, "seg")
    create(fs, path, b"data", sync_dir=True)
    fs.power_cut("drop")
    assert read(path) == b""


def test_files_that_were_there_before_count_as_durable(fs, card):
    path = os.path.join(card, "old")
    with open(path, "wb") as f:
        f.write(b"from before")
    fd = fs.open(path, os.O_WRONLY | os.O_APPEND)
    write_all(fs, fd, b" and unsynced")
    create(fs, os.path.join(card, "new"), b"x", sync_file=True)
    fs.power_cut("drop")
    assert read(path) == b"from before"
    assert sorted(os.listdir(card)) == ["old"]


def test_truncating_a_durable_file_is_undone_by_a_cut(fs, card):
    path = os.path.join(card, "f")
    create(fs, path, b"durable", sync_file=True, sync_dir=True)
    fd = fs.open(path, os.O_WRONLY | os.O_TRUNC)
    write_all(fs, fd, b"new")
    fs.power_cut("drop")
    assert read(path) == b"durable"


@pytest.mark.parametrize("sync_dir, expected", [(False, b"old"), (True, b"new")])
def test_a_rename_is_durable_only_after_the_directory_sync(fs, card, sync_dir, expected):
    path = os.path.join(card, "chain.json")
    create(fs, path, b"old", sync_file=True, sync_dir=True)
    create(fs, path + ".tmp", b"new", sync_file=True)
    fs.replace(path + ".tmp", path)
    if sync_dir:
        fs.fsync_dir(card)
    assert read(path) == b"new"
    fs.power_cut("drop")
    assert read(path) == expected
    assert os.listdir(card) == ["chain.json"]   # the tmp file's creation was never durable either


def test_a_rename_away_and_back_of_two_files_survives(fs, card):
    a, b = os.path.join(card, "a"), os.path.join(card, "b")
    create(fs, a, b"A", sync_file=True)
    create(fs, b, b"B", sync_file=True, sync_dir=True)
    fs.replace(a, b)              # b now holds A, a is gone: neither durable
    fs.power_cut("drop")
    assert (read(a), read(b)) == (b"A", b"B")


@pytest.mark.parametrize("sync_dir", [False, True])
def test_an_unlink_is_durable_only_after_the_directory_sync(fs, card, sync_dir):
    path = os.path.join(card, "f")
    create(fs, path, b"keep me", sync_file=True, sync_dir=True)
    fs.unlink(path)
    if sync_dir:
        fs.fsync_dir(card)
    fs.power_cut("drop")
    assert os.path.exists(path) is not sync_dir
    if not sync_dir:
        assert read(path) == b"keep me"


def test_a_directory_never_synced_into_its_parent_vanishes_with_its_files(fs, card):
    new_dir = os.path.join(card, "state")
    fs.mkdir(new_dir)
    create(fs, os.path.join(new_dir, "f"), b"x", sync_file=True, sync_dir=True)
    fs.power_cut("drop")
    assert os.listdir(card) == []


def test_make_dirs_durable_syncs_each_new_directory_into_its_parent(fs, card):
    deep = os.path.join(card, "a", "b")
    make_dirs_durable(fs, deep)
    create(fs, os.path.join(deep, "f"), b"x", sync_file=True, sync_dir=True)
    fs.power_cut("drop")
    assert read(os.path.join(deep, "f")) == b"x"


def test_write_private_file_is_durable_on_return(fs, card):
    path = os.path.join(card, "chain.json")
    write_private_file(path, b"one", fs)
    write_private_file(path, b"two", fs)
    fs.power_cut("drop")
    assert read(path) == b"two" and os.listdir(card) == ["chain.json"]
    assert os.stat(path).st_mode & 0o777 == 0o600


# -- tearing ------------------------------------------------------------------------------

def _torn_length(seed: int, root, durable: int, unsynced: int) -> int:
    fs = SimFS(seed=seed)
    card = root / f"card-{seed}"
    card.mkdir(parents=True)
    path = str(card / "seg")
    fd = create(fs, path, b"d" * durable, sync_file=True, sync_dir=True)
    write_all(fs, fd, b"u" * unsynced)
    fs.power_cut("tear")
    data = read(path)
    assert data == (b"d" * durable + b"u" * unsynced)[:len(data)], "a torn file is a prefix of what was written"
    return len(data)


def test_tear_keeps_a_sector_aligned_prefix_of_the_unsynced_write(tmp_path):
    durable, unsynced = 700, 5000
    lengths = [_torn_length(seed, tmp_path, durable, unsynced) for seed in range(40)]
    assert all(n == durable or (n % SECTOR_BYTES == 0 and durable < n <= durable + unsynced) for n in lengths), lengths
    assert any(n > durable for n in lengths), "tear never kept any unsynced sector"
    assert len(set(lengths)) > 3, f"tear points do not vary with the seed: {sorted(set(lengths))}"


def test_tear_is_deterministic_for_a_seed(tmp_path):
    assert _torn_length(3, tmp_path / "one", 100, 9000) == _torn_length(3, tmp_path / "two", 100, 9000)


# -- after the cut --------------------------------------------------------------------------

def test_every_operation_raises_power_lost_until_power_is_restored(fs, card):
    path = os.path.join(card, "f")
    fd = create(fs, path, b"x", sync_file=True, sync_dir=True)
    fs.power_cut("drop")
    assert not fs.powered
    for operation in (lambda: fs.write(fd, b"y"), lambda: fs.fsync(fd), lambda: fs.close(fd),
                      lambda: fs.open(path, W), lambda: fs.listdir(card), lambda: fs.open_read(path),
                      lambda: fs.free_bytes(card), lambda: fs.replace(path, path + "2"), lambda: fs.unlink(path),
                      lambda: fs.mkdir(os.path.join(card, "d")), lambda: fs.fsync_dir(card), lambda: fs.stat(path)):
        with pytest.raises(PowerLost):
            operation()
    fs.power_restore()
    assert fs.listdir(card) == ["f"] and read(path) == b"x"


def test_power_lost_is_not_an_exception():
    # Firmware code that handles Exception (a storage fault) must not catch a power cut.
    assert not issubclass(PowerLost, Exception) and issubclass(PowerLost, BaseException)


def test_a_thread_killed_by_power_loss_dies_quietly(card, monkeypatch):
    reported = []
    monkeypatch.setattr(threading, "excepthook", lambda args: reported.append(args.exc_type))
    fs = SimFS()   # wraps the hook in place now
    fs.power_cut("drop")

    def fail_for_real():
        raise ValueError("a bug, still reported")

    for target in (lambda: fs.listdir(card), fail_for_real):
        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
    assert reported == [ValueError]


# -- faults ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, code", [("ENOSPC", errno.ENOSPC), ("EIO", errno.EIO)])
def test_a_write_fault_is_an_oserror_with_that_errno(fs, card, name, code):
    fd = create(fs, os.path.join(card, "f"))
    fs.fail(name, "write")
    with pytest.raises(OSError) as info:
        fs.write(fd, b"x")
    assert info.value.errno == code and not isinstance(info.value, PowerLost)


def test_count_limits_the_failures_and_none_lasts_until_healed(fs, card):
    fd = create(fs, os.path.join(card, "f"))
    fs.fail("EIO", "write", count=2)
    outcomes = []
    for _ in range(3):
        try:
            outcomes.append(fs.write(fd, b"x"))
        except OSError as exc:
            outcomes.append(exc.errno)
    assert outcomes == [errno.EIO, errno.EIO, 1]
    fs.fail("EIO", "write")
    for _ in range(5):
        with pytest.raises(OSError):
            fs.write(fd, b"x")
    fs.heal()
    assert fs.write(fd, b"x") == 1


def test_after_bytes_lands_a_short_write_then_fails(fs, card):
    storage = DirectoryStorage(card, fs)
    out = storage.create("seg")
    out.write(b"a" * 100)
    fs.fail("ENOSPC", "write", after_bytes=1234)
    with pytest.raises(StorageError) as info:
        out.write(b"b" * 5000)
    assert info.value.errno == errno.ENOSPC
    assert read(os.path.join(card, "seg")) == b"a" * 100 + b"b" * 1234


def test_the_kernel_reports_a_short_write_first(fs, card):
    fd = create(fs, os.path.join(card, "f"))
    fs.fail("EIO", "write", after_bytes=10)
    assert fs.write(fd, b"x" * 50) == 10        # what the kernel returns: a short count
    with pytest.raises(OSError):
        fs.write(fd, b"x" * 40)                 # and the retry gets the error


@pytest.mark.parametrize("op", ["write", "fsync", "create", "rename", "any"])
def test_a_fault_hits_only_its_kind_of_operation(fs, card, op):
    existing = os.path.join(card, "existing")
    fd = create(fs, existing, sync_dir=True)
    fs.fail("EIO", op)
    attempts = {
        "write": lambda: fs.write(fd, b"x"),
        "fsync": lambda: fs.fsync(fd),
        "dir fsync": lambda: fs.fsync_dir(card),
        "create": lambda: fs.open(os.path.join(card, "new"), NEW),
        "mkdir": lambda: fs.mkdir(os.path.join(card, "newdir")),
        "rename": lambda: fs.replace(existing, os.path.join(card, "renamed")),
    }
    kinds = {"write": "write", "fsync": "fsync", "dir fsync": "fsync", "create": "create", "mkdir": "create",
             "rename": "rename"}
    failed = set()
    for name, attempt in attempts.items():
        try:
            attempt()
        except OSError:
            failed.add(name)
    assert failed == {n for n in attempts if op == "any" or kinds[n] == op}


def test_opening_an_existing_file_is_not_a_create(fs, card):
    path = os.path.join(card, "audit.log")
    create(fs, path, sync_dir=True)
    fs.fail("EIO", "create")
    fs.close(fs.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND))
    with pytest.raises(OSError):
        fs.open(os.path.join(card, "seg"), NEW)


def test_nth_lets_earlier_operations_pass(fs, card):
    fd = create(fs, os.path.join(card, "f"))
    fs.fail("EIO", "fsync", nth=3, count=1)
    fs.write(fd, b"x")         # not an fsync: does not count
    fs.fsync(fd)
    fs.fsync(fd)
    with pytest.raises(OSError):
        fs.fsync(fd)
    fs.fsync(fd)


def test_a_fault_under_one_directory_spares_the_others(fs, tmp_path):
    card, keys = tmp_path / "card", tmp_path / "keys"
    card.mkdir(), keys.mkdir()
    fs.fail("EIO", "any", under=str(card))
    write_private_file(str(keys / "chain.json"), b"ok", fs)
    with pytest.raises(OSError):
        create(fs, str(card / "seg"))


def test_fill_reports_the_free_space_and_short_writes_at_the_end(fs, card):
    storage = DirectoryStorage(card, fs)
    fs.fill(3000, under=card)
    assert storage.free_bytes() == 3000
    out = storage.create("seg")
    out.write(b"a" * 1000)
    assert storage.free_bytes() == 2000
    with pytest.raises(StorageError) as info:
        out.write(b"b" * 5000)
    assert info.value.errno == errno.ENOSPC
    assert size(os.path.join(card, "seg")) == 3000 and storage.free_bytes() == 0
    fs.heal()
    assert storage.free_bytes() > 3000
    out.write(b"c")


# -- counting and arming -------------------------------------------------------------------------

def test_operations_are_counted_by_kind(fs, card):
    storage = DirectoryStorage(card, fs)
    before = {op: fs.op_count(op) for op in ("write", "fsync", "create", "rename", "any")}
    out = storage.create("seg")      # create + directory fsync
    out.write(b"x")
    out.sync()
    write_private_file(os.path.join(card, "k"), b"y", fs)   # create, write, fsync, rename, fsync
    after = {op: fs.op_count(op) - before[op] for op in before}
    assert after == {"write": 2, "fsync": 4, "create": 2, "rename": 1, "any": 9}
    assert fs.op_count("write", under=os.path.join(card, "seg")) == 1


def test_a_cut_armed_at_the_kth_fsync_keeps_what_the_earlier_ones_made_durable(fs, card):
    cuts = []
    fs.add_power_listener(lambda: cuts.append(fs.powered))
    path = os.path.join(card, "seg")
    fd = create(fs, path, sync_dir=True)
    fs.arm_power_cut("fsync", nth=2, mode="drop")
    assert fs.cut_armed
    write_all(fs, fd, b"a" * 600)
    fs.fsync(fd)
    write_all(fs, fd, b"b" * 600)
    with pytest.raises(PowerLost):
        fs.fsync(fd)
    assert cuts == [False] and not fs.cut_armed
    assert read(path) == b"a" * 600


def test_a_cut_armed_at_a_write_lets_that_write_tear(tmp_path):
    lengths = set()
    for seed in range(20):
        fs = SimFS(seed=seed)
        card = tmp_path / str(seed)
        card.mkdir()
        fd = create(fs, str(card / "seg"), b"d" * 512, sync_file=True, sync_dir=True)
        fs.arm_power_cut("write", nth=1, mode="tear")
        with pytest.raises(PowerLost):
            fs.write(fd, b"w" * 4096)
        lengths.add(size(str(card / "seg")))
    assert 512 in lengths and len(lengths) > 2 and all(n % SECTOR_BYTES == 0 for n in lengths)


def test_os_fs_is_the_kernel(tmp_path):
    make_dirs_durable(OS_FS, str(tmp_path / "a" / "b"))
    write_private_file(str(tmp_path / "a" / "b" / "f"), b"data")
    assert read(str(tmp_path / "a" / "b" / "f")) == b"data"
    assert OS_FS.free_bytes(str(tmp_path)) > 0
