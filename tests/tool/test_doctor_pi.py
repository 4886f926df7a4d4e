"""`bwc doctor --hal pi`'s own checks, each on a fake root: ok, warn and FAIL as a hardware team reads them.

GPIO goes through gpiozero's real MockFactory; the ALSA probes run the real arecord/aplay
(alsa-utils) against the `null` PCM and a name that does not exist.
"""
from __future__ import annotations

import dataclasses
import shutil

import pytest
from gpiozero import DigitalOutputDevice
from gpiozero.pins.mock import MockFactory

from doctor_fakes import Commands, healthy_pi, make_camera_api, supply, write
from hal.pi import BackendUnavailable
from hal.pi.config import InputPinConfig, PiBoardConfig
from tools import doctor_pi as pi
from tools.doctor_checks import FAIL, OK, WARN, Ran

DEFAULT = PiBoardConfig()


def by_name(results):
    return {r.check: r for r in results}


# -- picamera2 ---------------------------------------------------------------------------------------
def test_picamera2_that_imports_is_ok(tmp_path):
    result, api = pi.check_picamera2(healthy_pi(tmp_path))
    assert result.status == OK and api is not None


def test_the_bookworm_numpy_abi_failure_is_named_plainly(tmp_path):
    def load():
        try:
            raise ValueError("numpy.dtype size changed, may indicate binary incompatibility. "
                             "Expected 96 from C header, got 88 from PyObject")
        except ValueError as exc:
            raise BackendUnavailable("picamera2 could not be imported") from exc

    result, api = pi.check_picamera2(dataclasses.replace(healthy_pi(tmp_path), load_picamera2_api=load))
    assert (result.status, result.blocking, api) == (FAIL, True, None)
    assert "numpy ABI mismatch" in result.detail and "pip uninstall numpy" in result.detail


def test_the_numpy_abi_failure_is_named_even_when_it_escapes_the_loader_raw(tmp_path):
    def load():   # an older load_picamera2_api caught only ImportError
        raise ValueError("numpy.dtype size changed, may indicate binary incompatibility")

    result, _ = pi.check_picamera2(dataclasses.replace(healthy_pi(tmp_path), load_picamera2_api=load))
    assert result.status == FAIL and "numpy ABI mismatch" in result.detail


def test_a_backend_unavailable_reason_is_its_first_line(tmp_path):
    def load():
        raise BackendUnavailable("picamera2 is not installed: apt install python3-picamera2\n(more)")

    result, _ = pi.check_picamera2(dataclasses.replace(healthy_pi(tmp_path), load_picamera2_api=load))
    assert result.status == FAIL and result.detail == "picamera2 is not installed: apt install python3-picamera2"


# -- camera presence and mode -----------------------------------------------------------------------
@pytest.mark.parametrize("size, fps, status, words", [
    ((2304, 1296), 30, OK, "sensor mode 2304x1296@56.03"),           # exact
    ((1920, 1080), 30, OK, "scaled down by the ISP from sensor mode 2304x1296@56.03"),
    ((4608, 2592), 30, WARN, "upscaled from sensor mode 2304x1296@56.03"),
    ((1920, 1080), 200, FAIL, "no sensor mode reaches 200 fps (fastest 1536x864@120.13)"),
])
def test_camera_mode_is_matched_against_the_sensor_modes(tmp_path, size, fps, status, words):
    api, state = make_camera_api()
    config = PiBoardConfig(width=size[0], height=size[1], fps=fps)
    camera, mode = pi.check_camera(healthy_pi(tmp_path), api, config)
    assert camera.status == OK and camera.detail == "camera 0: imx708 (1 connected)"
    assert mode.status == status and words in mode.detail
    assert state.opened == state.closed == 1   # the camera is released for bwc run


def test_a_camera_number_that_is_not_connected_fails(tmp_path):
    api, state = make_camera_api()
    camera, mode = pi.check_camera(healthy_pi(tmp_path), api, PiBoardConfig(camera_num=1))
    assert camera.status == FAIL and "camera 1 is not connected (libcamera sees 0: imx708)" in camera.detail
    assert mode.status == WARN and state.opened == 0


