"""The pure parts of the Pi audio backend: everything between an ALSA read and a
MediaPacket (timestamps, AAC encoding, with real PyAV codecs) and the reading of
ALSA's error text. The ALSA edges themselves run against real ALSA in
test_pi_alsa.py.
"""
from __future__ import annotations

import os
from fractions import Fraction

import av
import numpy as np
import pytest

from hal.media import AudioFormat
from hal.pi import BackendUnavailable
from hal.pi.alsa_capture import alsa_reason
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


# ---- ALSA's words, one line -------------------------------------------------------

def test_alsa_reason_puts_the_root_cause_first_in_one_line():
    # What arecord 1.2.8 prints for `-D default` on a machine without a sound card.
    stderr = """ALSA lib confmisc.c:855:(parse_card) cannot find card '0'
ALSA lib conf.c:5180:(_snd_config_evaluate) function snd_func_card_inum returned error: No such file or directory
ALSA lib pcm.c:2666:(snd_pcm_open_noupdate) Unknown PCM default
arecord: main:831: audio open error: No such file or directory
"""
    assert alsa_reason(stderr) == "cannot find card '0' (audio open error: No such file or directory)"
    assert alsa_reason("aplay: main:831: audio open error: Device or resource busy\n") == \
        "audio open error: Device or resource busy"
    assert alsa_reason("") == "no message from ALSA"


# ---- the alsa-utils the backends need ------------------------------------------------

def test_speaker_refuses_bad_samples():
    speaker = PiSpeaker("default")
    with pytest.raises(ValueError, match="1-D int16"):
        speaker.play(np.zeros(10, np.float64), 48_000)
    with pytest.raises(ValueError, match="positive"):
        speaker.play(np.zeros(10, np.int16), 0)
    speaker.close()


def test_missing_alsa_utils_is_one_line_with_the_install_advice(tmp_path):
    nowhere = os.path.join(str(tmp_path), "not-installed")
    with pytest.raises(BackendUnavailable, match=r"the Pi speaker needs alsa-utils \(apt install alsa-utils\)"):
        PiSpeaker("default", aplay_path=nowhere)
    with pytest.raises(BackendUnavailable, match=r"the Pi microphone needs alsa-utils \(apt install alsa-utils\)"):
        PiMicrophone("default", VirtualClock(), arecord_path=nowhere)
