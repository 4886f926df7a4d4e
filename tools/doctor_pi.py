"""`bwc doctor --hal pi`: the Raspberry Pi's own checks (camera, encoder, GPIO, audio, battery).

Each check takes the probe (tools/doctor_checks.py) and the board config, and goes through
the backends' own loaders (hal.pi.camera.load_picamera2_api, hal.pi.gpio.load_pin_factory,
hal.pi.battery.PiBattery), so what the doctor says is what `bwc run --hal pi` will meet.
"""
from __future__ import annotations

import os
import re

# The same reading of ALSA's cascade of lines as the microphone backend's own errors.
from hal.pi.alsa_capture import alsa_reason as _alsa_reason
from tools.doctor_checks import DEFAULT_COMMAND_TIMEOUT_S, Probe, Result, _last_line, fail, ok, warn

BOOT_CONFIGS = ("/boot/firmware/config.txt", "/boot/config.txt")   # Bookworm and later, then older images
# Overlays that put an I2S codec, microphone or amplifier on GPIO18-21.
_I2S_OVERLAY_WORDS = ("i2s", "hifiberry", "iqaudio", "voicehat", "max98357", "adau7002", "rpi-dac",
                      "justboom", "allo-", "audioinjector", "seeed", "wm8960", "pcm5102", "fe-pi", "dacberry")
_TRUE = ("on", "true", "yes", "okay", "1", "")
CAPTURE_PROBE_S = 1          # arecord -d: long enough to see samples arrive, short enough to wait for
CAPTURE_TIMEOUT_S = 6.0      # a capture device that blocks (a wedged USB card) is a FAIL, not a hang


def not_checked(name: str, why: str) -> Result:
    """A check that cannot run because an earlier one failed: that one carries the blame."""
    return warn(name, f"not checked: {why}")


# -- board config -----------------------------------------------------------------------------------
def load_config(device_dir: str | None):
    """(Result, PiBoardConfig or None)."""
    from hal.pi.config import PiBoardConfig
    from tools.pi_main import PI_CONFIG_FILE, load_pi_config
    if device_dir is None:
        return ok("pi-config", "no --device: the default wiring of docs/pi.md is checked"), PiBoardConfig()
    path = os.path.join(device_dir, PI_CONFIG_FILE)
    config = load_pi_config(path)   # ConfigError: reported as FAIL by the runner's caller
    where = path if os.path.exists(path) else f"no {PI_CONFIG_FILE} (defaults)"
    return ok("pi-config", f"{where}: camera {config.camera_num} at {config.width}x{config.height}@{config.fps}, "
                           f"pins from {config.pin_factory!r}, battery {config.battery!r}"), config


# -- picamera2 and the camera ------------------------------------------------------------------------
def check_picamera2(probe: Probe):
    """(Result, Picamera2Api or None)."""
    try:
        api = probe.load_picamera2_api()
    except Exception as exc:  # noqa: BLE001 - BackendUnavailable, or a raw import failure from an older backend
        chain = [exc, exc.__cause__, exc.__context__]
        text = " ".join(str(e) for e in chain if e is not None)
        if "numpy.dtype size changed" in text or "numpy" in text and "binary incompatib" in text:
            return fail("picamera2", "picamera2 cannot import: numpy ABI mismatch (`numpy.dtype size changed`): "
                                     "a pip numpy in the venv shadows the system numpy that python3-simplejpeg "
                                     "was built for; reinstall with deploy/pi-install.sh (it pins the system's "
                                     "numpy) or remove the venv's copy (pip uninstall numpy)"), None
        return fail("picamera2", str(exc).splitlines()[0] or type(exc).__name__), None
    return ok("picamera2", f"picamera2 {_version()} imports ({_module_of(api.Picamera2)})"), api


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("picamera2")
    except PackageNotFoundError:
        return "(version unknown)"


