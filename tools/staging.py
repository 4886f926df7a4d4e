"""Where `bwc export` puts plaintext: owner-only files, staged, published all or nothing.

Decrypted footage is as sensitive as it gets, so every file is created 0600 and every
directory 0700 with explicit modes (the umask is not trusted), nothing is ever
overwritten, and an interrupted export leaves no plaintext behind: files are written
into a hidden 0700 staging directory inside the output directory and hard-linked into
place only when the whole run has succeeded. SIGINT, SIGTERM and SIGHUP during the run
are turned into an ExportInterrupted raised at the next safe point (see `Interrupts`),
so the clean-up below always runs. Only SIGKILL or a power cut can leave the staging
directory (`.export-*`, 0700) behind.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import threading

FILE_MODE, DIR_MODE = 0o600, 0o700
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class ExportInterrupted(KeyboardInterrupt):
    """A signal asked the export to stop; everything it wrote has been removed."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Interrupts:
    """While active, the signals above only set a flag, and `check()` raises it.

    A signal must not raise where it lands: inside PyAV's read callback an exception
    is swallowed (a KeyboardInterrupt even makes FFmpeg retry the read forever), and
    between a hard link and its bookkeeping it would leave a file published. So the
    handler records the signal and the export checks at points of its choosing. A
    signal after the last check (while the finished set is linked into place) no
    longer stops the run: it has finished. Outside the main thread (where handlers
    cannot be set) it does nothing.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "Interrupts":
        if threading.current_thread() is threading.main_thread():
            for signum in _SIGNALS:
                self._previous[signum] = signal.signal(signum, self._record)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _record(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum

    def check(self) -> None:
        if self.signum is not None:
            raise ExportInterrupted(self.signum)


class Staging:
    """A 0700 directory inside `out_dir` for this run's files; removed on exit."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir
        self.path = ""
        self._files: list[str] = []

    @property
    def files(self) -> list[str]:
        """The staged files not discarded, in the order they were made."""
        return [p for p in self._files if os.path.exists(p)]

    def __enter__(self) -> "Staging":
        self.path = tempfile.mkdtemp(prefix=".export-", dir=self.out_dir)
        os.chmod(self.path, DIR_MODE)
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def new_file(self, name: str) -> str:
        """Create `name` in the staging directory, empty, 0600; returns its path."""
        path = os.path.join(self.path, name)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
        os.chmod(path, FILE_MODE)
        self._files.append(path)
        return path

    def discard(self, path: str) -> None:
        """Remove a staged file that is not to be published."""
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    def write_json(self, name: str, value: object) -> str:
        path = self.new_file(name)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(value, f, indent=2, sort_keys=True)
        os.chmod(path, FILE_MODE)
        return path


def make_out_dir(out_dir: str) -> bool:
    """Create `out_dir` (0700) if it does not exist; returns True if it was created.
    An existing directory is used as it is: its mode is the owner's choice."""
    try:
        os.makedirs(out_dir)
    except FileExistsError:
        if not os.path.isdir(out_dir):
            raise NotADirectoryError(20, "not a directory", out_dir) from None
        return False
    os.chmod(out_dir, DIR_MODE)
    return True


def publish(staged_paths: list[str], out_dir: str) -> list[str]:
    """Hard-link every staged file into `out_dir` under its own name, all or none,
    never replacing a file (link fails on an existing name). Signals are held off
    meanwhile, so a signal cannot fall between a link and its roll-back record."""
    published: list[str] = []
    held = threading.current_thread() is threading.main_thread()
    if held:
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        for path in staged_paths:
            target = os.path.join(out_dir, os.path.basename(path))
            os.link(path, target)
            published.append(target)
    except BaseException:
        for target in published:
            os.unlink(target)
        raise
    finally:
        if held:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
    return published
