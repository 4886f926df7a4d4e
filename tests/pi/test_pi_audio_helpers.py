"""The pure parts of the Pi audio backend, and the speaker through a stand-in `aplay`.

ALSA itself cannot be exercised here; everything between an ALSA read and a
MediaPacket (timestamps, AAC encoding) is, with real PyAV codecs.
"""
from __future__ import annotations

import os
import sys
from fractions import Fraction

import av
import numpy as np
import pytest

from hal.media import AudioFormat
from hal.pi import BackendUnavailable
from hal.pi.audio import AacEncoder, MicPipeline, PiMicrophone, PiSpeaker, SampleClock
from simulator.clock import VirtualClock

RATE_HZ = 48_000
PERIOD = 480  # samples per ALSA read (10 ms), deliberately not a multiple of 1024
FRAME_US = 21_333  # one AAC frame, 1024 samples at 48 kHz
# AudioSpecificConfig of AAC-LC, 48 kHz, mono: what a muxer derives from AudioFormat alone.
AAC_LC_48K_MONO_ASC = bytes([0x11, 0x88])


def tone(sample_count: int, frequency_hz: float = 1_000.0, start: int = 0) -> np.ndarray:
    t = np.arange(start, start + sample_count) / RATE_HZ
    return (np.sin(2 * np.pi * frequency_hz * t) * 12_000).astype(np.int16)


def decode(packets: list[tuple[int, bytes]]) -> dict[int, np.ndarray]:
    """Decode raw AAC frames; returns first-sample index -> samples, as FFmpeg numbers them."""
    decoder = av.CodecContext.create("aac", "r")
    decoder.extradata = AAC_LC_48K_MONO_ASC
    decoded = {}
    for index, data in packets:
        packet = av.Packet(data)
        packet.pts, packet.time_base = index, Fraction(1, RATE_HZ)
        for frame in decoder.decode(packet):
            decoded[frame.pts] = frame.to_ndarray().reshape(-1)
    return decoded


# ---- SampleClock ----------------------------------------------------------------

def test_first_read_anchors_the_first_sample_one_buffer_before_the_read_returned():
    clock = SampleClock(RATE_HZ)
    clock.on_capture(PERIOD, read_done_us=5_010_000)
    assert clock.timestamp_us(0) == 5_000_000
    assert clock.timestamp_us(RATE_HZ) == 6_000_000
    assert clock.timestamp_us(-1024) == 5_000_000 - FRAME_US  # encoder priming extrapolates back


def test_read_jitter_within_the_threshold_does_not_move_timestamps():
    clock = SampleClock(RATE_HZ, resync_threshold_us=20_000)
    clock.on_capture(PERIOD, 1_010_000)
    for i, jitter_us in enumerate([3_000, -2_000, 15_000, 0], start=2):
        clock.on_capture(PERIOD, 1_000_000 + i * 10_000 + jitter_us)
    assert clock.resync_count == 0
    assert clock.timestamp_us(4 * PERIOD) == 1_040_000


def test_an_overrun_gap_re_anchors_forward():
    clock = SampleClock(RATE_HZ, resync_threshold_us=20_000)
    clock.on_capture(PERIOD, 1_010_000)
    clock.on_capture(PERIOD, 1_020_000)
    clock.on_capture(PERIOD, 1_130_000)           # 100 ms of samples lost in an xrun
    assert clock.resync_count == 1
    assert clock.timestamp_us(2 * PERIOD) == 1_120_000
    assert clock.timestamp_us(PERIOD) == 1_010_000  # earlier samples keep their time


def test_re_anchoring_backwards_never_makes_time_run_backwards():
    clock = SampleClock(RATE_HZ, resync_threshold_us=20_000)
    clock.on_capture(PERIOD, 1_010_000)
    clock.on_capture(PERIOD, 1_020_000)
    clock.on_capture(PERIOD, 990_000)             # the clock says "earlier": clamp, don't rewind
    times = [clock.timestamp_us(i) for i in range(0, 3 * PERIOD)]
    assert all(later > earlier for earlier, later in zip(times, times[1:]))
    assert clock.resync_count == 1


# ---- AacEncoder -----------------------------------------------------------------

def test_uneven_reads_become_whole_aac_frames_numbered_like_ffmpeg():
    encoder = AacEncoder(AudioFormat(sample_rate_hz=RATE_HZ, channels=1, bitrate_bps=64_000))
    signal = tone(RATE_HZ)  # one second
    packets = []
    for start in range(0, len(signal), PERIOD):
        packets += encoder.encode(signal[start:start + PERIOD])
    packets += encoder.flush()
    indices = [index for index, _ in packets]
    assert indices[0] == -1024                      # priming
    assert indices == list(range(-1024, RATE_HZ, 1024))
    assert all(data and data[:2] != b"\xff\xf1" for _, data in packets)  # raw AAC, no ADTS header


def test_encoded_audio_decodes_with_the_onset_at_its_own_sample_index():
    # Silence, then a tone from sample 9600 (200 ms): the decoded onset must be
    # at index 9600 too, which is what makes index -> timestamp mapping right.
    encoder = AacEncoder(AudioFormat(sample_rate_hz=RATE_HZ))
    signal = np.concatenate((np.zeros(9_600, np.int16), tone(14_400, start=9_600)))
    packets = encoder.encode(signal) + encoder.flush()
    decoded = decode(packets)
    samples = np.concatenate([decoded[index] for index in sorted(decoded) if index >= 0])
    onset = int(np.argmax(np.abs(samples) > 0.05))
    assert abs(onset - 9_600) < 64   # MDCT pre-echo blurs the edge by a few samples
    spectrum = np.abs(np.fft.rfft(samples[12_000:20_000]))
    assert abs(np.argmax(spectrum) * RATE_HZ / 8_000 - 1_000) < 10