def test_no_camera_at_all_names_the_cable(tmp_path):
    api, _ = make_camera_api(cameras=())
    camera, _ = pi.check_camera(healthy_pi(tmp_path), api, DEFAULT)
    assert camera.status == FAIL and "sees none" in camera.detail and "ribbon cable" in camera.detail


def test_a_camera_that_will_not_open_fails_naming_why(tmp_path):
    api, _ = make_camera_api(open_error=RuntimeError("Camera __init__ sequence did not complete."))
    camera, mode = pi.check_camera(healthy_pi(tmp_path), api, DEFAULT)
    assert camera.status == FAIL and "does not open (RuntimeError: Camera __init__" in camera.detail
    assert mode.status == WARN


def test_a_camera_without_raw_modes_is_a_warning(tmp_path):
    api, _ = make_camera_api(modes=[{"format": "MJPEG"}])
    _, mode = pi.check_camera(healthy_pi(tmp_path), api, DEFAULT)
    assert mode.status == WARN and "no raw sensor modes" in mode.detail


# -- encoder kind -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("model, libav, status, words", [
    ("Raspberry Pi 5 Model B Rev 1.0", True, OK, "libav software H.264 on Raspberry Pi 5"),
    ("Raspberry Pi 4 Model B Rev 1.5", False, OK, "V4L2 hardware H.264 on Raspberry Pi 4"),
    ("Raspberry Pi Zero 2 W Rev 1.0", False, OK, "V4L2 hardware H.264 on Raspberry Pi Zero 2 W"),
    ("Raspberry Pi Compute Module 5 Rev 1.0", False, FAIL, "the Pi 5 has no H.264 block"),
    ("Raspberry Pi 4 Model B Rev 1.5", True, WARN, "VC4 hardware encoder was not found"),
])
def test_encoder_kind_matches_the_board(tmp_path, model, libav, status, words):
    probe = healthy_pi(tmp_path)
    write(tmp_path, "/proc/device-tree/model", model + "\x00")
    api, _ = make_camera_api(libav=libav)
    result = pi.check_encoder(probe, api, DEFAULT)
    assert result.status == status and words in result.detail


def test_an_encoder_of_neither_kind_is_a_warning(tmp_path):
    api, _ = make_camera_api()
    api.H264Encoder = type("MysteryEncoder", (), {})
    result = pi.check_encoder(healthy_pi(tmp_path), api, DEFAULT)
    assert result.status == WARN and "(MysteryEncoder) is neither" in result.detail


# -- GPIO --------------------------------------------------------------------------------------------------
def test_every_configured_pin_is_claimed_and_released(tmp_path):
    factory = MockFactory()
    probe = dataclasses.replace(healthy_pi(tmp_path), load_pin_factory=lambda name: factory)
    config = PiBoardConfig(triggers={"holster": InputPinConfig(pin=24)})
    results = by_name(pi.check_gpio(probe, config, claim=True))
    assert results["gpio-factory"].status == OK and "'lgpio' loads (MockFactory)" in results["gpio-factory"].detail
    assert results["gpio-pins"].status == OK and results["gpio-pins"].detail == "all 6 configured pins can be claimed"
    DigitalOutputDevice(27, pin_factory=factory).close()   # released: the firmware can claim it next


def test_a_pin_held_by_another_program_fails_naming_it(tmp_path):
    factory = MockFactory()
    held = DigitalOutputDevice(27, pin_factory=factory)      # someone else has the red LED's line
    probe = dataclasses.replace(healthy_pi(tmp_path), load_pin_factory=lambda name: factory)
    result = by_name(pi.check_gpio(probe, DEFAULT, claim=True))["gpio-pins"]
    assert result.status == FAIL and result.detail.startswith("GPIO27 (led_record_pin) cannot be claimed: GPIOPinInUse")
    held.close()


def test_a_factory_that_does_not_load_fails_with_the_backends_reason(tmp_path):
    def load(name):
        raise BackendUnavailable(f"gpiozero pin factory {name!r} could not load: ModuleNotFoundError: No module named 'lgpio'")

    results = by_name(pi.check_gpio(dataclasses.replace(healthy_pi(tmp_path), load_pin_factory=load), DEFAULT, True))
    assert results["gpio-factory"].status == FAIL and "No module named 'lgpio'" in results["gpio-factory"].detail
    assert results["gpio-pins"].status == WARN