def _module_of(cls) -> str:
    # Where it came from tells the apt package (/usr/lib/python3/dist-packages) from a pip copy.
    import sys
    module = getattr(cls, "__module__", "?")
    return getattr(sys.modules.get(module), "__file__", None) or module


def check_camera(probe: Probe, api, config) -> list[Result]:
    """Camera presence, then whether one of its sensor modes gives the configured picture."""
    cameras = list(api.Picamera2.global_camera_info())
    if config.camera_num >= len(cameras):
        found = ", ".join(f"{c.get('Num', i)}: {c.get('Model', '?')}" for i, c in enumerate(cameras)) or "none"
        return [fail("camera", f"camera {config.camera_num} is not connected (libcamera sees {found}); "
                               "check the ribbon cable and `rpicam-hello --list-cameras`"),
                not_checked("camera-mode", "no camera")]
    info = cameras[config.camera_num]
    named = f"camera {config.camera_num}: {info.get('Model', '?')} ({len(cameras)} connected)"
    try:
        picam2 = api.Picamera2(config.camera_num)
    except Exception as exc:  # noqa: BLE001 - busy (another process has it), dead cable ...
        return [fail("camera", f"{named} does not open ({type(exc).__name__}: {exc}); is another program "
                               "(bwc run, rpicam-*) using it?"), not_checked("camera-mode", "the camera did not open")]
    try:
        modes = list(picam2.sensor_modes)
    finally:
        picam2.close()
    return [ok("camera", named), _mode_result(config, modes)]


def _mode_result(config, modes: list[dict]) -> Result:
    want = f"{config.width}x{config.height}@{config.fps}"
    sized = [m for m in modes if "size" in m and "fps" in m]
    if not sized:
        return warn("camera-mode", f"the camera lists no raw sensor modes: cannot tell whether {want} works")

    def shown(m) -> str:
        return f"{m['size'][0]}x{m['size'][1]}@{m['fps']:g}"

    fast = [m for m in sized if m["fps"] >= config.fps]
    if not fast:
        best = max(sized, key=lambda m: m["fps"])
        return fail("camera-mode", f"{want}: no sensor mode reaches {config.fps} fps (fastest {shown(best)}); "
                                   "lower fps in pi.toml")
    exact = [m for m in fast if tuple(m["size"]) == (config.width, config.height)]
    if exact:
        return ok("camera-mode", f"{want}: sensor mode {shown(exact[0])}")
    larger = [m for m in fast if m["size"][0] >= config.width and m["size"][1] >= config.height]
    if larger:
        pick = min(larger, key=lambda m: m["size"][0] * m["size"][1])
        return ok("camera-mode", f"{want}: scaled down by the ISP from sensor mode {shown(pick)}")
    pick = max(fast, key=lambda m: m["size"][0] * m["size"][1])
    return warn("camera-mode", f"{want}: upscaled from sensor mode {shown(pick)} (the largest at {config.fps} fps); "
                               "the picture holds no more detail than that")


def board_model(probe: Probe) -> str:
    text = probe.read_text("/proc/device-tree/model")
    return (text or "").replace("\x00", "").strip()


def encoder_kind(api, config) -> str:
    """"v4l2", "libav" or "unknown": PiCamera's own answer when it gives one, else the class
    picamera2 bound to H264Encoder (its V4L2 encoder on VC4 boards, LibavH264Encoder otherwise)."""
    try:
        from hal.pi.camera import PiCamera
        from hal.realclock import RealClock
        kind = getattr(PiCamera, "encoder_kind", None)
        if isinstance(kind, property) or kind is None:
            camera = PiCamera(width=config.width, height=config.height, fps=config.fps,
                              keyframe_interval_s=config.keyframe_interval_s, bitrate_bps=config.bitrate_bps,
                              clock=RealClock(), picamera2_api=api, camera_num=config.camera_num)
            kind = getattr(camera, "encoder_kind", None)
        if callable(kind):
            kind = kind()
        if isinstance(kind, str) and ("libav" in kind.lower() or "v4l2" in kind.lower()):
            return "libav" if "libav" in kind.lower() else "v4l2"
    except Exception:  # noqa: BLE001 - fall back to the class itself
        pass
    names = {c.__name__ for c in getattr(api.H264Encoder, "__mro__", ())}
    return "v4l2" if "V4L2Encoder" in names else "libav" if "LibavH264Encoder" in names else "unknown"


