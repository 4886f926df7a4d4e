"""Burn-in pattern: the frame number and time survive real H.264 and read back exactly."""
from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hal.media import VideoFormat
from simulator.camera import open_h264_encoder
from simulator.pattern import (
    Y_BLACK,
    Y_WHITE,
    cell_px,
    format_label,
    overlay_code,
    read_frame,
    read_label,
    render_frame,
    strip_height_px,
)

SIZES = [(640, 360), (320, 180), (1280, 720)]


@pytest.mark.parametrize("width,height", SIZES)
def test_render_shape_and_pyav_accepts_it(width, height):
    yuv = render_frame(7, 1_234_567, width, height)
    assert yuv.shape == (height * 3 // 2, width) and yuv.dtype == np.uint8
    frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
    assert (frame.width, frame.height) == (width, height)
    assert np.array_equal(frame.to_ndarray(), yuv)


def test_cells_scale_with_width():
    assert cell_px(640) == 16 and cell_px(320) == 8 and cell_px(1920) == 48
    assert strip_height_px(640) == 48


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**40 * 1000 - 1), st.sampled_from(SIZES))
def test_raw_round_trip(frame_number, time_us, size):
    width, height = size
    yuv = render_frame(frame_number, time_us, width, height)
    assert read_frame(yuv[:height]) == (frame_number, time_us // 1000)
    assert read_frame(yuv) == (frame_number, time_us // 1000)  # the whole yuv420p array works too


def test_values_wrap_instead_of_failing():
    yuv = render_frame(2**32 + 5, (2**40 + 9) * 1000, 320, 180)
    assert read_frame(yuv[:180]) == (5, 9)


def test_human_readable_label():
    assert format_label(123, 4_100) == "F 000123  T 00:00:04.100"
    assert format_label(5, 3_661_250) == "F 000005  T 01:01:01.250"
    for width, height in SIZES:
        yuv = render_frame(123, 4_100_000, width, height)
        assert read_label(yuv[:height]) == "F 000123  T 00:00:04.100"


def test_strip_is_pure_black_and_white_cells():
    yuv = render_frame(1, 2_000, 640, 360)
    strip = yuv[:48, :640]
    assert set(np.unique(strip)) == {Y_BLACK, Y_WHITE}
    cells = strip.reshape(3, 16, 40, 16)
    assert (cells == cells[:, :1, :, :1]).all()  # every cell is uniform


def test_picture_moves_over_time():
    a = render_frame(0, 1_000_000, 640, 360)[100:]
    b = render_frame(0, 1_500_000, 640, 360)[100:]
    assert np.count_nonzero(a != b) > 640 * 20  # the bar moved, not just the digits


@pytest.mark.parametrize(
    "picture",
    [
        np.zeros((360, 640), np.uint8),
        np.full((360, 640), 255, np.uint8),
        np.random.default_rng(0).integers(0, 256, (360, 640), dtype=np.uint8),
        np.zeros((10, 640), np.uint8),
        np.zeros((360, 100), np.uint8),
        np.zeros((4, 4, 4), np.uint8),
    ],
    ids=["black", "white", "noise", "too-short", "too-narrow", "not-2d"],
)
def test_no_code_reads_none(picture):
    assert read_frame(picture) is None


def test_one_flipped_cell_is_rejected():
    yuv = render_frame(99, 5_000_000, 640, 360)
    y = yuv[:360].copy()
    for row, col in [(0, 0), (0, 20), (1, 5), (2, 30), (2, 39)]:
        damaged = y.copy()
        cell = damaged[row * 16 : (row + 1) * 16, col * 16 : (col + 1) * 16]
        cell[:] = Y_WHITE + Y_BLACK - cell
        assert read_frame(damaged) is None, (row, col)


def test_overlay_code_on_an_arbitrary_picture():
    y = np.random.default_rng(1).integers(0, 256, (180, 320), dtype=np.uint8)
    below = y[24:].copy()
    overlay_code(y, 4242, 777)
    assert read_frame(y) == (4242, 777)
    assert np.array_equal(y[24:], below)  # only the strip is touched


def test_too_small_geometry_is_refused():
    with pytest.raises(ValueError):
        render_frame(0, 0, 120, 90)
    with pytest.raises(ValueError):
        render_frame(0, 0, 640, 361)


def _encode_decode(pictures, width, height, bitrate_bps, fps=30, adaptive_quant=False):
    """Encode yuv420p pictures with the camera's x264 settings and decode them again."""
    encoder = open_h264_encoder(VideoFormat(width, height, fps, 1.0, bitrate_bps), adaptive_quant=adaptive_quant)
    decoder = av.CodecContext.create("h264", "r")
    decoded = []
    for i, yuv in enumerate(pictures):
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts = round(i * 1_000_000 / fps)
        frame.time_base = Fraction(1, 1_000_000)
        for packet in encoder.encode(frame):
            decoded.extend(f.to_ndarray()[:height] for f in decoder.decode(packet))
    for packet in encoder.encode(None):
        decoded.extend(f.to_ndarray()[:height] for f in decoder.decode(packet))
    decoded.extend(f.to_ndarray()[:height] for f in decoder.decode(None))
    return decoded


@pytest.mark.parametrize("width,height", [(640, 360), (320, 180)])
def test_every_frame_reads_back_after_1_mbit_h264(width, height):
    times_us = [1_000_000 + round(i * 1_000_000 / 30) for i in range(90)]
    pictures = [render_frame(1000 + i, t, width, height) for i, t in enumerate(times_us)]
    decoded = _encode_decode(pictures, width, height, 1_000_000)
    assert len(decoded) == 90
    assert [read_frame(y) for y in decoded] == [(1000 + i, t // 1000) for i, t in enumerate(times_us)]
    assert read_label(decoded[45]) == format_label(1045, times_us[45] // 1000)


def test_strip_survives_a_busy_source_at_low_bitrate():
    # Worst case for the strip: white noise everywhere else, 300 kbit/s at 640x360,
    # with the settings SimCamera uses for a source video.
    rng = np.random.default_rng(2)
    pictures = []
    for i in range(60):
        yuv = rng.integers(0, 256, (540, 640), dtype=np.uint8)
        overlay_code(yuv[:360], i, 10 * i)
        pictures.append(yuv)
    decoded = _encode_decode(pictures, 640, 360, 300_000, adaptive_quant=True)
    assert [read_frame(y) for y in decoded] == [(i, 10 * i) for i in range(60)]