def test_encoder_refuses_anything_but_mono_int16():
    encoder = AacEncoder(AudioFormat())
    with pytest.raises(ValueError, match="1-D int16"):
        encoder.encode(np.zeros(100, np.float32))
    with pytest.raises(ValueError, match="mono"):
        AacEncoder(AudioFormat(channels=2))


# ---- MicPipeline ------------------------------------------------------------------

def test_pipeline_emits_timestamped_aac_packets():
    pipeline = MicPipeline(AudioFormat(sample_rate_hz=RATE_HZ))
    signal = tone(RATE_HZ // 2)
    packets = []
    for n, start in enumerate(range(0, len(signal), PERIOD), start=1):
        packets += pipeline.feed(signal[start:start + PERIOD], read_done_us=2_000_000 + n * 10_000)
    packets += pipeline.flush()
    assert all(p.kind == "audio" and p.keyframe and p.duration_us == FRAME_US for p in packets)
    assert packets[0].timestamp_us == 2_000_000 - FRAME_US       # priming frame
    assert packets[1].timestamp_us == 2_000_000
    assert [p.timestamp_us for p in packets] == [2_000_000 + round(i * 1024 * 1_000_000 / RATE_HZ)
                                                 for i in range(-1, len(packets) - 1)]
    assert len(decode([(i, p.data) for i, p in zip(range(-1024, 10**9, 1024), packets)])) == len(packets)


# ---- the ALSA edges ----------------------------------------------------------------

def test_microphone_names_a_device_that_does_not_open():
    microphone = PiMicrophone("hw:CARD=NoSuchCard,DEV=0", VirtualClock())
    assert microphone.audio_format == AudioFormat(sample_rate_hz=48_000, channels=1, bitrate_bps=64_000)
    with pytest.raises(BackendUnavailable, match="ALSA capture device 'hw:CARD=NoSuchCard,DEV=0' did not open"):
        microphone.start(lambda packet: None)


@pytest.fixture
def fake_aplay(tmp_path):
    """An executable that behaves like `aplay` reading stdin: records argv and bytes, waits for 'go'."""
    script = tmp_path / "aplay"
    script.write_text(f"""#!{sys.executable}
import os, sys, time
out = {str(tmp_path)!r}
while not os.path.exists(os.path.join(out, "go")):
    time.sleep(0.005)
data = sys.stdin.buffer.read()
n = len(os.listdir(out))
open(os.path.join(out, f"clip{{n}}.raw"), "wb").write(data)
open(os.path.join(out, f"clip{{n}}.argv"), "w").write("\\n".join(sys.argv[1:]))
if os.path.exists(os.path.join(out, "fail")):
    sys.stderr.write("aplay: main:831: audio open error: Device or resource busy\\n")
    sys.exit(1)
""")
    script.chmod(0o755)
    return tmp_path


def test_speaker_pipes_little_endian_s16_mono_to_aplay(fake_aplay):
    speaker = PiSpeaker("plughw:CARD=Headphones", aplay_path=str(fake_aplay / "aplay"))
    samples = np.array([0, 1, -1, 32767, -32768], dtype=np.int16)
    speaker.play(samples, 16_000)
    assert speaker.is_playing()
    (fake_aplay / "go").touch()
    speaker.close()                      # waits for queued clips
    assert not speaker.is_playing()
    raw = next(p for p in fake_aplay.iterdir() if p.suffix == ".raw").read_bytes()
    assert raw == samples.astype("<i2").tobytes()
    argv = next(p for p in fake_aplay.iterdir() if p.suffix == ".argv").read_text().split("\n")
    assert argv == ["-q", "-D", "plughw:CARD=Headphones", "-t", "raw", "-f", "S16_LE", "-c", "1",
                    "-r", "16000"]
    assert speaker.last_error is None


def test_speaker_reports_aplay_failure_and_keeps_working(fake_aplay, caplog):
    (fake_aplay / "fail").touch()
    (fake_aplay / "go").touch()
    speaker = PiSpeaker("default", aplay_path=str(fake_aplay / "aplay"))
    speaker.play(np.zeros(10, np.int16), 48_000)
    speaker.play(np.zeros(10, np.int16), 48_000)
    speaker.close()
    assert "Device or resource busy" in speaker.last_error
    assert sum("aplay exited 1" in r.message for r in caplog.records) == 2   # both clips were tried


def test_speaker_refuses_bad_samples_and_a_missing_aplay(fake_aplay, tmp_path):
    speaker = PiSpeaker("default", aplay_path=str(fake_aplay / "aplay"))
    with pytest.raises(ValueError, match="1-D int16"):
        speaker.play(np.zeros(10, np.float64), 48_000)
    speaker.close()
    with pytest.raises(BackendUnavailable, match="apt install alsa-utils"):
        PiSpeaker("default", aplay_path=os.path.join(str(tmp_path), "no-aplay-here"))
