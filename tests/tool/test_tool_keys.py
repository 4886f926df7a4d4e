"""`bwc keygen` and `bwc provision`: key files, modes, and refusals."""
from __future__ import annotations

import json
import stat
import tomllib

import pytest

pytestmark = pytest.mark.tool

CUSTODIAN_PUBLIC = "openbwc-custodian-public-v1"
CUSTODIAN_SECRET = "openbwc-custodian-secret-v1"
DEVICE_PUBLIC = "openbwc-device-public-v1"


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def key_line(path, kind: str) -> str:
    text = path.read_text(encoding="ascii")
    assert text.endswith("\n") and text.count("\n") == 1, text
    prefix, _, hex_digits = text.strip().partition(":")
    assert prefix == kind
    assert len(bytes.fromhex(hex_digits)) == 32
    return text.strip()


# --- keygen ---------------------------------------------------------------------------------

def test_keygen_writes_an_owner_only_secret_and_a_public_key(bwc, tmp_path):
    out = tmp_path / "custodian"
    r = bwc("keygen", "--out", out)
    assert r.returncode == 0, str(r)
    assert sorted(p.name for p in out.iterdir()) == ["custodian.key", "custodian.pub"]
    assert mode(out / "custodian.key") == 0o600
    secret = key_line(out / "custodian.key", CUSTODIAN_SECRET)
    public = key_line(out / "custodian.pub", CUSTODIAN_PUBLIC)
    assert secret.partition(":")[2] != public.partition(":")[2]
    # The terminal names both files; the secret key itself is never printed.
    assert str(out / "custodian.key") in r.stdout and str(out / "custodian.pub") in r.stdout
    assert secret.partition(":")[2] not in r.stdout + r.stderr


def test_keygen_into_an_existing_empty_directory_is_fine(bwc, tmp_path):
    r = bwc("keygen", "--out", tmp_path)
    assert r.returncode == 0, str(r)
    assert mode(tmp_path / "custodian.key") == 0o600


def test_keygen_makes_a_new_pair_each_time(bwc, tmp_path):
    for name in ("a", "b"):
        assert bwc("keygen", "--out", tmp_path / name).returncode == 0
    assert (tmp_path / "a" / "custodian.pub").read_text() != (tmp_path / "b" / "custodian.pub").read_text()


def test_keygen_refuses_a_non_empty_directory_and_touches_nothing(bwc, tmp_path, snapshot):
    out = tmp_path / "keys"
    out.mkdir()
    (out / "custodian.key").write_text("precious old key\n")
    (out / "notes.txt").write_text("do not touch\n")
    before = snapshot(out)
    r = bwc("keygen", "--out", out)
    assert r.returncode == 2, str(r)
    assert r.stderr.startswith("bwc keygen: ")
    assert str(out) in r.stderr and "not empty" in r.stderr
    assert r.stdout == ""
    assert snapshot(out) == before


# --- provision ------------------------------------------------------------------------------

def test_provision_writes_identity_policy_and_an_owner_only_signing_key(bwc, tmp_path, custodian):
    out = tmp_path / "cam"
    r = bwc("provision", "--device-id", "cam-07", "--custodian", custodian.pub, "--out", out)
    assert r.returncode == 0, str(r)
    assert {"device.pub", "device.json", "policy.toml", "device.key"} <= {p.name for p in out.iterdir()}
    assert mode(out / "device.key") == 0o600
    device_pub = key_line(out / "device.pub", DEVICE_PUBLIC)
    identity = json.loads((out / "device.json").read_text())
    assert identity["device_id"] == "cam-07"
    assert identity["device_public_key"] == device_pub
    assert identity["custodian_public_keys"] == [key_line(custodian.pub, CUSTODIAN_PUBLIC)]
    # The policy template is valid TOML a custodian can edit.
    assert isinstance(tomllib.loads((out / "policy.toml").read_text()), dict)
    assert "cam-07" in r.stdout and str(out / "device.pub") in r.stdout
    # The signing key never reaches the terminal.
    assert (out / "device.key").read_text().strip() not in r.stdout + r.stderr