def test_the_real_loader_refuses_an_unknown_factory(tmp_path):
    from tools.doctor_checks import Probe
    probe = dataclasses.replace(healthy_pi(tmp_path), load_pin_factory=Probe().load_pin_factory)
    result = by_name(pi.check_gpio(probe, PiBoardConfig(pin_factory="nosuch"), True))["gpio-factory"]
    assert result.status == FAIL and "'nosuch' does not exist (known:" in result.detail


def test_lgpio_needs_a_writable_working_directory(tmp_path):
    probe = healthy_pi(tmp_path)
    assert pi.check_gpio_workdir(probe, DEFAULT).status == OK
    result = pi.check_gpio_workdir(dataclasses.replace(probe, environ={"LG_WD": str(tmp_path / "gone")}), DEFAULT)
    assert result.status == FAIL and "set LG_WD or the unit's WorkingDirectory=" in result.detail
    without = dataclasses.replace(probe, environ={}, cwd=lambda: str(tmp_path / "gone"))
    assert "the working directory" in pi.check_gpio_workdir(without, DEFAULT).detail
    assert pi.check_gpio_workdir(without, PiBoardConfig(pin_factory="native")).status == OK


@pytest.mark.parametrize("config_txt, config, status, words", [
    ("dtparam=i2s=on\n", PiBoardConfig(buzzer_pin=18), FAIL,
     "GPIO18 (buzzer_pin) is PCM_CLK, taken by I2S (dtparam=i2s=on in /boot/firmware/config.txt)"),
    ("dtoverlay=googlevoicehat-soundcard\n", PiBoardConfig(vibration_pin=20), FAIL,
     "GPIO20 (vibration_pin) is PCM_DIN, taken by I2S (dtoverlay=googlevoicehat-soundcard"),
    ("dtparam=audio=on,i2s=on  # the mic board\n", PiBoardConfig(), OK, "I2S on (dtparam=audio=on,i2s=on)"),
    ("#dtparam=i2s=on\n", PiBoardConfig(buzzer_pin=18), OK, "I2S not enabled"),
])
def test_pins_on_the_i2s_lines_conflict_only_when_i2s_is_on(tmp_path, config_txt, config, status, words):
    probe = healthy_pi(tmp_path)
    write(tmp_path, "/boot/firmware/config.txt", config_txt)
    result = by_name(pi.check_gpio_buses(probe, config))["gpio-i2s"]
    assert result.status == status and words in result.detail


@pytest.mark.parametrize("battery, status, words", [
    ("sysfs", FAIL, "GPIO2 (record_button) is I2C1 SDA, the fuel gauge's I2C bus (dtparam=i2c_arm=on"),
    ("none", WARN, "GPIO2 (record_button) is I2C1 SDA, owned by the I2C driver"),
])
def test_pins_on_the_i2c_lines_conflict_with_a_gauge(tmp_path, battery, status, words):
    probe = healthy_pi(tmp_path)
    write(tmp_path, "/boot/firmware/config.txt", "dtparam=i2c_arm=on\n")
    config = PiBoardConfig(record_button=InputPinConfig(pin=2), battery=battery)
    result = by_name(pi.check_gpio_buses(probe, config))["gpio-i2c"]
    assert result.status == status and words in result.detail
    assert by_name(pi.check_gpio_buses(probe, DEFAULT))["gpio-i2c"].status == OK


def test_an_older_image_keeps_config_txt_in_boot_and_none_is_a_warning(tmp_path):
    probe = healthy_pi(tmp_path)
    (tmp_path / "boot/firmware/config.txt").unlink()
    write(tmp_path, "/boot/config.txt", "dtparam=i2s=on\n")
    assert "in /boot/config.txt" in by_name(pi.check_gpio_buses(probe, PiBoardConfig(buzzer_pin=18)))["gpio-i2s"].detail
    (tmp_path / "boot/config.txt").unlink()
    assert {r.status for r in pi.check_gpio_buses(probe, DEFAULT)} == {WARN}


# -- audio (the real arecord and aplay) --------------------------------------------------------------------------
@pytest.fixture
def alsa_probe(tmp_path):
    for tool in ("arecord", "aplay"):
        assert shutil.which(tool), f"{tool} is missing: apt-get install alsa-utils"
    return dataclasses.replace(healthy_pi(tmp_path), run=Commands(), which=shutil.which)


