"""Simulated audio: the mic delivers real AAC on a sample-accurate schedule and hears the speaker."""
from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from hal.media import AudioFormat, MediaPacket
from simulator.audio import BLOCK_SAMPLES, SimAir, SimMicrophone, SimSpeaker
from simulator.clock import VirtualClock

SR = 48_000


def tone(freq_hz: float, seconds: float, amplitude: float = 0.5, sample_rate_hz: int = SR) -> np.ndarray:
    t = np.arange(round(seconds * sample_rate_hz)) / sample_rate_hz
    return np.round(amplitude * 32767 * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16)


def rig(**mic_kwargs):
    clock = VirtualClock()
    air = SimAir(SR)
    return clock, air, SimMicrophone(clock, air, AudioFormat(), **mic_kwargs), SimSpeaker(clock, air)


def decode_aac(packets: list[MediaPacket]) -> np.ndarray:
    """Decode raw AAC frames; sample i of the result belongs to the first packet's timestamp + i/SR."""
    decoder = av.CodecContext.create("aac", "r")
    decoder.sample_rate, decoder.layout = SR, "mono"
    out = []
    for packet in packets:
        for frame in decoder.decode(av.Packet(packet.data)):
            out.append(frame.to_ndarray()[0])
    for frame in decoder.decode(None):
        out.append(frame.to_ndarray()[0])
    return np.concatenate(out)


def level_at(samples: np.ndarray, freq_hz: float, window: int = 480) -> np.ndarray:
    """Amplitude of `freq_hz` in consecutive 10 ms windows (FFT of each window)."""
    n = len(samples) // window
    spectra = np.abs(np.fft.rfft(samples[: n * window].reshape(n, window) * np.hanning(window), axis=1))
    bin_ = round(freq_hz * window / SR)
    return spectra[:, bin_] * 2 / np.hanning(window).sum()


def test_packets_are_timed_sample_accurately_including_priming():
    clock, air, mic, _ = rig()
    t0 = clock.monotonic_us()
    got = []
    mic.start(lambda p: got.append((clock.monotonic_us(), p)))
    clock.advance(1_000_000)
    packets = [p for _, p in got]
    # 46 blocks end within 1 s; the first only primes the encoder, each later one
    # releases the packet of the block before it (pts -1024 first: AAC priming).
    assert len(packets) == 45
    assert [p.timestamp_us for p in packets] == [t0 + round(pts * 1_000_000 / SR) for pts in range(-1024, 44 * 1024, 1024)]
    assert all(p.kind == "audio" and p.keyframe and p.duration_us == 21_333 for p in packets)
    # Block k is captured when its last sample has happened: t0 + (k+1) * 1024 samples.
    delivery = [when for when, _ in got]
    assert delivery == [t0 + round((k + 1) * BLOCK_SAMPLES * 1_000_000 / SR) for k in range(1, 46)]


def test_quiet_test_tone_is_1khz_at_minus_30_dbfs():
    clock, air, mic, _ = rig()
    packets = []
    mic.start(packets.append)
    clock.advance(1_000_000)
    pcm = decode_aac(packets)[4096:]  # past the priming and the encoder's ramp-up
    assert level_at(pcm, 1000.0).mean() == pytest.approx(10 ** (-30 / 20), rel=0.1)
    assert level_at(pcm, 2000.0).mean() < 10 ** (-60 / 20)
    heard = air.heard(clock.monotonic_us() - 500_000, clock.monotonic_us() - 100_000)
    assert np.abs(heard).max() == pytest.approx(32767 * 10 ** (-30 / 20), abs=2)


def test_mic_hears_the_speaker_at_the_right_time_through_aac():
    clock, air, mic, speaker = rig()
    t0 = clock.monotonic_us()
    packets = []
    mic.start(packets.append)
    clock.wait_until(t0 + 500_000)
    speaker.play(tone(2000.0, 0.3), SR)
    clock.wait_until(t0 + 1_500_000)

    pcm = decode_aac(packets)
    assert packets[0].timestamp_us == t0 - round(1024 * 1_000_000 / SR)
    levels = level_at(pcm, 2000.0)  # 10 ms windows starting at packets[0].timestamp_us
    window_start_us = packets[0].timestamp_us + np.arange(len(levels)) * 10_000
    loud = window_start_us[levels > 0.1]
    # Full-scale 0.5 tone times the air's 0.5 coupling: about 0.25 at the mic (AAC
    # wobbles the level a little around the attack, hence the median).
    assert np.median(levels[levels > 0.1]) == pytest.approx(0.25, rel=0.05)
    # The burst is 500..800 ms after t0; with 10 ms windows its edges are found to
    # within one window (a 21 ms error would mean a whole AAC frame of A/V offset).
    assert abs(loud.min() - (t0 + 500_000)) <= 10_000
    assert abs(loud.max() + 10_000 - (t0 + 800_000)) <= 10_000
    assert np.all(np.diff(loud) == 10_000)  # one continuous burst
    assert level_at(pcm, 1000.0)[levels > 0.1].mean() == pytest.approx(0.0316, rel=0.2)  # tone still there