def test_provision_accepts_several_custodians(bwc, tmp_path, custodian, second_custodian):
    out = tmp_path / "cam"
    r = bwc("provision", "--device-id", "cam-08", "--custodian", custodian.pub,
            "--custodian", second_custodian.pub, "--out", out)
    assert r.returncode == 0, str(r)
    identity = json.loads((out / "device.json").read_text())
    assert identity["custodian_public_keys"] == [key_line(custodian.pub, CUSTODIAN_PUBLIC),
                                                 key_line(second_custodian.pub, CUSTODIAN_PUBLIC)]


def test_two_provisioned_devices_get_different_keys(bwc, tmp_path, custodian):
    for name in ("a", "b"):
        r = bwc("provision", "--device-id", name, "--custodian", custodian.pub, "--out", tmp_path / name)
        assert r.returncode == 0, str(r)
    assert (tmp_path / "a" / "device.pub").read_text() != (tmp_path / "b" / "device.pub").read_text()


@pytest.mark.parametrize("wrong, kind", [
    ("secret", CUSTODIAN_SECRET),
    ("device_pub", DEVICE_PUBLIC),
])
def test_provision_rejects_a_key_of_the_wrong_kind_as_custodian(bwc, tmp_path, custodian, blank_device,
                                                               wrong, kind):
    path = custodian.key if wrong == "secret" else blank_device.pub
    out = tmp_path / "cam"
    r = bwc("provision", "--device-id", "cam-09", "--custodian", path, "--out", out)
    assert r.returncode == 2, str(r)
    assert r.stderr.startswith("bwc provision: ")
    assert str(path) in r.stderr
    assert kind in r.stderr and CUSTODIAN_PUBLIC in r.stderr  # what it is, and what is needed
    assert not out.exists(), "nothing may be provisioned with a wrong key"
    if wrong == "secret":
        assert custodian.key.read_text().strip().partition(":")[2] not in r.stderr


def test_provision_rejects_a_file_that_is_not_a_key(bwc, tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("hello\n")
    r = bwc("provision", "--device-id", "cam-10", "--custodian", junk, "--out", tmp_path / "cam")
    assert r.returncode == 2, str(r)
    assert str(junk) in r.stderr and "not an OpenBWC key file" in r.stderr
    assert not (tmp_path / "cam").exists()


def test_provision_rejects_a_missing_custodian_file(bwc, tmp_path, custodian):
    missing = tmp_path / "nobody.pub"
    out = tmp_path / "cam"
    r = bwc("provision", "--device-id", "cam-11", "--custodian", custodian.pub,
            "--custodian", missing, "--out", out)
    assert r.returncode == 2, str(r)
    assert f"{missing}: no such file" in r.stderr
    assert not out.exists()


def test_provision_rejects_the_same_custodian_twice(bwc, tmp_path, custodian):
    r = bwc("provision", "--device-id", "cam-12", "--custodian", custodian.pub,
            "--custodian", custodian.pub, "--out", tmp_path / "cam")
    assert r.returncode == 2, str(r)
    assert "same custodian key" in r.stderr
    assert not (tmp_path / "cam").exists()


def test_provision_refuses_an_already_provisioned_directory(bwc, blank_device, custodian, snapshot):
    before = snapshot(blank_device.dir)
    r = bwc("provision", "--device-id", "cam-13", "--custodian", custodian.pub, "--out", blank_device.dir)
    assert r.returncode == 2, str(r)
    assert "not empty" in r.stderr
    assert snapshot(blank_device.dir) == before


def test_provision_without_a_custodian_is_a_usage_error(bwc, tmp_path):
    r = bwc("provision", "--device-id", "cam-14", "--out", tmp_path / "cam")
    assert r.returncode == 2, str(r)
    assert "--custodian" in r.stderr
    assert not (tmp_path / "cam").exists()