def test_a_capture_device_that_records_and_a_listed_speaker_are_ok(alsa_probe):
    config = PiBoardConfig(alsa_mic_device="null", alsa_speaker_device="null")
    results = by_name(pi.check_audio(alsa_probe, config, capture=True))
    assert [results[n].status for n in ("audio-tools", "audio-capture", "audio-speaker")] == [OK, OK, OK]
    assert alsa_probe.run.calls[0][:5] == ["arecord", "-q", "-D", "null", "-d"]


def test_a_capture_device_that_does_not_exist_fails_with_alsas_reason(alsa_probe):
    config = PiBoardConfig(alsa_mic_device="nosuchmic", alsa_speaker_device="nosuchspeaker")
    results = by_name(pi.check_audio(alsa_probe, config, capture=True))
    capture, speaker = results["audio-capture"], results["audio-speaker"]
    assert capture.status == FAIL and capture.blocking
    assert "capture device 'nosuchmic' does not record: Unknown PCM nosuchmic" in capture.detail
    # The firmware records on without a speaker: broken, but not blocking.
    assert speaker.status == FAIL and not speaker.blocking and "'nosuchspeaker' is not listed" in speaker.detail


def test_a_capture_device_that_hangs_is_a_timeout_not_a_hang(tmp_path):
    probe = dataclasses.replace(healthy_pi(tmp_path), run=Commands(
        arecord=Ran(None, problem="arecord did not finish within 6 s")))
    result = by_name(pi.check_audio(probe, DEFAULT, capture=True))["audio-capture"]
    assert result.status == FAIL and "did not finish within 6 s" in result.detail


def test_missing_alsa_utils_says_what_to_install(tmp_path):
    probe = dataclasses.replace(healthy_pi(tmp_path), which=lambda tool: None)
    results = by_name(pi.check_audio(probe, DEFAULT, capture=True))
    assert results["audio-tools"].detail == "arecord and aplay not found: apt install alsa-utils"
    assert results["audio-capture"].status == WARN and results["audio-speaker"].status == WARN


def test_numbered_and_card_named_speakers_are_found(tmp_path):
    probe = dataclasses.replace(healthy_pi(tmp_path), run=Commands(
        aplay_L=Ran(0, "null\nhw:CARD=Headphones,DEV=0\n    bcm2835 Headphones\n"),
        aplay_l=Ran(0, "**** List of PLAYBACK Hardware Devices ****\ncard 0: Headphones [bcm2835 Headphones]\n")))
    for device, status in (("plughw:CARD=Headphones,DEV=0", OK), ("hw:0,0", OK), ("hw:1,0", FAIL)):
        result = by_name(pi.check_audio(probe, PiBoardConfig(alsa_speaker_device=device), True))["audio-speaker"]
        assert result.status == status, (device, result)


# -- battery -----------------------------------------------------------------------------------------------------
def test_a_fuel_gauge_is_read_through_the_backend(tmp_path):
    result = pi.check_battery(healthy_pi(tmp_path), DEFAULT)
    assert result.status == OK and result.detail == "87 %, 3.92 V, on battery (/sys/class/power_supply/battery)"


def test_a_missing_gauge_names_the_supplies_present(tmp_path):
    probe = healthy_pi(tmp_path)
    supply(tmp_path, "BAT0")
    result = pi.check_battery(probe, PiBoardConfig(battery_sysfs_dir="/sys/class/power_supply/max17048"))
    assert result.status == FAIL and "max17048 lacks capacity" in result.detail
    assert "present: BAT0, battery" in result.detail and str(tmp_path) not in result.detail


def test_a_gauge_that_answers_garbage_fails(tmp_path):
    probe = healthy_pi(tmp_path)
    supply(tmp_path, capacity="ENODATA")
    result = pi.check_battery(probe, DEFAULT)
    assert result.status == FAIL and "expected an integer" in result.detail


def test_no_battery_is_reported_as_warnings_off(tmp_path):
    result = pi.check_battery(healthy_pi(tmp_path), PiBoardConfig(battery="none"))
    assert (result.status, result.blocking) == (WARN, False) and "battery warnings off" in result.detail
