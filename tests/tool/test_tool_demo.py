"""`bwc demo`: the whole chain on one machine; and the command line as installed."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import pytest

pytestmark = pytest.mark.tool


def test_demo_ends_with_the_path_of_a_playable_mp4(bwc, tmp_path):
    r = bwc("demo", "--out", "demo-out", cwd=tmp_path)
    assert r.returncode == 0, str(r)
    assert r.stderr == ""
    last = r.stdout.splitlines()[-1]
    mp4 = tmp_path / last
    assert mp4.suffix == ".mp4" and mp4.is_file(), last
    with av.open(str(mp4)) as container:
        kinds = {s.type: s.codec_context.name for s in container.streams}
    assert kinds == {"video": "h264", "audio": "aac"}
    assert "AUTHENTIC and complete" in r.stdout


def test_demo_refuses_a_non_empty_dir(bwc, tmp_path, snapshot):
    (tmp_path / "mine.txt").write_text("keep\n")
    before = snapshot(tmp_path)
    r = bwc("demo", "--out", tmp_path)
    assert r.returncode == 2, str(r)
    assert r.stderr.startswith("bwc demo: ") and "not empty" in r.stderr
    assert snapshot(tmp_path) == before


def test_the_installed_bwc_script_runs():
    """The console script next to the interpreter (when this venv has one) is wired to tools.cli."""
    script = Path(sys.executable).with_name("bwc")
    if not script.exists():
        pytest.skip("no bwc console script in this environment")
    proc = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for command in ("keygen", "provision", "run", "verify", "export", "demo"):
        assert command in proc.stdout


def test_no_command_is_a_usage_error(bwc):
    r = bwc()
    assert r.returncode == 2, str(r)
    assert "usage: bwc" in r.stderr