def check_encoder(probe: Probe, api, config) -> Result:
    kind = encoder_kind(api, config)
    if kind == "unknown":
        return warn("encoder", f"picamera2's H264Encoder ({getattr(api.H264Encoder, '__name__', '?')}) is "
                               "neither its V4L2 nor its libav encoder")
    model = board_model(probe)
    pi5 = bool(re.search(r"Raspberry Pi 5|Compute Module 5", model))
    board = model or "an unknown board (no /proc/device-tree/model)"
    what = {"v4l2": "V4L2 hardware H.264", "libav": "libav software H.264"}[kind]
    if pi5 and kind == "v4l2":
        return fail("encoder", f"{what} on {board}: the Pi 5 has no H.264 block; picamera2 should have picked "
                               "libav (is /dev/video* readable by this user? add it to the video group)")
    if model and not pi5 and kind == "libav":
        return warn("encoder", f"{what} on {board}: the VC4 hardware encoder was not found (is this user in the "
                               "video group?); software encoding at this size may drop frames")
    return ok("encoder", f"{what} on {board}")


# -- GPIO --------------------------------------------------------------------------------------------------
def configured_pins(config) -> list[tuple[str, int, object]]:
    """(what, GPIO, InputPinConfig for inputs or None for outputs), as the firmware claims them."""
    pins = [("record_button", config.record_button.pin, config.record_button)]
    pins += [(f"trigger {name}", line.pin, line) for name, line in config.triggers.items()]
    pins += [(what, getattr(config, what), None)
             for what in ("led_record_pin", "led_status_pin", "buzzer_pin", "vibration_pin")]
    return pins


def check_gpio_workdir(probe: Probe, config) -> Result:
    name = "gpio-workdir"
    if config.pin_factory != "lgpio":
        return ok(name, f"pin factory {config.pin_factory!r} needs no working directory")
    given = probe.environ.get("LG_WD")
    directory = given or probe.cwd()
    source = "LG_WD" if given else "the working directory"
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK | os.X_OK):
        return fail(name, f"lgpio writes its notification files to {source} ({directory}), which is not a "
                          "writable directory: set LG_WD or the unit's WorkingDirectory= (docs/pi.md#systemd)")
    return ok(name, f"lgpio can write its notification files to {source} ({directory})")


def check_gpio(probe: Probe, config, claim: bool) -> list[Result]:
    """The configured factory loads; each configured pin can be claimed (and is released again)."""
    try:
        factory = probe.load_pin_factory(config.pin_factory)
    except Exception as exc:  # noqa: BLE001 - BackendUnavailable names the factory and why
        return [fail("gpio-factory", str(exc).splitlines()[0]), not_checked("gpio-pins", "no pin factory")]
    results = [ok("gpio-factory", f"gpiozero pin factory {config.pin_factory!r} loads ({type(factory).__name__})")]
    if not claim:
        return results + [not_checked("gpio-pins", "bwc run holds the device (its pins are in use by it)")]
    from gpiozero import DigitalInputDevice, InputDevice
    problems, claimed = [], 0
    try:
        for what, pin, line in configured_pins(config):
            try:
                # Outputs are claimed as floating inputs: the doctor drives nothing (no LED, no buzz).
                device = (DigitalInputDevice(pin, pull_up=line.pull_up, active_state=line.gpiozero_active_state,
                                             pin_factory=factory) if line is not None else
                          InputDevice(pin, pull_up=None, active_state=True, pin_factory=factory))
            except Exception as exc:  # noqa: BLE001 - GPIO busy, a pin the factory does not know
                problems.append(f"GPIO{pin} ({what}) cannot be claimed: {type(exc).__name__}: {exc}")
                continue
            device.close()
            claimed += 1
    finally:
        close = getattr(factory, "close", None)
        if close is not None:
            close()
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return results + [fail("gpio-pins", problems[0] + more)]
    return results + [ok("gpio-pins", f"all {claimed} configured pins can be claimed")]


