"""Bad device directories and key files (SEC-3): one line, the documented exit code, and
nothing recorded. The `bwc` fixture fails any test whose command prints a traceback."""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.tool

ZERO_X25519 = "00" * 32
CUSTODIAN_PUBLIC = "openbwc-custodian-public-v1"


def assert_refused(r, prefix: str, *words: str) -> None:
    """Exit 2, nothing on stdout, one line on stderr that starts with `prefix` and names `words`."""
    assert r.returncode == 2, str(r)
    assert r.stdout == "", str(r)
    assert r.stderr.startswith(prefix) and r.stderr.count("\n") == 1, str(r)
    for word in words:
        assert word in r.stderr, str(r)


def run_tiny(bwc, device, scenario, *extra):
    return bwc("run", "--device", device.dir, "--hal", "sim", "--scenario", scenario, *extra)


# --- device.json ----------------------------------------------------------------------------

def _with(**changes):
    def edit(identity: dict) -> object:
        return {**identity, **changes}
    return edit


def _without(name):
    return lambda identity: {k: v for k, v in identity.items() if k != name}


def _custodians(*entries):
    return lambda identity: {**identity, "custodian_public_keys": [
        identity["custodian_public_keys"][0] if e == "GOOD" else e for e in entries]}


# name: (edit of the provisioned identity -> new content, or raw bytes; words the message must hold)
BAD_IDENTITIES = {
    "custodian key a number": (_custodians(5), ["custodian_public_keys[0]", "got int"]),
    "device_id missing": (_without("device_id"), ["missing key 'device_id'"]),
    "top level a list": (lambda identity: [identity], ["expected a JSON object, got list"]),
    "deeply nested": (b"[" * 100_000 + b"]" * 100_000, ["nested too deeply"]),
    "device_id a number": (_with(device_id=42), ["device_id must be a string"]),
    "device_id 65 chars": (_with(device_id="c" * 65), ["1..64 printable characters"]),
    "low-order custodian key": (_custodians(f"{CUSTODIAN_PUBLIC}:{ZERO_X25519}"), ["low-order X25519"]),
}


@pytest.mark.parametrize("edit, words", BAD_IDENTITIES.values(), ids=BAD_IDENTITIES.keys())
def test_run_refuses_a_bad_device_json(bwc, fresh_device, tiny_scenario, edit, words):
    path = fresh_device.dir / "device.json"
    if isinstance(edit, bytes):
        path.write_bytes(edit)
    else:
        path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    r = run_tiny(bwc, fresh_device, tiny_scenario)
    assert_refused(r, f"bwc run: {path}", *words)
    assert not fresh_device.storage.exists() and not (fresh_device.dir / "state").exists()


# --- device.key ------------------------------------------------------------------------------

@pytest.mark.parametrize("hal", ["sim", "pi"])
def test_run_refuses_a_device_key_that_is_not_the_one_in_device_json(bwc, fresh_device, tmp_path, custodian,
                                                                    tiny_scenario, hal):
    other = tmp_path / "other"
    assert bwc("provision", "--device-id", "other", "--custodian", custodian.pub, "--out", other).returncode == 0
    (fresh_device.dir / "device.key").write_bytes((other / "device.key").read_bytes())
    # Checked before the firmware (and, with --hal pi, before the Pi backend) is built.
    r = bwc("run", "--device", fresh_device.dir, "--hal", hal, "--scenario", tiny_scenario)
    assert_refused(r, "bwc run: ", "device.key does not match the device_public_key", "device.json")
    assert not fresh_device.storage.exists() and not (fresh_device.dir / "state").exists()


# --- low-order custodian keys ----------------------------------------------------------------

def test_provision_refuses_a_low_order_custodian_key(bwc, tmp_path):
    # Nothing can be sealed to such a key: the camera would record nothing (every
    # low-order point is in tests/unit/test_config_checks.py).
    weak = tmp_path / "weak.pub"
    weak.write_text(f"{CUSTODIAN_PUBLIC}:{ZERO_X25519}\n")
    out = tmp_path / "cam"
    r = bwc("provision", "--device-id", "cam-weak", "--custodian", weak, "--out", out)
    assert_refused(r, f"bwc provision: {weak}: ", "low-order X25519")
    assert not out.exists()


