"""`bwc doctor`: the check runner, the machine probe and the checks both boards share.

Every check reads the machine through a `Probe`: the paths it opens are mapped under
`probe.root` (a test's fake root; "/" for real), commands run through `probe.run` with a
timeout, and the clock, disk space and user are functions. The real probe is the default;
tests swap single fields with dataclasses.replace().
"""
from __future__ import annotations

import os
import platform
import shutil
import stat
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

OK, WARN, FAIL = "ok", "warn", "FAIL"

# Filesystems that never show a power cut as a zero-filled tail after the last flush
# (ordered or copy-on-write data before metadata), and those that do.
GOOD_FILESYSTEMS = frozenset({"ext4", "xfs", "btrfs", "f2fs"})
BAD_FILESYSTEMS = frozenset({"vfat", "msdos", "fat", "exfat", "ntfs", "ntfs3", "fuseblk"})
CHECK_TIMEOUT_S = 30.0     # a check that hangs (a wedged camera stack) is a FAIL, not a hung doctor
DEFAULT_COMMAND_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Result:
    check: str
    status: str
    detail: str
    blocking: bool

    def to_json(self) -> dict:
        return {"check": self.check, "status": self.status, "blocking": self.blocking, "detail": self.detail}


def ok(check: str, detail: str) -> Result:
    return Result(check, OK, detail, False)


def warn(check: str, detail: str) -> Result:
    return Result(check, WARN, detail, False)


def fail(check: str, detail: str, blocking: bool = True) -> Result:
    """A broken part; blocking=False when the camera still records without it (the speaker)."""
    return Result(check, FAIL, detail, blocking)


@dataclass(frozen=True)
class Ran:
    """What a command did; returncode None means it could not run (missing, timed out)."""
    returncode: int | None
    stdout: str = ""
    stderr: str = ""
    problem: str = ""   # why it could not run, one line


def run_command(argv: list[str], timeout_s: float) -> Ran:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s,
                              stdin=subprocess.DEVNULL, errors="replace")
    except FileNotFoundError:
        return Ran(None, problem=f"{argv[0]} is not installed")
    except subprocess.TimeoutExpired:
        return Ran(None, problem=f"{argv[0]} did not finish within {timeout_s:g} s")
    except OSError as exc:
        return Ran(None, problem=f"{argv[0]} could not run ({exc.strerror or exc})")
    return Ran(done.returncode, done.stdout, done.stderr)


def _load_picamera2_api():
    from hal.pi.camera import load_picamera2_api
    return load_picamera2_api()


def _load_pin_factory(name: str):
    from hal.pi.gpio import load_pin_factory
    return load_pin_factory(name)