def test_heard_is_the_exact_mix_sample_for_sample():
    clock, air, mic, speaker = rig(tone_dbfs=None)
    t0 = clock.monotonic_us()
    mic.start(lambda p: None)
    start_us = t0 + 123_457  # mid-block, on no particular sample boundary
    clock.wait_until(start_us)
    cue = (np.arange(-4800, 4800, 1, dtype=np.int32) * 6).astype(np.int16)  # a 0.2 s ramp
    speaker.play(cue, SR)
    clock.wait_until(t0 + 600_000)
    first = air.sample_index(start_us)
    heard = air.heard(air.time_us(first - 10), air.time_us(first + len(cue) + 10))
    expected = np.zeros(len(cue) + 20, dtype=np.int16)
    expected[10:-10] = np.round(cue.astype(np.float64) / 32768 * 0.5 * 32767).astype(np.int16)
    assert np.array_equal(heard, expected)


def test_speaker_is_playing_until_its_samples_run_out_and_queues():
    clock, air, _, speaker = rig()
    assert not speaker.is_playing()
    start = clock.monotonic_us()
    speaker.play(tone(440.0, 0.1), SR)
    speaker.play(tone(880.0, 0.1), SR)  # queued behind the first
    assert speaker.is_playing()
    clock.wait_until(start + 199_000)
    assert speaker.is_playing()
    clock.wait_until(start + 200_000)
    assert not speaker.is_playing()
    assert [t for t, _, _ in speaker.history] == [start, start + 100_000]


def test_speaker_resamples_other_rates():
    clock, air, _, speaker = rig()
    start = clock.monotonic_us()
    speaker.play(tone(500.0, 1.0, sample_rate_hz=16_000), 16_000)
    assert speaker.history == [(start, SR, None)]
    clock.wait_until(start + 999_000)
    assert speaker.is_playing()
    clock.wait_until(start + 1_000_000)
    assert not speaker.is_playing()
    mixed = air.mix(air.sample_index(start), SR)
    assert level_at(mixed, 500.0)[5:-5].mean() == pytest.approx(0.25, rel=0.05)


def test_speaker_rejects_non_int16():
    _, _, _, speaker = rig()
    with pytest.raises(TypeError):
        speaker.play(np.zeros(100, np.float32), SR)
    with pytest.raises(TypeError):
        speaker.play(np.zeros((100, 2), np.int16), SR)


def test_stop_ends_delivery_and_cancels_the_timer():
    clock, air, mic, _ = rig()
    got = []
    mic.start(got.append)
    clock.advance(100_000)
    mic.stop()
    mic.stop()
    count = len(got)
    clock.advance(1_000_000)
    assert len(got) == count and clock.pending_timers() == 0
    mic.start(got.append)  # a stopped microphone can start again
    with pytest.raises(RuntimeError):
        mic.start(got.append)


def test_mono_aac_only():
    clock = VirtualClock()
    with pytest.raises(ValueError):
        SimMicrophone(clock, SimAir(SR), AudioFormat(channels=2))
    with pytest.raises(ValueError):
        SimMicrophone(clock, SimAir(44_100), AudioFormat())


def test_aac_stream_is_standard_lc_that_a_container_accepts(tmp_path):
    """The packets mux into an MP4 with the encoder's AudioSpecificConfig and play back."""
    clock, air, mic, _ = rig()
    packets = []
    mic.start(packets.append)
    clock.advance(500_000)
    path = tmp_path / "a.m4a"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=SR)
        stream.layout = "mono"
        stream.codec_context.extradata = bytes.fromhex("1188")  # AAC-LC, 48 kHz, mono
        stream.time_base = Fraction(1, SR)
        for i, p in enumerate(packets):
            packet = av.Packet(p.data)
            packet.pts = packet.dts = (i - 1) * 1024
            packet.time_base = Fraction(1, SR)
            packet.stream = stream
            container.mux(packet)
    with av.open(str(path)) as container:
        assert container.streams.audio[0].codec_context.name == "aac"
        decoded = sum(f.samples for f in container.decode(audio=0))
    assert decoded >= (len(packets) - 1) * 1024
