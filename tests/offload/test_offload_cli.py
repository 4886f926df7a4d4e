"""`bwc offload` refuses to start, with one line and exit 2, when it must not run: a device
that trusts no intake, a device whose firmware is running (`bwc run` holds its lock),
bad arguments. Nothing is sent, logged or deleted."""
from __future__ import annotations

import os
import subprocess
import time

import pytest

from scenario_support import audit_entries, bwc, bwc_command, _bwc_env, make_device, scenario_toml

pytestmark = pytest.mark.tool
NOWHERE = "http://127.0.0.1:9"      # never contacted: every refusal here comes first


def _one_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_a_device_that_trusts_no_intake_cannot_offload(tmp_path, offload_custodian):
    device = make_device(str(tmp_path / "device"), offload_custodian)
    os.makedirs(device.storage)
    result = bwc("offload", "--device", device.directory, "--to", NOWHERE)
    assert result.returncode == 2
    assert "provision it with --intake-pub" in _one_line(result)


@pytest.mark.parametrize("args,says", [(["--rate-limit", "fast"], "not a rate"),
                                       (["--part-kib", "4"], "--part-kib must be"),
                                       (["--retry-for", "-1"], "--retry-for"),
                                       (["--to", "ftp://x:1"], "--to")])
def test_bad_arguments_are_one_line_and_exit_2(card, args, says):
    argv = ["offload", "--device", card.directory, "--to", NOWHERE, *args]
    result = bwc(*argv)
    assert result.returncode == 2 and says in _one_line(result)


def test_offload_while_the_firmware_runs_exits_2_at_once_and_changes_nothing(tmp_path, card):
    device = card
    scenario = tmp_path / "long.toml"
    scenario.write_text(scenario_toml(30, [], width=160, height=96))
    run = subprocess.Popen([*bwc_command(), "run", "--device", device.directory, "--hal", "sim", "--realtime",
                            "--scenario", str(scenario)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=_bwc_env())
    try:
        lock = os.path.join(device.directory, "run.lock")
        deadline = time.monotonic() + 30
        # The lock file names its holder once the flock is held (hal/devicelock.py).
        while not (os.path.exists(lock) and open(lock).read().strip() == str(run.pid)):
            assert run.poll() is None and time.monotonic() < deadline, run.communicate()
            time.sleep(0.05)
        started = time.monotonic()
        result = bwc("offload", "--device", device.directory, "--to", NOWHERE)
        assert result.returncode == 2, result.stderr
        assert "already running" in _one_line(result) and time.monotonic() - started < 20
        assert "receipt" not in [e["type"] for e in audit_entries(device.storage)]
    finally:
        run.terminate()
        run.communicate(timeout=30)


def test_an_intake_that_cannot_be_reached_is_exit_3_after_the_retries_and_the_card_keeps_everything(card):
    import json
    import socket
    from offload_support import card_files
    with socket.socket() as s:      # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    before = card_files(card.storage)
    started = time.monotonic()
    result = bwc("offload", "--device", card.directory, "--to", f"http://127.0.0.1:{port}", "--json",
                 "--retry-for", "2")
    assert result.returncode == 3, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    # Tries at 0 s, 0.5 s and 1.5 s; the next would wait 2 s more, past --retry-for.
    assert [(line["type"], line.get("wait_s")) for line in lines] == [("retry", 0.5), ("retry", 1.0), ("summary", None)]
    assert "refused" in lines[-1]["network_error"] or "Connection" in lines[-1]["network_error"]
    assert lines[-1]["deleted"] == [] and time.monotonic() - started < 20
    assert card_files(card.storage) == before
