"""--source VIDEO: the camera films the file at its own speed, letterboxed, and the room
hears the file's soundtrack (simulator/source_frames.py, simulator/source_audio.py)."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hal.media import AudioFormat, VideoFormat
from simulator.audio import SimAir, SimMicrophone, SimSpeaker
from simulator.camera import SimCamera, SourceVideoError
from simulator.clock import VirtualClock
from simulator.pattern import read_frame
from simulator.source_audio import SourceAudio, pass_containing, pass_start_index
from simulator.source_frames import SourceFrames, _Layout, loop_period
from sim_source_clips import (
    best_lag, chirp, read_clip_frame, resample_linear, write_clip,
)

W, H = 320, 180
FMT = VideoFormat(width=W, height=H, fps=30, keyframe_interval_s=1.0, bitrate_bps=1_000_000)
AIR_HZ = 48_000


def film(camera: SimCamera, clock: VirtualClock, duration_us: int) -> list[tuple[int, np.ndarray]]:
    """(capture time - start, picture before encoding) of every frame in `duration_us`."""
    t0 = clock.monotonic_us()
    got = []
    camera.start(lambda packet: got.append((packet.timestamp_us - t0, camera.last_picture.copy())))
    clock.advance(duration_us)
    return got


def expected_index(t_us: int, starts_s: list[Fraction], period_s: Fraction) -> int:
    """The frame whose presentation interval holds source time t (looping on the period)."""
    s = Fraction(t_us, 1_000_000) % period_s
    return max(i for i, start in enumerate(starts_s) if start <= s)


# -- time mapping ---------------------------------------------------------------------

@pytest.mark.parametrize("source_fps", [25, 60])
def test_a_clip_plays_at_its_own_speed_and_loops_seamlessly(tmp_path, source_fps):
    frames = 2 * source_fps   # a 2 s clip
    path = tmp_path / f"clip{source_fps}.mp4"
    write_clip(path, list(range(frames)), Fraction(1, source_fps), rate=source_fps)
    origin_s, period_s = loop_period(str(path))
    assert (origin_s, period_s) == (0, 2)

    clock = VirtualClock()
    camera = SimCamera(clock, FMT, source_path=str(path))
    shots = film(camera, clock, 5_000_000 - 1)   # 150 camera frames, two and a half loops
    shown = [read_clip_frame(p, H) for _, p in shots]
    starts = [Fraction(i, source_fps) for i in range(frames)]
    assert shown == [expected_index(t, starts, period_s) for t, _ in shots]
    # 1.0x: one second of camera time advances the clip by one second of frames.
    assert shown[30] == source_fps and shown[45] == int(1.5 * source_fps)
    steps = {b - a for a, b in zip(shown[:59], shown[1:60])}
    if source_fps == 25:
        assert sorted(set(shown[:30])) == list(range(25)) and steps == {0, 1}   # every frame, some twice
    else:
        assert len(set(shown[:30])) == 30 and steps == {1, 2, 3}   # about every other one dropped
    # Across the loop: the last frame, then the first, each for its own interval.
    loop_at = next(i for i in range(1, len(shown)) if shown[i] < shown[i - 1])
    assert shots[loop_at][0] == 2_000_000 and shown[loop_at - 1] >= frames - 2 and shown[loop_at] == 0
    # The camera's own code strip is still on every frame, with its own numbering.
    assert [read_frame(p[:H])[0] for _, p in shots] == list(range(150))


def test_a_variable_frame_rate_clip_follows_its_timestamps(tmp_path):
    pts_ms = [0, 40, 50, 200, 210, 400, 600, 610, 620, 1000, 1500]
    path = tmp_path / "vfr.mp4"
    write_clip(path, pts_ms, Fraction(1, 1000))
    _, period_s = loop_period(str(path))
    assert Fraction(1500, 1000) < period_s <= Fraction(1600, 1000)   # the last frame lasts a while

    clock = VirtualClock()
    camera = SimCamera(clock, FMT, source_path=str(path))
    shots = film(camera, clock, 4_000_000)
    shown = [read_clip_frame(p, H) for _, p in shots]
    starts = [Fraction(p, 1000) for p in pts_ms]
    assert shown == [expected_index(t, starts, period_s) for t, _ in shots]
    # Frame 3 (200-210 ms) is never sampled at 30 fps only if no capture falls in it:
    # 200 ms is a capture time (frame 6), so it shows; frame 1 (40-50 ms) falls between.
    assert 3 in shown and 1 not in shown


def test_source_time_is_measured_from_the_first_start(tmp_path):
    """A restart continues the clip's timeline (the world did not rewind), and a
    disconnection skips what the camera did not see."""
    path = tmp_path / "clip.mp4"
    write_clip(path, list(range(50)), Fraction(1, 25))
    clock = VirtualClock(start_monotonic_us=0)
    camera = SimCamera(clock, FMT, source_path=str(path))
    got: list[tuple[int, int]] = []

    def sink(packet):
        got.append((packet.timestamp_us, read_clip_frame(camera.last_picture, H)))

    camera.start(sink)
    clock.advance(300_000)
    camera.stop()
    clock.advance(700_000)           # 1.0 s: restart
    camera.start(sink)
    clock.advance(200_000)
    camera.disconnect()
    clock.advance(500_000)
    camera.reconnect()
    clock.advance(100_000)
    for t_us, index in got:
        assert index == (t_us * 25 // 1_000_000) % 50, (t_us, index)
    assert any(t == 1_000_000 for t, _ in got) and not any(1_200_000 < t < 1_700_000 for t, _ in got)


def test_a_long_run_decodes_forward_and_jumps_by_seeking(tmp_path):
    """A jump far ahead (here asked directly) seeks instead of decoding everything."""
    path = tmp_path / "long.mp4"
    write_clip(path, list(range(25 * 20)), Fraction(1, 25))   # 20 s
    frames = SourceFrames(str(path), W, H)
    for t_us in [0, 40_000, 12_345_678, 12_400_000, 19_990_000, 20_000_000 + 80_000, 3_000_000]:
        assert read_clip_frame(frames.picture_at(t_us), H) == (t_us * 25 // 1_000_000) % 500, t_us
    frames.close()


# -- letterboxing -----------------------------------------------------------------------

def flat_picture(y: int, u: int, v: int):
    def picture(index: int, width: int, height: int) -> np.ndarray:
        yuv = np.empty((height * 3 // 2, width), np.uint8)
        yuv[:height], cw, ch = y, width // 2, height // 2
        chroma = yuv[height:].reshape(-1)
        chroma[: cw * ch], chroma[cw * ch :] = u, v
        return yuv
    return picture


def planes(yuv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    chroma = yuv[H:].reshape(-1)
    n = (W // 2) * (H // 2)
    return yuv[:H], chroma[:n].reshape(H // 2, W // 2), chroma[n:].reshape(H // 2, W // 2)


def picture_box(luma: np.ndarray, strip_rows: int = 24) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) of the non-black area, below the camera's code strip."""
    lit = luma[strip_rows:] > 40
    cols, rows = np.flatnonzero(lit.any(axis=0)), np.flatnonzero(lit.any(axis=1)) + strip_rows
    return int(cols[0]), int(cols[-1]) + 1, int(rows[0]), int(rows[-1]) + 1