# --- policy ----------------------------------------------------------------------------------

BAD_POLICY_VALUES = {
    "buffer_max_mib inf": ("buffer_max_mib = inf", ["buffer_max_mib must be a finite number"]),
    "buffer_max_mib nan": ("buffer_max_mib = nan", ["buffer_max_mib must be a finite number"]),
    "buffer_max_mib 1e-9": ("buffer_max_mib = 1e-9", ["buffer_max_mib must be 0", "1..4096 MiB"]),
    "debounce_ms past a tap": ("debounce_ms = 1500\ndouble_press_window_ms = 2000", ["debounce_ms must be 0..999"]),
}


@pytest.mark.parametrize("text, words", BAD_POLICY_VALUES.values(), ids=BAD_POLICY_VALUES.keys())
def test_run_refuses_a_policy_value_the_firmware_cannot_honour(bwc, fresh_device, tiny_scenario, text, words):
    policy = fresh_device.dir / "policy.toml"
    policy.write_text(text + "\n")
    assert_refused(run_tiny(bwc, fresh_device, tiny_scenario), f"bwc run: {policy}", *words)
    assert not fresh_device.storage.exists()


@pytest.mark.parametrize("line, words", [
    ("flush_interval_s = nan", ["policy.flush_interval_s must be a finite number"]),
], ids=["flush_interval_s nan"])
def test_run_refuses_the_same_in_a_scenario_policy_table(bwc, fresh_device, tmp_path, tiny_scenario, line, words):
    # Every key and value is in tests/unit/test_config_checks.py; this is the scenario's path to them.
    scenario = tmp_path / "bad.toml"
    scenario.write_text(tiny_scenario.read_text().replace("[policy]\n", f"[policy]\n{line}\n"))
    assert_refused(run_tiny(bwc, fresh_device, scenario), f"bwc run: {scenario}", *words)
    assert not fresh_device.storage.exists()


def test_the_smallest_buffer_bound_still_records(bwc, fresh_device, tiny_scenario):
    (fresh_device.dir / "policy.toml").write_text("buffer_max_mib = 1\n")
    r = run_tiny(bwc, fresh_device, tiny_scenario)
    assert r.returncode == 0 and "1 event(s) recorded" in r.stdout, str(r)
    assert bwc("verify", fresh_device.storage, "--device-pub", fresh_device.pub).returncode == 0


# --- key files -------------------------------------------------------------------------------

def _bad_key_file(tmp_path, kind: str, what: str):
    path = tmp_path / f"bad-{what}.key"
    if what == "directory":
        path.mkdir()
    elif what == "not UTF-8":
        path.write_bytes(f"{kind}:".encode() + b"\xff\xfe" * 32 + b"\n")
    elif what == "huge":
        path.write_text(f"{kind}:{'ab' * 32}\n" + "#" * 1_000_000)
    elif what == "spaced hex":
        path.write_text(f"{kind}:{'ab' * 16} {'ab' * 16}\n")
    return path


# read_key serves all three commands: each case once, each command at least once.
KEY_FILE_CASES = [("provision", "spaced hex"), ("provision", "huge"), ("export", "directory"), ("verify", "not UTF-8")]
KEY_FILE_WORDS = {"directory": "is a directory", "not UTF-8": "not valid hex", "huge": "over 4096 characters",
                  "spaced hex": "not valid hex"}
KINDS = {"provision": CUSTODIAN_PUBLIC, "export": "openbwc-custodian-secret-v1", "verify": "openbwc-device-public-v1"}


@pytest.mark.parametrize("command, what", KEY_FILE_CASES, ids=[f"{c} {w}" for c, w in KEY_FILE_CASES])
def test_bad_key_files_are_one_line_usage_errors(bwc, recording, tmp_path, command, what):
    path = _bad_key_file(tmp_path, KINDS[command], what)
    out = tmp_path / "out"
    args = {"provision": ("--device-id", "cam", "--custodian", path, "--out", out),
            "export": (recording.storage, "--key", path, "--out", out),
            "verify": (recording.storage, "--device-pub", path)}[command]
    assert_refused(bwc(command, *args), f"bwc {command}: {path}: ", KEY_FILE_WORDS[what])
    assert not out.exists()
