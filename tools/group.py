"""The group authority (docs/link.md §8.1): `bwc group init` and `bwc group admit`.

GROUP_DIR holds group.key (the authority's Ed25519 seed, 0600: keep it on the provisioning
station), group.pub, authority.json {group, group_pub} and members.jsonl (one line per
admission, the agency's record of who holds a certificate).
"""
from __future__ import annotations

import json
import os
import re

from nacl.signing import SigningKey

from device import group_cert as gc
from device.evidence import keys
from device.group import GROUP_FILE, MemberRecord
from hal.filekeystore import write_private_file

GROUP_SECRET = "openbwc-group-secret-v1"
GROUP_PUBLIC = "openbwc-group-public-v1"
_HEX64 = re.compile(r"[0-9a-f]{64}")


class GroupError(Exception):
    """A user mistake: a missing or wrong directory, a bad name. One line, no traceback."""


def fresh_dir(path: str, what: str) -> None:
    if os.path.exists(path) and not os.path.isdir(path):
        raise GroupError(f"{path} is a file; give a directory for the {what}")
    if os.path.isdir(path) and os.listdir(path):
        raise GroupError(f"{path} already exists and is not empty; refusing to overwrite keys")
    os.makedirs(path, mode=0o700, exist_ok=True)


def init_group(name: str, out_dir: str) -> str:
    if not gc.valid_id(name):
        raise GroupError(f"group name {name!r} must be 1..64 characters of A-Z a-z 0-9 . _ - "
                         "starting with a letter or digit")
    fresh_dir(out_dir, "group authority")
    key = SigningKey.generate()
    keys.write_secret(os.path.join(out_dir, "group.key"), GROUP_SECRET, bytes(key))
    pub_path = os.path.join(out_dir, "group.pub")
    keys.write_public(pub_path, GROUP_PUBLIC, bytes(key.verify_key))
    with open(os.path.join(out_dir, "authority.json"), "x", encoding="utf-8") as f:
        json.dump({"group": name, "group_pub": bytes(key.verify_key).hex()}, f, indent=2)
    return pub_path


class Authority:
    def __init__(self, group_dir: str) -> None:
        self.dir = group_dir
        if not os.path.isdir(group_dir):
            raise GroupError(f"{group_dir}: not a group directory (make one with bwc group init)")
        try:
            with open(os.path.join(group_dir, "authority.json"), encoding="utf-8") as f:
                info = json.loads(f.read(65536))
            self.name = info["group"]
            group_pub = bytes.fromhex(info["group_pub"])
        except FileNotFoundError:
            raise GroupError(f"{group_dir}: no authority.json; not a group directory "
                             "(make one with bwc group init)") from None
        except (OSError, ValueError, KeyError, TypeError):
            raise GroupError(f"{group_dir}/authority.json is not a group authority record") from None
        path = os.path.join(group_dir, "group.key")
        mode = _mode(path)
        self.key = SigningKey(_read_typed(path, GROUP_SECRET))
        if mode & 0o077:
            raise GroupError(f"{path} is readable by others (mode {mode:o}); expected 600")
        if not gc.valid_id(self.name) or bytes(self.key.verify_key) != group_pub:
            raise GroupError(f"{group_dir}: group.key does not match authority.json")
        self.pub = group_pub

    def admit(self, member_id: str, role: str, member_pub: bytes) -> MemberRecord:
        try:
            cert = gc.sign_cert(self.key, self.name, member_id, role, member_pub)
        except ValueError as exc:
            raise GroupError(str(exc)) from None
        with open(os.path.join(self.dir, "members.jsonl"), "a", encoding="utf-8") as f:
            f.write(json.dumps({"member_id": member_id, "role": role, "key": member_pub.hex()}) + "\n")
        return MemberRecord(self.name, self.pub, member_id, role, cert)


def _mode(path: str) -> int:
    try:
        return os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        raise GroupError(f"{path}: no group key; not a group directory") from None


def _read_typed(path: str, kind: str) -> bytes:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            text = f.read(keys.KEY_FILE_MAX_CHARS + 1)
    except OSError as exc:
        raise GroupError(f"{path}: cannot read ({exc.strerror})") from None
    prefix, _, hex_digits = text.strip().partition(":")
    if prefix != kind or not _HEX64.fullmatch(hex_digits):
        raise GroupError(f"{path}: not an OpenBWC {kind} key file")
    return bytes.fromhex(hex_digits)


def write_member_record(directory: str, record: MemberRecord) -> str:
    path = os.path.join(directory, GROUP_FILE)
    write_private_file(path, (json.dumps(record.to_json(), indent=2) + "\n").encode("utf-8"))
    return path


def admit_device(group_dir: str, device_dir: str) -> str:
    """Certify a provisioned camera (its device.json and device.pub) and write DEVICE_DIR/group.json."""
    authority = Authority(group_dir)
    if not os.path.isdir(device_dir):
        raise GroupError(f"{device_dir}: not a device directory (provision it with bwc provision)")
    try:
        with open(os.path.join(device_dir, "device.json"), encoding="utf-8") as f:
            device_id = json.loads(f.read(65536))["device_id"]
    except FileNotFoundError:
        raise GroupError(f"{device_dir}: no device.json; provision the device first") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise GroupError(f"{device_dir}/device.json is not a device identity") from None
    device_pub = keys.read_key(os.path.join(device_dir, "device.pub"), keys.DEVICE_PUBLIC)
    existing = os.path.join(device_dir, GROUP_FILE)
    if os.path.exists(existing):
        raise GroupError(f"{existing} exists: the device is already in a group; delete it to re-admit")
    if not gc.valid_id(device_id):
        raise GroupError(f"device id {device_id!r} cannot name a group member (A-Z a-z 0-9 . _ -, 1..64)")
    return write_member_record(device_dir, authority.admit(device_id, "camera", device_pub))
