"""The Pi microphone and speaker against real ALSA: the system's libasound, real
arecord and aplay, PCMs built from ALSA's `file` and `null` plugins (alsa_env.py).
No sound hardware; nothing here may skip (CI: apt-get install -y alsa-utils).
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from fractions import Fraction

import av
import numpy as np
import pytest

from hal.pi import BackendUnavailable
from hal.pi.audio import PiMicrophone, PiSpeaker
from tests.pi.alsa_env import (RATE_HZ, TONE_AMPLITUDE, TONE_HZ, PacedClock, children_named, make_alsa_env,
                               require_alsa_utils, tone)

AAC_LC_48K_MONO_ASC = bytes([0x11, 0x88])  # AudioSpecificConfig: AAC-LC, 48 kHz, mono
FRAME_SAMPLES = 1024
WAIT_S = 10.0  # upper bound for things that take milliseconds; only a broken build waits it out


@pytest.fixture
def alsa(tmp_path, monkeypatch):
    return make_alsa_env(tmp_path, monkeypatch.setenv)


@pytest.fixture
def new_mic():
    """PiMicrophone(...), stopped at teardown even when the test failed half-way."""
    made = []

    def make(*args, **kwargs) -> PiMicrophone:
        made.append(PiMicrophone(*args, **kwargs))
        return made[-1]
    yield make
    for microphone in made:
        microphone.stop()


class Collector:
    """A packet sink that lets a test wait for the n-th packet."""

    def __init__(self) -> None:
        self.packets: list = []
        self._cond = threading.Condition()

    def __call__(self, packet) -> None:
        with self._cond:
            self.packets.append(packet)
            self._cond.notify_all()

    def wait_for(self, count: int) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.packets) >= count, timeout=WAIT_S), \
                f"only {len(self.packets)} of {count} packets arrived"


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.005)


def mic_thread_alive() -> bool:
    return any(t.name == "openbwc-mic" and t.is_alive() for t in threading.enumerate())


def decode_from_first_packet(packets) -> np.ndarray:
    """The AAC stream decoded with PyAV, from sample 0 (the first packet is the encoder's priming)."""
    decoder = av.CodecContext.create("aac", "r")
    decoder.extradata = AAC_LC_48K_MONO_ASC
    pieces = []
    for index, packet in enumerate(packets):
        encoded = av.Packet(packet.data)
        encoded.pts, encoded.time_base = (index - 1) * FRAME_SAMPLES, Fraction(1, RATE_HZ)
        pieces += [frame.to_ndarray().reshape(-1) for frame in decoder.decode(encoded) if frame.pts >= 0]
    return np.concatenate(pieces)


# ---- issue 9 item 2: why the microphone does not read ALSA through PyAV ----------------

AV_OPEN = """
import sys, av
try:
    av.open(sys.argv[1], format="alsa")
    print("opened")
except OSError as exc:
    print("failed:", exc)
"""


def run_av_open(device: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ALSA_CONFIG")}
    return subprocess.run([sys.executable, "-c", AV_OPEN, device], env={**clean, **env},
                          capture_output=True, text=True, timeout=60)


def test_the_pypi_av_wheel_opens_no_alsa_device_and_cannot_load_system_plugins(tmp_path):
    # Its bundled libasound looks for alsa.conf in the wheel's build tree: even `null` is unknown.
    bare = run_av_open("null")
    assert bare.stdout.startswith("failed"), (
        f"av {av.__version__} now opens ALSA by itself: the reason hal/pi/alsa_capture.py gives "
        "for capturing through arecord is gone, revisit it")
    assert "Cannot access file" in bare.stderr and "alsa.conf" in bare.stderr
    assert "Unknown PCM null" in bare.stderr
    # Pointing it at the system's configuration makes built-in PCMs open...
    assert run_av_open("null", ALSA_CONFIG_DIR="/usr/share/alsa").stdout.strip() == "opened"
    # ...but plugins (PipeWire's `default` on Pi OS desktop) are still sought in the build tree.
    conf = tmp_path / "pw.conf"
    conf.write_text("pcm.pw { type pipewire }\n")
    plugin = run_av_open("pw", ALSA_CONFIG_DIR="/usr/share/alsa",
                         ALSA_CONFIG_PATH=f"/usr/share/alsa/alsa.conf:{conf}")
    assert plugin.stdout.startswith("failed")
    sought = plugin.stderr.split("libasound_module_pcm_pipewire.so (", 1)[1].split(":", 1)[0]
    assert not sought.startswith("/usr/lib"), sought


# ---- the microphone --------------------------------------------------------------------

def test_microphone_records_the_tone_with_timestamps_one_aac_frame_apart(alsa, new_mic):
    clock = PacedClock(step_us=10_000)
    microphone = new_mic(alsa.tone_pcm, clock)
    sink = Collector()
    microphone.start(sink)
    sink.wait_for(48)           # about one second of audio
    microphone.stop()
    packets = sink.packets
    assert all(p.kind == "audio" and p.keyframe and p.duration_us == 21_333 for p in packets)
    times = [p.timestamp_us for p in packets]
    # The first 10 ms block is stamped when its read returns: capture began one block earlier.
    assert times[1] == 1_000_000_000
    assert all(later - earlier in (21_333, 21_334) for earlier, later in zip(times, times[1:]))
    assert times[-1] - times[1] == round((len(times) - 2) * FRAME_SAMPLES * 1_000_000 / RATE_HZ)

    decoded = decode_from_first_packet(packets)
    steady = decoded[2_048:RATE_HZ]  # past the encoder's first frames
    spectrum = np.abs(np.fft.rfft(steady * np.hanning(len(steady))))
    assert abs(np.argmax(spectrum) * RATE_HZ / len(steady) - TONE_HZ) < 2
    rms_db = 20 * np.log10(np.sqrt(np.mean(steady ** 2)))
    assert abs(rms_db - 20 * np.log10(TONE_AMPLITUDE / 32768 / np.sqrt(2))) < 0.5
    # Sample-aligned with the source file: decoded sample n is the file's sample n.
    source = tone(RATE_HZ)[2_048:] / 32768
    assert np.corrcoef(steady, source)[0, 1] > 0.99


def test_a_device_that_does_not_exist_is_one_line_naming_it_and_alsas_reason(alsa, new_mic):
    microphone = new_mic("openbwc_no_such_pcm", PacedClock())
    with pytest.raises(BackendUnavailable) as raised:
        microphone.start(lambda packet: None)
    message = str(raised.value)
    assert "\n" not in message
    assert message == ("ALSA capture device 'openbwc_no_such_pcm' did not open: Unknown PCM openbwc_no_such_pcm "
                       "(audio open error: No such file or directory), arecord exited 1")
    assert not children_named("arecord") and not mic_thread_alive()
    microphone.stop()  # nothing started: a no-op


def test_a_device_that_opens_but_sends_nothing_fails_start_within_its_bound(alsa, new_mic):
    hold_open = os.open(alsa.mic_fifo, os.O_RDWR | os.O_NONBLOCK)  # a writer that never writes
    try:
        microphone = new_mic(alsa.fifo_mic_pcm, PacedClock(), open_timeout_s=0.3)
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match=r"^ALSA capture device 'openbwc_fifo_mic' did not open: "
                                                     r"no audio within 0.3 s of starting arecord$"):
            microphone.start(lambda packet: None)
        assert time.monotonic() - started < 1.5
        assert not children_named("arecord")
    finally:
        os.close(hold_open)


def test_stop_returns_in_bounded_time_when_capture_is_wedged(alsa, new_mic):
    feed = os.open(alsa.mic_fifo, os.O_RDWR | os.O_NONBLOCK)
    try:
        os.write(feed, tone(4_800).astype("<i2").tobytes())  # 100 ms, then the device goes quiet
        microphone = new_mic(alsa.fifo_mic_pcm, PacedClock(), stop_timeout_s=0.5)
        sink = Collector()
        microphone.start(sink)
        sink.wait_for(3)                 # what the encoder gives for four whole frames (one lags)
        assert children_named("arecord") and mic_thread_alive()
        started = time.monotonic()
        microphone.stop()
        assert time.monotonic() - started < 1.2
        assert not children_named("arecord") and not mic_thread_alive()
        # A clean stop flushes what was captured: 4800 samples, all of them encoded.
        assert len(sink.packets) == 1 + -(-4_800 // FRAME_SAMPLES)   # priming + five frames
    finally:
        os.close(feed)


def test_a_killed_arecord_ends_capture_in_one_line_and_a_restart_resumes(alsa, new_mic, caplog):
    caplog.set_level(logging.INFO)
    microphone = new_mic(alsa.tone_pcm, PacedClock())
    sink = Collector()
    microphone.start(sink)
    sink.wait_for(5)
    (pid,) = children_named("arecord")
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not mic_thread_alive(), "the capture thread ended")
    delivered = len(sink.packets)
    lost = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in lost] == [
        "microphone 'openbwc_tone' lost: arecord killed by SIGKILL; "
        "no audio until it is restarted"]
    assert lost[0].exc_info is None
    assert not children_named("arecord")
    assert len(sink.packets) == delivered   # the thread is gone: nothing more can arrive

    microphone.stop()                        # what the firmware's monitor does on mic_lost
    microphone.start(sink)
    sink.wait_for(delivered + 5)
    assert sink.packets[delivered].timestamp_us > sink.packets[delivered - 1].timestamp_us
    microphone.stop()
    assert not children_named("arecord") and not mic_thread_alive()