def boot_config(probe: Probe) -> tuple[str, str] | None:
    for path in BOOT_CONFIGS:
        text = probe.read_text(path)
        if text is not None:
            return path, text
    return None


def parse_boot_config(text: str) -> tuple[list[str], list[str]]:
    """(what turns I2S on, what turns I2C-ARM on), as the config.txt lines that do it.

    Conditional sections ([pi4], [cm5] ...) are not evaluated: a line anywhere counts,
    so a conflict on some board is named rather than missed.
    """
    i2s, i2c = [], []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        key, _, value = line.partition("=")
        key = key.strip().lower()
        if key == "dtparam":
            for item in value.split(","):
                param, _, setting = item.strip().partition("=")
                on = setting.strip().lower() in _TRUE
                if param.strip() == "i2s" and on:
                    i2s.append(line)
                if param.strip() in ("i2c_arm", "i2c") and on:
                    i2c.append(line)
        elif key == "dtoverlay":
            overlay = value.split(",", 1)[0].strip().lower()
            if any(word in overlay for word in _I2S_OVERLAY_WORDS):
                i2s.append(line)
    return i2s, i2c


def check_gpio_buses(probe: Probe, config) -> list[Result]:
    from hal.pi.config import I2C_GPIOS, I2S_GPIOS
    found = boot_config(probe)
    if found is None:
        why = f"no {' or '.join(BOOT_CONFIGS)}"
        return [warn("gpio-i2s", f"{why}: cannot check the pins against I2S"),
                warn("gpio-i2c", f"{why}: cannot check the pins against I2C")]
    path, text = found
    i2s, i2c = parse_boot_config(text)
    pins = configured_pins(config)
    results = []
    clash = [f"GPIO{pin} ({what}) is {I2S_GPIOS[pin]}" for what, pin, _ in pins if pin in I2S_GPIOS]
    if i2s and clash:
        results.append(fail("gpio-i2s", f"{'; '.join(clash)}, taken by I2S ({i2s[0]} in {path}); move it in "
                                         "pi.toml (docs/pi.md#wiring)"))
    elif i2s:
        results.append(ok("gpio-i2s", f"I2S on ({i2s[0]}); no configured pin on GPIO18-21"))
    else:
        results.append(ok("gpio-i2s", f"I2S not enabled in {path}"))
    clash = [f"GPIO{pin} ({what}) is {I2C_GPIOS[pin]}" for what, pin, _ in pins if pin in I2C_GPIOS]
    if i2c and clash and config.battery == "sysfs":
        results.append(fail("gpio-i2c", f"{'; '.join(clash)}, the fuel gauge's I2C bus ({i2c[0]} in {path}); "
                                         "move it in pi.toml"))
    elif i2c and clash:
        results.append(warn("gpio-i2c", f"{'; '.join(clash)}, owned by the I2C driver ({i2c[0]} in {path})"))
    else:
        results.append(ok("gpio-i2c", f"I2C {'on' if i2c else 'off'}; no configured pin on GPIO2-3"
                          if not clash else f"I2C off in {path}; GPIO2-3 free for GPIO use"))
    return results


# -- audio -----------------------------------------------------------------------------------------------
def check_audio(probe: Probe, config, capture: bool) -> list[Result]:
    missing = [tool for tool in ("arecord", "aplay") if probe.which(tool) is None]
    if missing:
        results = [fail("audio-tools", f"{' and '.join(missing)} not found: apt install alsa-utils")]
    else:
        results = [ok("audio-tools", "arecord and aplay present (alsa-utils)")]
    if "arecord" in missing:
        results.append(not_checked("audio-capture", "no arecord"))
    elif not capture:
        results.append(not_checked("audio-capture", "bwc run holds the device (the microphone is in use by it)"))
    else:
        results.append(_capture_probe(probe, config))
    results.append(not_checked("audio-speaker", "no aplay") if "aplay" in missing else _speaker_listed(probe, config))
    return results