@dataclass(frozen=True)
class Probe:
    """Everything the checks read from the machine. Defaults: this machine."""
    root: str = "/"
    run: Callable[[list[str], float], Ran] = run_command
    which: Callable[[str], str | None] = shutil.which
    wall_time_us: Callable[[], int] = lambda: time.time_ns() // 1000
    free_bytes: Callable[[str], int] = lambda path: shutil.disk_usage(path).free
    machine: Callable[[], str] = platform.machine
    pointer_bits: int = struct.calcsize("P") * 8
    python_version: tuple = tuple(sys.version_info[:3])
    uid: Callable[[], int] = os.geteuid
    environ: dict = field(default_factory=lambda: dict(os.environ))
    cwd: Callable[[], str] = os.getcwd
    load_picamera2_api: Callable[[], Any] = _load_picamera2_api
    load_pin_factory: Callable[[str], Any] = _load_pin_factory

    def path(self, absolute: str) -> str:
        """A machine path (/proc/..., /boot/...) as this probe sees it."""
        return os.path.join(self.root, absolute.lstrip("/"))

    def read_text(self, absolute: str) -> str | None:
        try:
            with open(self.path(absolute), encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return None


def run_checks(checks: list[tuple[str, Callable[[], Result | list[Result]]]],
               timeout_s: float = CHECK_TIMEOUT_S) -> list[Result]:
    """Run each check; one that raises or hangs becomes a FAIL line naming why."""
    results: list[Result] = []
    for name, check in checks:
        box: list = []

        def target(check=check) -> None:
            try:
                box.append(check())
            except BaseException as exc:  # noqa: BLE001 - a crashing check is a result, never a traceback
                box.append(exc)

        # A daemon thread: a check wedged in a driver call cannot keep the doctor alive.
        worker = threading.Thread(target=target, name=f"doctor-{name}", daemon=True)
        worker.start()
        worker.join(timeout_s)
        if not box:
            results.append(fail(name, f"the check did not finish within {timeout_s:g} s"))
            continue
        outcome = box[0]
        if isinstance(outcome, _expected_failures()):
            # A config or key error already names its file and why, in one line.
            results.append(fail(name, str(outcome).splitlines()[0] if str(outcome) else type(outcome).__name__))
        elif isinstance(outcome, BaseException):
            text = str(outcome).splitlines()[0] if str(outcome) else ""
            results.append(fail(name, f"the check crashed: {type(outcome).__name__}"
                                      f"{': ' + text if text else ''}"))
        else:
            results.extend(outcome if isinstance(outcome, list) else [outcome])
    return results


def _expected_failures() -> tuple:
    from device.config import ConfigError
    from device.evidence.keys import KeyFileError
    from hal.filekeystore import KeyStoreError
    from hal.pi import BackendUnavailable
    return (ConfigError, KeyFileError, KeyStoreError, BackendUnavailable)


# -- python / architecture --------------------------------------------------------------
def check_python(probe: Probe) -> Result:
    machine = probe.machine()
    version = ".".join(map(str, probe.python_version))
    if probe.pointer_bits != 64:
        # A 64-bit kernel under a 32-bit Pi OS userland still reports aarch64: the
        # interpreter's pointer size is what decides which wheels install.
        return fail("python", f"Python {version} is a {probe.pointer_bits}-bit build ({machine}): PyPI has "
                              "no 32-bit ARM wheels for pynacl or numpy; flash the 64-bit Raspberry Pi OS "
                              "(docs/pi.md#zero-2-w)")
    if probe.python_version < (3, 11):
        return fail("python", f"Python {version}: OpenBWC needs 3.11 or newer (Raspberry Pi OS Bookworm)")
    return ok("python", f"Python {version}, 64-bit ({machine})")


# -- storage ----------------------------------------------------------------------------
def _unescape_mount(text: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    out, i = [], 0
    while i < len(text):
        code = text[i + 1:i + 4]
        if text[i] == "\\" and len(code) == 3 and all(c in "01234567" for c in code):
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def mount_of(mountinfo: str, path: str) -> tuple[str, str, str] | None:
    """(mount point, filesystem type, source) of the mount holding `path`, by longest prefix."""
    best = None
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        fields_left, fields_right = left.split(), right.split()
        if not sep or len(fields_left) < 5 or not fields_right:
            continue
        point = _unescape_mount(fields_left[4])
        inside = path == point or point == "/" or path.startswith(point.rstrip("/") + "/")
        # Equal lengths: the later line is the mount on top (mounted over the earlier one).
        if inside and (best is None or len(point) >= len(best[0])):
            best = (point, fields_right[0], _unescape_mount(fields_right[1]) if len(fields_right) > 1 else "")
    return best


def existing_ancestor(path: str) -> str:
    """The storage directory, or the nearest parent that exists (bwc run makes the rest)."""
    path = os.path.abspath(path)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def check_storage_fs(probe: Probe, storage_dir: str) -> Result:
    name = "storage-fs"
    mountinfo = probe.read_text("/proc/self/mountinfo")
    if mountinfo is None:
        return warn(name, f"cannot read {probe.path('/proc/self/mountinfo')}: filesystem of {storage_dir} unknown")
    real = os.path.realpath(existing_ancestor(storage_dir))
    found = mount_of(mountinfo, real)
    if found is None:
        return warn(name, f"{storage_dir}: no mount holds it in /proc/self/mountinfo")
    point, fstype, _source = found
    where = f"{storage_dir} is on {fstype} (mounted at {point})"
    if fstype in BAD_FILESYSTEMS:
        return fail(name, f"{where}: a power cut can leave a zero-filled tail that reads as tampering; "
                          "use ext4 (docs/pi.md#storage)")
    if fstype in GOOD_FILESYSTEMS:
        return ok(name, where)
    return warn(name, f"{where}: not a filesystem OpenBWC is tested on (ext4, xfs, btrfs, f2fs); "
                      "a power cut may not leave a clean prefix (docs/pi.md#storage)")


def check_storage_space(probe: Probe, storage_dir: str, video, audio, policy) -> Result:
    """Free space as minutes of recording at the configured bitrates, as the firmware counts it (FLT-2)."""
    from device.storage_reserve import reserve_bytes
    name = "storage-space"
    free = probe.free_bytes(existing_ancestor(storage_dir))
    bytes_per_s = (video.bitrate_bps + audio.bitrate_bps) / 8
    minutes = max(0, free - reserve_bytes(video, policy)) / bytes_per_s / 60
    rate = f"{(video.bitrate_bps + audio.bitrate_bps) / 1e6:.2f} Mbit/s"
    detail = f"{_minutes_text(minutes)} of recording free at {rate} ({free / 2**30:.1f} GiB)"
    if minutes < 1:
        return fail(name, f"{detail}: the card is full; offload or free space before a shift")
    if minutes <= policy.storage_warn_min:
        return warn(name, f"{detail}: under storage_warn_min ({policy.storage_warn_min:g} min); the camera "
                          "will warn at once")
    return ok(name, detail)


def _minutes_text(minutes: float) -> str:
    if minutes >= 60:
        return f"{int(minutes // 60)} h {int(minutes % 60)} min"
    return f"{minutes:.0f} min"


# -- clock --------------------------------------------------------------------------------
def check_clock(probe: Probe) -> Result:
    from datetime import datetime, timezone

    from device.config import FIRMWARE_BUILD_UTC_US
    now_us = probe.wall_time_us()
    shown = datetime.fromtimestamp(now_us / 1e6, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    if now_us < FIRMWARE_BUILD_UTC_US:
        built = datetime.fromtimestamp(FIRMWARE_BUILD_UTC_US / 1e6, timezone.utc).strftime("%Y-%m-%d")
        return fail("clock", f"the wall clock reads {shown}, before the firmware was built ({built}): "
                             "footage would be dated wrong; set the clock (NTP or an RTC)")
    return ok("clock", f"the wall clock reads {shown}")


def check_ntp(probe: Probe) -> Result:
    name = "ntp"
    if probe.which("timedatectl") is None:
        return warn(name, "timedatectl not found: cannot tell whether NTP has synchronised the clock")
    ran = probe.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"], DEFAULT_COMMAND_TIMEOUT_S)
    answer = ran.stdout.strip()
    if ran.returncode != 0 or answer not in ("yes", "no"):
        why = ran.problem or _last_line(ran.stderr) or f"answered {answer!r}"
        return warn(name, f"timedatectl cannot say whether NTP is synchronised ({why})")
    if answer == "no":
        return warn(name, "NTP is not synchronised (timedatectl): without a network or an RTC the clock may drift")
    return ok(name, "NTP synchronised (timedatectl)")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


# -- keys -----------------------------------------------------------------------------------
def secret_files(device_dir: str) -> list[str]:
    """The device directory's secrets: the signing key, group membership, state (pod pairings)."""
    from hal.filekeystore import SIGNING_KEY_FILE
    found = [os.path.join(device_dir, n) for n in (SIGNING_KEY_FILE, "group.json")]
    state = os.path.join(device_dir, "state")
    if os.path.isdir(state):
        found += sorted(os.path.join(state, n) for n in os.listdir(state))
    return [p for p in found if os.path.isfile(p)]


def check_keys(probe: Probe, device_dir: str) -> Result:
    from hal.filekeystore import SIGNING_KEY_FILE
    name = "keys"
    if not os.access(device_dir, os.R_OK | os.X_OK):
        # Not "no device.key": that would invite re-provisioning a camera that has its key.
        return fail(name, f"{device_dir} is not readable by this user: run the doctor as the service's user")
    files = secret_files(device_dir)
    if os.path.join(device_dir, SIGNING_KEY_FILE) not in files:
        return fail(name, f"no {SIGNING_KEY_FILE} in {device_dir}: provision the device (bwc provision)")
    uid = probe.uid()
    # The camera must hold no key that reads footage or speaks for the group (custodian.key,
    # group.key, intake.key): only device.key is a secret of its own.
    problems = [f"{os.path.join(device_dir, n)} is a secret key that does not belong on the camera; move it "
                "offline" for n in sorted(os.listdir(device_dir)) if n.endswith(".key") and n != SIGNING_KEY_FILE]
    for path in files:
        st = os.stat(path)
        if st.st_mode & 0o077:
            problems.append(f"{path} is mode {stat.S_IMODE(st.st_mode):o} (readable by group/others; chmod 600)")
        elif st.st_uid != uid:
            problems.append(f"{path} is owned by uid {st.st_uid}, not by the user running this check (uid "
                            f"{uid}): run the doctor as the user that runs bwc, or chown the file to it")
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return fail(name, problems[0] + more)
    return ok(name, f"{len(files)} secret file{'s' * (len(files) != 1)} in {device_dir}, mode 600, owned by uid {uid}")


# -- device directory (sim and pi) ----------------------------------------------------------------
def check_device(device_dir: str) -> Result:
    from device.config import load_identity
    from tools.run import check_signing_key
    identity = load_identity(device_dir)
    check_signing_key(device_dir, identity)
    return ok("device", f"{device_dir}: device {identity.device_id!r}, device.key matches device.json")


def check_policy(device_dir: str):
    """(Result, Policy or None)."""
    from device.config import load_policy
    policy = load_policy(os.path.join(device_dir, "policy.toml"))
    return ok("policy", f"policy.toml loads (pre-event {policy.pre_event_s:g} s, segments of "
                        f"{policy.segment_s:g} s)"), policy


def check_announce(device_dir: str, policy) -> Result:
    from device.announce_assets import load_assets
    if policy.announce == "suppressed":
        return warn("announce", f"the announced-recording notice is suppressed by policy "
                                f"({policy.announce_suppress_reason})")
    assets = load_assets(device_dir, policy.announce_languages)
    parts = [f"{a.language} {a.duration_us / 1e6:.1f} s" + (" (agency)" if a.path.startswith(device_dir) else "")
             for a in assets.assets]
    return ok("announce", f"notice audio for {', '.join(parts)}")


def check_systemd(probe: Probe) -> Result:
    """Warn only: a camera run by hand is still a camera."""
    names = []
    for directory in ("/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"):
        try:
            listed = os.listdir(probe.path(directory))
        except OSError:
            continue
        names += [os.path.join(directory, n) for n in sorted(listed)
                  if n.endswith(".service") and ("openbwc" in n or n.startswith("bwc"))]
    if not names:
        return warn("systemd", "no OpenBWC systemd unit installed: the camera will not start at boot "
                               "nor be restarted by a watchdog (docs/pi.md#systemd)")
    return ok("systemd", f"{names[0]} installed")
