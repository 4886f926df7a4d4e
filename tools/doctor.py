"""`bwc doctor --hal pi|sim [--device DIR] [--storage DIR] [--json]` (docs/tools.md#bwc-doctor).

One line per check: status, check name, detail. Exit 0 when nothing blocks, 1 when a
blocking check fails, 2 for a usage error. The checks are in tools/doctor_checks.py (both
boards) and tools/doctor_pi.py (the Pi's parts); each reads the machine through a Probe.
"""
from __future__ import annotations

import json
import os
import sys

from tools import doctor_checks as common
from tools import doctor_pi as pi
from tools.doctor_checks import Probe, Result, run_checks

EXIT_OK, EXIT_BLOCKED, EXIT_USAGE = 0, 1, 2


def add_parser(sub) -> None:
    s = sub.add_parser("doctor", help="check that this machine can run the camera (docs/tools.md#bwc-doctor)")
    s.add_argument("--hal", required=True, choices=("sim", "pi"))
    s.add_argument("--device", metavar="DEVICE_DIR", help="the provisioned device directory (required with sim)")
    s.add_argument("--storage", metavar="DIR", help="evidence directory (default DEVICE_DIR/storage)")
    s.add_argument("--json", action="store_true", help="print a JSON list of {check, status, blocking, detail}")


class _Context:
    """What earlier checks found, for the ones that depend on them."""

    def __init__(self, args) -> None:
        from device.config import Policy
        self.device = args.device
        self.storage = args.storage or (os.path.join(args.device, "storage") if args.device else None)
        self.policy = Policy()
        self.policy_loaded = False
        self.config = None
        self.api = None
        self.hardware_free = True   # False while a bwc run holds the device (and its camera, pins, mic)
        self.lock = None


def diagnose(args, probe: Probe | None = None) -> list[Result]:
    """Every check for args.hal, in the order a hardware team would fix them."""
    probe = probe or Probe()
    ctx = _Context(args)
    checks: list = []
    if args.hal == "pi":
        checks.append(("python", lambda: common.check_python(probe)))
    if ctx.device:
        checks += [("device", lambda: common.check_device(ctx.device)), ("policy", lambda: _policy(ctx))]
    if args.hal == "pi":
        checks += _pi_checks(ctx, probe)
    checks += [("storage-fs", lambda: _storage(ctx, lambda d: common.check_storage_fs(probe, d), "storage-fs")),
               ("storage-space", lambda: _storage(ctx, lambda d: _space(ctx, probe, d, args.hal), "storage-space")),
               ("clock", lambda: common.check_clock(probe))]
    if args.hal == "pi":
        checks.append(("ntp", lambda: common.check_ntp(probe)))
    if ctx.device:
        # bwc run loads the notices before the firmware starts (both boards): a bad file stops it.
        checks += [("keys", lambda: common.check_keys(probe, ctx.device)), ("announce", lambda: _announce(ctx))]
    if args.hal == "pi":
        checks += [("battery", lambda: _with_config(ctx, "battery", lambda c: pi.check_battery(probe, c))),
                   ("systemd", lambda: common.check_systemd(probe))]
    try:
        return run_checks(checks)
    finally:
        if ctx.lock is not None:
            ctx.lock.release()


def _policy(ctx: _Context) -> Result:
    result, ctx.policy = common.check_policy(ctx.device)
    ctx.policy_loaded = True
    return result


def _announce(ctx: _Context) -> Result:
    if not ctx.policy_loaded:
        return pi.not_checked("announce", "the policy did not load")
    return common.check_announce(ctx.device, ctx.policy)


def _storage(ctx: _Context, check, name: str) -> Result:
    if ctx.storage is None:
        return pi.not_checked(name, "no --device or --storage")
    return check(ctx.storage)


def _space(ctx: _Context, probe: Probe, directory: str, hal: str) -> Result:
    from hal.media import AudioFormat, VideoFormat
    if hal == "pi":
        if ctx.config is None:
            return pi.not_checked("storage-space", "pi.toml did not load (the bitrates are in it)")
        c = ctx.config
        video = VideoFormat(width=c.width, height=c.height, fps=c.fps,
                            keyframe_interval_s=c.keyframe_interval_s, bitrate_bps=c.bitrate_bps)
        audio = AudioFormat(sample_rate_hz=c.mic_sample_rate_hz, bitrate_bps=c.mic_bitrate_bps)
    else:
        from simulator.scenario import DEFAULT_VIDEO
        video, audio = DEFAULT_VIDEO, AudioFormat()
    return common.check_storage_space(probe, directory, video, audio, ctx.policy)


def _with_config(ctx: _Context, name: str, check):
    if ctx.config is None:
        return pi.not_checked(name, "pi.toml did not load")
    return check(ctx.config)


