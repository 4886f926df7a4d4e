"""`bwc export` and plaintext: owner-only modes, and an interrupted export leaves nothing.

Interruptions are real signals delivered to a real `bwc export` process at a chosen
point: the process is `tools.cli` with SegmentMediaReader.read wrapped so that its Nth
call sends the signal to its own process (the same path a Ctrl-C or `kill` takes) and
reports what was staged at that moment, so each test knows plaintext existed when it
was interrupted.
"""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[2]  # the working tree under test

pytestmark = pytest.mark.tool

SUMMARY = "export-summary.json"

# Runs `bwc ARGV...`; the Nth SegmentMediaReader.read sends SIGNAL to this process and
# prints, on stderr, one JSON line: the staged files and the staging directory's mode.
INTERRUPTING_BWC = r"""
import glob, json, os, signal, stat, sys
import tools.plainstream as plainstream
from tools import cli

at, signum, out = int(sys.argv[1]), getattr(signal, sys.argv[2]), sys.argv[3]
real = plainstream.SegmentMediaReader.read
calls = [0]

def read(self, size=-1):
    calls[0] += 1
    if calls[0] == at:
        staging = glob.glob(os.path.join(out, ".export-*"))
        seen = {"staging_modes": [stat.S_IMODE(os.stat(d).st_mode) for d in staging],
                "staged": sorted(os.path.basename(p) for d in staging for p in glob.glob(os.path.join(d, "*")))}
        print("STAGED " + json.dumps(seen), file=sys.stderr, flush=True)
        os.kill(os.getpid(), signum)
    return real(self, size)

plainstream.SegmentMediaReader.read = read
sys.exit(cli.main(sys.argv[4:]))
"""


def _interrupted_export(recording, out, at_read: int, signame: str) -> tuple[subprocess.CompletedProcess, dict]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-c", INTERRUPTING_BWC, str(at_read), signame, str(out),
                           "export", str(recording.storage), "--key", str(recording.custodian.key),
                           "--out", str(out)], env=env, capture_output=True, text=True, timeout=60)
    assert "Traceback" not in proc.stderr, proc.stderr
    staged = [line for line in proc.stderr.splitlines() if line.startswith("STAGED ")]
    assert len(staged) == 1, proc.stderr
    return proc, json.loads(staged[0][len("STAGED "):])


def export_main(recording, out) -> int:
    """`bwc export` in this process, for tests that patch it."""
    from tools import cli
    return cli.main(["export", str(recording.storage), "--key", str(recording.custodian.key), "--out", str(out)])


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask():
    """umask 000 for the subprocesses of the test: modes must not depend on it."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_plaintext_is_owner_only_whatever_the_umask(bwc, recording, tmp_path, open_umask):
    out = tmp_path / "new" / "out"
    r = bwc("export", recording.storage, "--key", recording.custodian.key, "--out", out)
    assert r.returncode == 0, str(r)
    assert _mode(out) == 0o700
    files = sorted(out.iterdir())
    assert len(files) == 5 and SUMMARY in {p.name for p in files}
    assert {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}


def test_an_existing_out_dir_keeps_its_mode_and_gets_owner_only_files(bwc, recording, tmp_path, open_umask):
    out = tmp_path / "shared"
    out.mkdir()
    os.chmod(out, 0o755)
    r = bwc("export", recording.storage, "--key", recording.custodian.key, "--out", out)
    assert r.returncode == 0, str(r)
    assert _mode(out) == 0o755, "an existing directory's mode is its owner's choice"
    assert {_mode(p) for p in out.iterdir()} == {0o600}


@pytest.mark.parametrize("signame, exit_code", [("SIGINT", 130), ("SIGTERM", 143), ("SIGHUP", 129)])
def test_a_signal_mid_export_leaves_no_plaintext_behind(recording, tmp_path, signame, exit_code):
    out = tmp_path / "out"
    # Read 12 is in the second event: the first one's MP4 is staged by then.
    proc, seen = _interrupted_export(recording, out, 12, signame)
    assert proc.returncode == exit_code, proc.stderr
    assert seen["staging_modes"] == [0o700]
    assert any(name.endswith(".mp4") for name in seen["staged"]), seen
    assert f"bwc export: interrupted ({signame}); nothing was exported" in proc.stderr
    assert not out.exists(), "the out dir this run created goes too"
    assert proc.stdout == ""


def test_a_signal_mid_export_leaves_an_existing_out_dir_as_it_was(recording, tmp_path, snapshot):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("the custodian's own file\n")
    before = snapshot(out)
    proc, seen = _interrupted_export(recording, out, 3, "SIGINT")
    assert proc.returncode == 130, proc.stderr
    assert seen["staged"], "something was staged when the signal came"
    assert snapshot(out) == before


def test_a_failure_while_publishing_unpublishes_what_was_linked(recording, tmp_path, monkeypatch, snapshot, capsys):
    """The disk fills up after two of the five files are linked into place: the two go
    again and the run ends with one line and exit 2."""
    from tools import staging

    out = tmp_path / "out"
    out.mkdir()
    before = snapshot(out)
    real_link, links = os.link, []

    def link(src, dst):
        if len(links) == 2:
            raise OSError(28, "No space left on device", dst)
        links.append(dst)
        real_link(src, dst)

    monkeypatch.setattr(staging.os, "link", link)
    code = export_main(recording, out)
    err = capsys.readouterr().err
    assert code == 2 and "No space left on device" in err and len(links) == 2
    assert snapshot(out) == before, "linked files removed, staging removed"


def test_a_file_that_appears_during_the_export_is_not_overwritten(recording, tmp_path, monkeypatch, capsys):
    """Names are checked before the work and again, atomically, by the hard link."""
    from tools import export

    out = tmp_path / "out"
    real_publish = export.publish

    def publish(paths, out_dir):
        (out / SUMMARY).write_text("someone else's\n")
        return real_publish(paths, out_dir)

    monkeypatch.setattr(export, "publish", publish)
    code = export_main(recording, out)
    assert code == 2 and "already exists" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == [SUMMARY]
    assert (out / SUMMARY).read_text() == "someone else's\n"


def test_an_error_in_the_middle_of_an_event_removes_everything(recording, tmp_path, monkeypatch, capsys):
    """A disk error while the second event is being written: nothing stays, exit 2."""
    from tools import remux

    out = tmp_path / "out"
    real_remux, calls = remux.remux_event, []

    def remux_event(sources, out_path, *args):
        calls.append(out_path)
        if len(calls) == 2:
            next(iter(sources))
            raise OSError(5, "Input/output error", out_path)
        return real_remux(sources, out_path, *args)

    monkeypatch.setattr(remux, "remux_event", remux_event)  # tools.export imports it when it exports
    code = export_main(recording, out)
    assert code == 2 and "Input/output error" in capsys.readouterr().err
    assert len(calls) == 2 and not out.exists()
