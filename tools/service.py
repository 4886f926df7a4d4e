"""`bwc install-service --device DIR`: the systemd unit, a dedicated user, the right owners.

The unit (tools/systemd/openbwc.service) is shipped inside the package and filled in here
with absolute paths, so the service runs exactly the bwc that installed it.
"""
from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import sys
from importlib import resources

UNIT_NAME = "openbwc.service"
# Raspberry Pi OS's device groups: camera (video), GPIO (gpio), ALSA (audio), the fuel gauge (i2c).
DEVICE_GROUPS = ("video", "gpio", "audio", "i2c")


class ServiceError(Exception):
    """One line for the user."""


def unit_template() -> str:
    return resources.files("tools").joinpath("systemd", UNIT_NAME).read_text(encoding="utf-8")


def render_unit(*, bwc_path: str, device_dir: str, user: str, groups: tuple[str, ...],
                group: str | None = None) -> str:
    for name, value in (("bwc", bwc_path), ("device directory", device_dir)):
        if not os.path.isabs(value) or any(c.isspace() or c in "%$\\\"'" for c in value):
            raise ServiceError(f"the {name} path must be absolute, without spaces, quotes, % or $: {value!r}")
    text = unit_template()
    for key, value in (("@BWC@", bwc_path), ("@DEVICE_DIR@", device_dir), ("@USER@", user),
                       ("@GROUP@", group or user), ("@GROUPS@", " ".join(groups))):
        text = text.replace(key, value)
    return text


def existing_groups(names=DEVICE_GROUPS) -> tuple[str, ...]:
    found = []
    for name in names:
        try:
            grp.getgrnam(name)
            found.append(name)
        except KeyError:
            pass
    return tuple(found)


def _primary_group(user: str) -> str | None:
    """The user's own primary group's name (Group= must match what the files are chowned to);
    None for a user still to be made (useradd --user-group gives it a group of its name)."""
    try:
        return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
    except KeyError:
        return None


def _bwc_path() -> str:
    """This installation's bwc: the one beside the running interpreter (the venv's), else PATH's."""
    beside = os.path.join(os.path.dirname(sys.executable), "bwc")
    path = beside if os.access(beside, os.X_OK) else shutil.which("bwc")
    if path is None:
        raise ServiceError("cannot find this installation's bwc: give it with --bwc PATH")
    return os.path.abspath(path)


def install(args) -> int:
    device_dir = os.path.realpath(args.device)
    if not os.path.isfile(os.path.join(device_dir, "device.json")):
        raise ServiceError(f"{device_dir} is not a provisioned device directory (no device.json)")
    storage = os.path.join(device_dir, "storage")
    if os.path.islink(storage):
        # ProtectSystem=strict leaves only the device directory writable, and a link's target
        # is not inside it: the firmware would fail with EROFS at its first segment.
        raise ServiceError(f"{storage} is a symbolic link: mount the evidence drive there instead "
                           "(docs/pi.md#storage)")
    groups = existing_groups()
    bwc_path = args.bwc or _bwc_path()
    unit = render_unit(bwc_path=bwc_path, device_dir=device_dir, user=args.user, groups=groups,
                       group=_primary_group(args.user))
    target = os.path.join(args.unit_dir, UNIT_NAME)
    if args.dry_run:
        sys.stdout.write(unit)
        return 0
    if os.geteuid() != 0:
        raise ServiceError("installing a system service needs root: run it with sudo (or use --dry-run)")
    try:
        pwd.getpwnam(args.user)
    except KeyError:
        subprocess.run(["useradd", "--system", "--home-dir", device_dir, "--no-create-home",
                        "--shell", "/usr/sbin/nologin", "--user-group", args.user], check=True)
        unit = render_unit(bwc_path=bwc_path, device_dir=device_dir, user=args.user, groups=groups,
                           group=_primary_group(args.user))
    # Owned by the service user, private to it: the key store must not be readable by others.
    uid, gid = pwd.getpwnam(args.user).pw_uid, pwd.getpwnam(args.user).pw_gid
    for root, dirs, files in os.walk(device_dir):
        for name in [root, *(os.path.join(root, d) for d in dirs), *(os.path.join(root, f) for f in files)]:
            os.chown(name, uid, gid, follow_symlinks=False)   # a link must not hand its target over
    os.chmod(device_dir, 0o700)
    os.makedirs(args.unit_dir, exist_ok=True)
    with open(target, "w", encoding="utf-8") as f:
        f.write(unit)
    missing = sorted(set(DEVICE_GROUPS) - set(groups))
    print(f"installed {target} for {device_dir} (user {args.user}, groups {' '.join(groups) or 'none'})")
    if missing:
        print(f"note: no group {', '.join(missing)} on this system; the service cannot reach those devices")
    print("next: sudo systemctl daemon-reload && sudo systemctl enable --now openbwc; journalctl -u openbwc -f")
    return 0


def add_parser(sub) -> None:
    s = sub.add_parser("install-service", help="install the systemd unit that runs this camera (docs/pi.md#systemd)")
    s.add_argument("--device", required=True, metavar="DIR", help="the provisioned device directory")
    s.add_argument("--user", default="openbwc", help="the service's dedicated user (made if missing)")
    s.add_argument("--unit-dir", default="/etc/systemd/system", metavar="DIR")
    s.add_argument("--bwc", metavar="PATH", help="the bwc to run (default: this one)")
    s.add_argument("--dry-run", action="store_true", help="print the unit, change nothing")


def run(args) -> int:
    try:
        return install(args)
    except ServiceError as exc:
        print(f"bwc install-service: {exc}", file=sys.stderr)
        return 2