def one_picture(tmp_path, name: str, **clip) -> np.ndarray:
    path = tmp_path / name
    write_clip(path, [0, 1, 2], Fraction(1, 25), **clip)
    clock = VirtualClock()
    camera = SimCamera(clock, FMT, source_path=str(path))
    return film(camera, clock, 1)[0][1]


def assert_black_outside(yuv: np.ndarray, box: tuple[int, int, int, int]) -> None:
    left, right, top, bottom = box
    y, u, v = planes(yuv)
    outside = np.ones((H, W), bool)
    outside[top:bottom, left:right] = False
    outside[:24] = False   # the camera's strip
    assert outside.any() and (y[outside] == 16).all()
    c_outside = outside[::2, ::2]
    assert (u[c_outside] == 128).all() and (v[c_outside] == 128).all()


def test_a_portrait_clip_is_pillarboxed_not_squashed(tmp_path):
    yuv = one_picture(tmp_path, "portrait.mp4", width=360, height=640, picture=flat_picture(200, 90, 200))
    left, right, top, bottom = box = picture_box(yuv[:H])
    assert bottom == H                          # full height...
    assert abs((right - left) - H * 360 / 640) <= 2   # ...and 9:16 wide: about 101 px
    assert abs((left + right) / 2 - W / 2) <= 1    # centred
    assert_black_outside(yuv, box)
    y, u, v = planes(yuv)
    assert abs(int(u[60, W // 4]) - 90) <= 2 and abs(int(v[60, W // 4]) - 200) <= 2   # the picture keeps its colour


def test_a_wide_clip_is_letterboxed(tmp_path):
    yuv = one_picture(tmp_path, "wide.mp4", width=480, height=200, picture=flat_picture(200, 128, 128))
    left, right, top, bottom = box = picture_box(yuv[:H])
    assert (left, right) == (0, W)
    height = W * 200 / 480                        # 133 px
    assert bottom - 24 <= height and abs(bottom - ((H - height) / 2 + height)) <= 2
    assert_black_outside(yuv, box)


def test_the_sample_aspect_ratio_is_respected(tmp_path):
    """160x180 pixels twice as wide as tall display as 320x180: the whole frame, no bars."""
    yuv = one_picture(tmp_path, "anamorphic.mp4", width=160, height=180, sar=Fraction(2, 1),
                      picture=flat_picture(200, 128, 128))
    assert picture_box(yuv[:H]) == (0, W, 24, H)


@pytest.mark.parametrize("rotation_deg", [90, -90])
def test_a_rotated_clip_is_shown_upright(tmp_path, rotation_deg):
    """Stored landscape, dark left half and bright right half, with a display rotation
    of 90 degrees counter-clockwise (bright half on top) or clockwise (at the bottom)."""
    def halves(index: int, width: int, height: int) -> np.ndarray:
        yuv = np.full((height * 3 // 2, width), 128, np.uint8)
        yuv[:height, : width // 2], yuv[:height, width // 2 :] = 60, 220
        return yuv

    yuv = one_picture(tmp_path, "rotated.mp4", width=320, height=180, rotation_deg=rotation_deg, picture=halves)
    left, right, top, bottom = picture_box(yuv[:H])
    assert abs((right - left) - H * 180 / 320) <= 2 and bottom == H   # portrait: ~101 px wide
    middle = (left + right) // 2
    upper, lower = yuv[30:80, middle], yuv[100:170, middle]
    if rotation_deg == 90:
        assert upper.min() > 200 and lower.max() < 80
    else:
        assert upper.max() < 80 and lower.min() > 200


@settings(max_examples=200, deadline=None)
@given(width=st.integers(2, 4000), height=st.integers(2, 4000),
       sar=st.fractions(min_value=Fraction(1, 4), max_value=4), turns=st.integers(-4, 4),
       out_w=st.integers(40, 1000).map(lambda x: 2 * x), out_h=st.integers(40, 1000).map(lambda x: 2 * x))
def test_the_layout_fits_keeps_the_aspect_and_aligns_chroma(width, height, sar, turns, out_w, out_h):
    layout = _Layout(width, height, sar, 90 * turns, out_w, out_h)
    assert layout.x0 % 2 == 0 and layout.y0 % 2 == 0 and layout.fit_w % 2 == 0 and layout.fit_h % 2 == 0
    assert layout.x0 + layout.fit_w <= out_w and layout.y0 + layout.fit_h <= out_h
    assert layout.fit_w == out_w or layout.fit_h == out_h     # as large as fits
    display_w, display_h = float(width * sar), float(height)
    if turns % 2:
        display_w, display_h = display_h, display_w
    # Rounding to even sizes moves an edge by at most 2 px (and never below 2 px).
    if layout.fit_w == out_w:
        assert abs(layout.fit_h - out_w * display_h / display_w) <= 2 or layout.fit_h in (2, out_h)
    else:
        assert abs(layout.fit_w - out_h * display_w / display_h) <= 2 or layout.fit_w == 2


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=0, max_size=4000), keep_header=st.booleans())
def test_a_damaged_source_is_a_clear_error(tmp_path, data, keep_header):
    """Garbage, or a real clip's first bytes followed by garbage: SourceVideoError or a
    working source, never another exception."""
    path = tmp_path / "damaged.mp4"
    if keep_header:
        if not (tmp_path / "good.mp4").exists():
            write_clip(tmp_path / "good.mp4", [0, 1, 2, 3], Fraction(1, 25), audio=np.zeros((1, 8000), np.float32))
        good = (tmp_path / "good.mp4").read_bytes()
        data = good[: len(good) // 2] + data
    path.write_bytes(data)
    clock = VirtualClock()
    try:
        camera = SimCamera(clock, FMT, source_path=str(path))
        camera.attach_soundtrack(SourceAudio(clock, SimAir(), str(path)))
    except SourceVideoError as exc:
        assert "source video" in str(exc) and "\n" not in str(exc)
        return
    camera.start(lambda packet: None)
    clock.advance(300_000)
    camera.close()


# -- the soundtrack ---------------------------------------------------------------------

CLIP_S = 2
SOURCE_HZ = 44_100


def sound_clip(tmp_path, name: str = "sound.mp4", stereo: bool = True) -> tuple[str, np.ndarray]:
    """A 2 s clip with a chirp soundtrack; returns the path and the chirp at the air's rate
    as the clip means it (mono: the mean of the channels)."""
    left = chirp(CLIP_S, SOURCE_HZ)
    audio = np.stack([left, 0.5 * left]) if stereo else left[None, :]
    path = tmp_path / name
    write_clip(path, list(range(25 * CLIP_S)), Fraction(1, 25), audio=audio, audio_rate_hz=SOURCE_HZ)
    return str(path), resample_linear(audio.mean(axis=0), SOURCE_HZ, AIR_HZ)


class Room:
    """A camera filming a source, a microphone hearing the air, and a speaker."""

    def __init__(self, path: str, gain: float = 1.0) -> None:
        self.clock = VirtualClock(start_monotonic_us=1_000_000)
        self.air = SimAir(AIR_HZ)
        self.camera = SimCamera(self.clock, FMT, source_path=path)
        self.soundtrack = SourceAudio(self.clock, self.air, path, gain=gain)
        self.camera.attach_soundtrack(self.soundtrack)
        self.mic = SimMicrophone(self.clock, self.air, AudioFormat(), tone_dbfs=None)
        self.speaker = SimSpeaker(self.clock, self.air)
        self.t0 = self.clock.monotonic_us()
        self.camera.start(lambda packet: None)
        self.mic.start(lambda packet: None)

    def heard(self, from_s: float, to_s: float) -> np.ndarray:
        return self.air.heard(self.t0 + round(from_s * 1e6), self.t0 + round(to_s * 1e6)) / 32768.0


def reference_at(track: np.ndarray, from_s: float, count: int, max_lag: int) -> np.ndarray:
    """The looping soundtrack from source time from_s, padded by max_lag either side."""
    start = round(from_s * AIR_HZ) - max_lag
    return track[np.arange(start, start + count + 2 * max_lag) % len(track)]


def assert_in_step(heard: np.ndarray, track: np.ndarray, from_s: float, min_corr: float = 0.95) -> int:
    max_lag = AIR_HZ // 20   # search +-50 ms
    lag, corr = best_lag(heard, reference_at(track, from_s, len(heard), max_lag), max_lag)
    assert corr > min_corr, corr
    assert abs(lag) <= AIR_HZ // 1000, f"soundtrack heard {lag / AIR_HZ * 1000:.2f} ms off"
    return lag


def test_the_microphone_hears_the_soundtrack_in_step_and_looping(tmp_path):
    path, track = sound_clip(tmp_path)
    room = Room(path)
    room.clock.advance(5_000_000)
    for from_s in (0.2, 1.0, 2.2, 3.5, 4.2):   # first pass, second and third
        assert_in_step(room.heard(from_s, from_s + 0.5), track, from_s)
    # Across the loop boundary too (1.8-2.2 s of camera time).
    assert_in_step(room.heard(1.8, 2.2), track, 1.8)
    # Downmixed: the level is the mean of the channels (0.75 x 0.5 amplitude).
    rms = float(np.sqrt(np.mean(room.heard(0.5, 1.5) ** 2)))
    assert rms == pytest.approx(0.375 / math.sqrt(2), rel=0.03)
    # A 2 s soundtrack is never in memory whole: chunks are decoded just in time.
    assert len(room.soundtrack._pending) <= 2


def test_the_speaker_is_heard_over_the_soundtrack(tmp_path):
    path, track = sound_clip(tmp_path)
    room = Room(path)
    room.clock.advance(1_000_000)
    beep = (0.5 * 32767 * np.sin(2 * np.pi * 1000 * np.arange(AIR_HZ // 2) / AIR_HZ)).astype(np.int16)
    room.speaker.play(beep, AIR_HZ)
    room.clock.advance(1_000_000)
    def tone_1khz(heard: np.ndarray) -> float:   # amplitude of the 1 kHz component
        t = np.arange(len(heard)) / AIR_HZ
        return float(2 * abs(np.mean(heard * np.exp(-2j * np.pi * 1000 * t))))

    # The chirp is at 1.7-3.2 kHz before the beep and 3.2-4.6 kHz during it.
    assert tone_1khz(room.heard(0.5, 1.0)) < 0.01
    assert tone_1khz(room.heard(1.0, 1.5)) == pytest.approx(0.5 * room.air.speaker_gain, rel=0.05)
    expected_beep = beep / 32768.0 * room.air.speaker_gain
    assert_in_step(room.heard(1.0, 1.5) - expected_beep, track, 1.0)   # and the soundtrack is there too


def test_a_pulled_cord_does_not_silence_the_room_but_a_stop_does(tmp_path):
    path, track = sound_clip(tmp_path)
    room = Room(path)
    room.clock.advance(500_000)
    room.camera.disconnect()
    room.clock.advance(1_500_000)
    assert room.camera.frames_missed > 40
    assert_in_step(room.heard(0.8, 1.8), track, 0.8)
    room.camera.reconnect()
    room.clock.advance(500_000)          # 2.5 s
    room.camera.stop()
    assert not room.soundtrack.is_playing
    room.clock.advance(1_000_000)        # 3.5 s
    assert np.abs(room.heard(2.5 + 0.2, 3.5)).max() == 0   # after the last chunk, silence
    # Started again, it continues the same timeline: in step with source time, not from 0.
    room.camera.start(lambda packet: None)
    room.clock.advance(1_000_000)
    assert_in_step(room.heard(3.7, 4.4), track, 3.7)


def test_gain_scales_the_soundtrack_and_the_microphone_clips_it(tmp_path):
    path, _ = sound_clip(tmp_path, stereo=False)
    levels = {}
    for gain in (1.0, 0.25, 4.0):
        room = Room(path, gain=gain)
        room.clock.advance(1_500_000)
        levels[gain] = room.heard(0.2, 1.2)
    ratio = np.sqrt(np.mean(levels[0.25] ** 2) / np.mean(levels[1.0] ** 2))
    assert ratio == pytest.approx(0.25, rel=0.02)
    loud = levels[4.0]
    assert loud.max() == pytest.approx(32767 / 32768) and loud.min() == -1.0   # clipped at full scale
    with pytest.raises(ValueError):
        SourceAudio(VirtualClock(), SimAir(), path, gain=float("nan"))


def test_a_clip_without_sound_is_silent(tmp_path):
    path = tmp_path / "mute.mp4"
    write_clip(path, list(range(25)), Fraction(1, 25))
    room = Room(str(path))
    room.clock.advance(2_000_000)
    assert not room.soundtrack.has_audio
    assert np.abs(room.heard(0, 2)).max() == 0


def test_a_soundtrack_shorter_than_the_picture_leaves_silence_until_the_loop(tmp_path):
    audio = chirp(1, SOURCE_HZ)[None, :]   # 1 s of sound on a 2 s clip
    path = tmp_path / "short-sound.mp4"
    write_clip(path, list(range(50)), Fraction(1, 25), audio=audio, audio_rate_hz=SOURCE_HZ)
    room = Room(str(path))
    room.clock.advance(3_000_000)
    assert np.abs(room.heard(1.1, 1.95)).max() < 0.01
    track = np.concatenate([resample_linear(audio[0], SOURCE_HZ, AIR_HZ), np.zeros(AIR_HZ, np.float32)])
    assert_in_step(room.heard(2.1, 2.8), track, 2.1)


def test_decoding_is_lazy(tmp_path):
    """A 30 s soundtrack: at any time at most about one chunk of it is decoded and waiting."""
    audio = chirp(30, SOURCE_HZ)[None, :]
    path = tmp_path / "half-minute.mp4"
    write_clip(path, list(range(0, 30 * 5)), Fraction(1, 5), width=64, height=48,
               picture=flat_picture(120, 128, 128), audio=audio, audio_rate_hz=SOURCE_HZ, rate=5)
    assert loop_period(str(path))[1] == 30
    room = Room(str(path))
    sizes = []
    for _ in range(25):
        room.clock.advance(1_300_000)
        sizes.append(sum(len(s) for _, s in room.soundtrack._pending))
    assert max(sizes) < AIR_HZ // 4          # < 0.25 s of the 30 s
    track = resample_linear(audio[0], SOURCE_HZ, AIR_HZ)
    assert_in_step(room.heard(20.0, 20.5), track, 20.0)
    assert_in_step(room.heard(31.0, 31.5), track, 31.0)   # and on the second pass


@settings(max_examples=300, deadline=None)
@given(origin_us=st.integers(0, 10**12), period_us=st.integers(1, 10**9), rate_hz=st.sampled_from([8000, 44_100, 48_000]),
       offset=st.integers(-10**6, 10**11))
def test_every_air_sample_belongs_to_exactly_one_pass(origin_us, period_us, rate_hz, offset):
    period_s = Fraction(period_us, 1_000_000)
    start0 = pass_start_index(origin_us, period_s, rate_hz, 0)
    index = start0 + offset
    n = pass_containing(index, origin_us, period_s, rate_hz)
    if index < start0:
        assert n == 0
    else:
        assert pass_start_index(origin_us, period_s, rate_hz, n) <= index < pass_start_index(origin_us, period_s, rate_hz, n + 1)


def test_a_damaged_tail_holds_the_last_good_frame_and_keeps_looping(tmp_path):
    """A transport stream cut off mid-way and followed by junk (a copy that failed):
    the world keeps running, showing the clip up to the damage."""
    good = tmp_path / "good.ts"
    write_clip(good, list(range(50)), Fraction(1, 25))
    data = good.read_bytes()
    damaged = tmp_path / "damaged.ts"
    damaged.write_bytes(data[: len(data) * 6 // 10] + bytes(range(256)) * 64)
    clock = VirtualClock()
    camera = SimCamera(clock, FMT, source_path=str(damaged))
    shots = film(camera, clock, 6_000_000)
    shown = [read_clip_frame(p, H) for _, p in shots]
    assert len(shots) == 181 and shown[0] == 0
    readable = [i for i in shown if i is not None]
    assert readable and max(readable) < 50 and len(readable) > 0.8 * len(shown)
    assert shown.count(0) >= 3   # it looped: frame 0 came round again