# ---- the speaker -------------------------------------------------------------------------

def test_speaker_sends_exactly_the_clip_to_the_alsa_device(alsa):
    clip = np.concatenate((tone(1_000, 440.0), np.array([32767, -32768, 0, 1, -1], np.int16)))
    speaker = PiSpeaker(alsa.speaker_pcm)
    speaker.play(clip, 16_000)
    speaker.close()
    assert speaker.last_error is None and not speaker.is_playing()
    played = np.frombuffer(alsa.speaker_out.read_bytes(), "<i2")
    # aplay pads its last period with silence; ALSA received the clip, then only silence.
    assert np.array_equal(played[:len(clip)], clip)
    assert not played[len(clip):].any()


def test_speaker_reports_a_missing_device_in_one_line_and_tries_every_clip(alsa, caplog):
    speaker = PiSpeaker("openbwc_no_such_pcm")
    speaker.play(np.zeros(10, np.int16), 48_000)
    speaker.play(np.zeros(10, np.int16), 48_000)
    speaker.close()
    assert speaker.last_error == ("aplay exited 1: Unknown PCM openbwc_no_such_pcm "
                                  "(audio open error: No such file or directory)")
    assert sum("aplay exited 1" in r.getMessage() for r in caplog.records) == 2


def test_a_wedged_aplay_is_killed(alsa):
    speaker = PiSpeaker(alsa.wedged_speaker_pcm, stall_grace_s=0.3)
    speaker.play(np.zeros(480, np.int16), 48_000)     # 10 ms clip: killed 0.31 s after it started
    wait_until(lambda: not speaker.is_playing(), "the wedged clip was given up")
    assert speaker.last_error == "aplay still running 0.3 s after starting a clip; killed"
    assert not children_named("aplay")
    speaker.close()


def test_the_machine_has_alsa_utils():
    require_alsa_utils()  # fails with the apt line, rather than letting the tests above skip