def _capture_probe(probe: Probe, config) -> Result:
    device = config.alsa_mic_device
    ran = probe.run(["arecord", "-q", "-D", device, "-d", str(CAPTURE_PROBE_S), "-f", "S16_LE",
                     "-r", str(config.mic_sample_rate_hz), "-c", "1", "-t", "raw", "/dev/null"], CAPTURE_TIMEOUT_S)
    if ran.returncode == 0:
        return ok("audio-capture", f"{device!r} records ({config.mic_sample_rate_hz} Hz mono, {CAPTURE_PROBE_S} s)")
    why = ran.problem or _alsa_reason(ran.stderr) or f"arecord exited {ran.returncode}"
    return fail("audio-capture", f"capture device {device!r} does not record: {why}; set alsa_mic_device in "
                                 "pi.toml (`arecord -L` lists them)")


def _speaker_listed(probe: Probe, config) -> Result:
    device = config.alsa_speaker_device
    ran = probe.run(["aplay", "-L"], DEFAULT_COMMAND_TIMEOUT_S)
    if ran.returncode != 0:
        why = ran.problem or _last_line(ran.stderr) or f"exited {ran.returncode}"
        return fail("audio-speaker", f"aplay -L failed ({why})", blocking=False)
    names = [line.strip() for line in ran.stdout.splitlines() if line and not line[0].isspace()]
    card = re.search(r"CARD=([^,]+)", device)
    numbered = re.fullmatch(r"(?:plug)?hw:(\d+)(?:,\d+)?", device)
    listed = device in names or (card and any(f"CARD={card.group(1)}," in n or n.endswith(f"CARD={card.group(1)}")
                                              for n in names))
    if not listed and numbered:
        cards = probe.run(["aplay", "-l"], DEFAULT_COMMAND_TIMEOUT_S).stdout
        listed = re.search(rf"^card {numbered.group(1)}:", cards, re.M) is not None
    if listed:
        return ok("audio-speaker", f"speaker device {device!r} is listed by aplay")
    shown = ", ".join(names[:6]) + (" ..." if len(names) > 6 else "") or "none"
    # Not blocking: the firmware records on without a speaker, but the notice will not play (ANN-1).
    return fail("audio-speaker", f"speaker device {device!r} is not listed by aplay -L ({shown}): the "
                                 "recording notice will not play; set alsa_speaker_device in pi.toml",
                blocking=False)


# -- battery ---------------------------------------------------------------------------------------------
def check_battery(probe: Probe, config) -> Result:
    from hal.pi.battery import PiBattery
    if config.battery == "none":
        return warn("battery", "battery = \"none\" in pi.toml: battery warnings off (no fuel gauge)")
    directory = probe.path(config.battery_sysfs_dir)
    try:
        battery = PiBattery(directory)
        level, volts, charging = battery.level_pct(), battery.voltage_v(), battery.is_charging()
    except Exception as exc:  # noqa: BLE001 - BackendUnavailable (files missing), BatteryReadError (the gauge)
        supplies = probe.path("/sys/class/power_supply")
        present = sorted(os.listdir(supplies)) if os.path.isdir(supplies) else []
        hint = (f"; present: {', '.join(present)}" if present else
                "; no power_supply at all: set battery = \"none\" in pi.toml if the board has no gauge")
        message = str(exc).splitlines()[0].replace(directory, config.battery_sysfs_dir)
        return fail("battery", f"{message}{hint}")
    return ok("battery", f"{level:g} %, {volts:.2f} V, {'charging' if charging else 'on battery'} "
                         f"({config.battery_sysfs_dir})")