def _pi_checks(ctx: _Context, probe: Probe) -> list:
    def config() -> Result:
        result, ctx.config = pi.load_config(ctx.device)
        return result

    def lock() -> Result:
        from hal.devicelock import LOCK_FILE, DeviceBusyError, DeviceLock, DeviceLockError
        if ctx.device is None:
            return pi.not_checked("device-lock", "no --device")
        if not os.access(ctx.device, os.R_OK | os.X_OK):
            ctx.hardware_free = False   # perhaps running: nothing is probed behind its back
            return common.fail("device-lock", f"{ctx.device} is not readable by this user: run the doctor as "
                                              "the service's user (sudo -u openbwc bwc doctor ...)")
        if not os.path.exists(os.path.join(ctx.device, LOCK_FILE)):
            # Never run, so not running. Not created here: made by a doctor run as root, the
            # lock file would be root's, and the service's own user could not open it.
            return common.ok("device-lock", f"{ctx.device} has never run (no {LOCK_FILE})")
        held = DeviceLock(ctx.device)
        try:
            held.acquire()
        except DeviceBusyError as exc:
            ctx.hardware_free = False
            return common.warn("device-lock", f"{exc}: its camera, pins and microphone are not probed; stop it "
                                              "(systemctl stop) for a full check")
        except (DeviceLockError, OSError) as exc:   # run.lock is another user's (the service's)
            ctx.hardware_free = False
            return common.fail("device-lock", f"cannot open {LOCK_FILE} ({exc}): run the doctor as the service's "
                                              "user (sudo -u openbwc bwc doctor ...); its camera, pins and microphone were not probed")
        ctx.lock = held   # held to the end, so a bwc run started meanwhile cannot collide with a probe
        return common.ok("device-lock", f"{ctx.device} is not running; the doctor holds it while probing")

    def picamera2() -> Result:
        result, ctx.api = pi.check_picamera2(probe)
        return result

    def camera():
        if ctx.api is None or ctx.config is None:
            return [pi.not_checked(n, "picamera2 does not import" if ctx.api is None else "pi.toml did not load")
                    for n in ("camera", "camera-mode")]
        if not ctx.hardware_free:
            return [pi.not_checked(n, "bwc run holds the device (the camera is in use by it)")
                    for n in ("camera", "camera-mode")]
        return pi.check_camera(probe, ctx.api, ctx.config)

    def encoder() -> Result:
        if ctx.api is None or ctx.config is None:
            return pi.not_checked("encoder", "picamera2 does not import" if ctx.api is None else "pi.toml did not load")
        return pi.check_encoder(probe, ctx.api, ctx.config)

    def gpio():
        if ctx.config is None:
            return [pi.not_checked(n, "pi.toml did not load") for n in ("gpio-factory", "gpio-pins")]
        return pi.check_gpio(probe, ctx.config, claim=ctx.hardware_free)

    return [("pi-config", config), ("device-lock", lock), ("picamera2", picamera2), ("camera", camera),
            ("encoder", encoder),
            ("gpio-workdir", lambda: _with_config(ctx, "gpio-workdir", lambda c: pi.check_gpio_workdir(probe, c))),
            ("gpio", gpio),
            ("gpio-buses", lambda: _with_config(ctx, "gpio-i2s", lambda c: pi.check_gpio_buses(probe, c))),
            ("audio", lambda: _with_config(ctx, "audio", lambda c: pi.check_audio(probe, c, ctx.hardware_free)))]


def format_text(results: list[Result]) -> str:
    lines = [f"{r.status:<6}{r.check:<14}{r.detail}" for r in results]
    blocking = sum(r.blocking for r in results)
    counts = {s: sum(r.status == s for r in results) for s in (common.OK, common.WARN, common.FAIL)}
    lines.append(f"{counts['ok']} ok, {counts['warn']} warn, {counts['FAIL']} FAIL: "
                 + (f"{blocking} blocking problem{'s' * (blocking != 1)}" if blocking else "nothing blocks"))
    return "\n".join(lines)


def run(args, probe: Probe | None = None) -> int:
    # Printed here, not raised as tools.cli.UsageError: under `python -m tools.cli` that class
    # lives in __main__, and an import of tools.cli would make a second, uncaught one.
    problem = None
    if args.hal == "sim" and not args.device:
        problem = "--hal sim checks a provisioned device: give --device DEVICE_DIR"
    elif args.device and not os.path.isdir(args.device):
        problem = f"--device {args.device}: not a directory"
    if problem:
        print(f"bwc doctor: {problem}", file=sys.stderr)
        return EXIT_USAGE
    results = diagnose(args, probe)
    if args.json:
        print(json.dumps([r.to_json() for r in results], indent=2))
    else:
        print(format_text(results))
    sys.stdout.flush()
    return EXIT_BLOCKED if any(r.blocking for r in results) else EXIT_OK
